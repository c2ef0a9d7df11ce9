// Package mount runs the secretsfs daemon: it turns a Config into a mounted
// filesystem and keeps it serving until its context ends.
//
// Run validates the mount point before anything else and clears a stale
// mount left by a daemon that was killed ("transport endpoint is not
// connected") with a lazy unmount. It then builds the AWS client (region,
// profile, endpoint and an optional STS role), the caching client of package
// cache with background refresh on, and a Catalog saying which secrets the
// mount shows, and hands both to package fs, which mounts the node tree.
// It prints one line once the mount serves, forces a refresh of every cached
// secret on SIGHUP, and unmounts cleanly when its context ends (SIGINT or
// SIGTERM in the real command).
//
// A catalog works in one of two modes. In listing mode the tree comes from
// ListSecrets, narrowed by name prefixes and tags, and is listed again every
// list interval; a name the listing lacks is asked for with DescribeSecret
// (a call of its own, never a cached answer, whose tags decide) before the
// filesystem answers ENOENT; misses are remembered briefly in a bounded set
// (misses.go), and those calls are rate-limited per mount, a name beyond the
// rate being a miss without a call, so that invented names cost neither
// unbounded calls nor memory nor a place in the cache. A secret found that
// way is shown until the next listing, which alone decides from then on, so
// one that leaves the scope disappears with it.
// ListSecrets filters on prefixes of names, tag keys and tag values, and
// different filter keys are ANDed while the values of one key are ORed, so
// the service cannot express "tag KEY has value VALUE": the catalog narrows
// the listing on the service's side as far as it can and applies the exact
// rules to every entry itself. In explicit mode only the named secrets are
// shown, each at its name's path (an ARN is resolved with DescribeSecret),
// and ListSecrets is never called, so that permission is not needed.
//
// Beyond serving files (features.go, featurerun.go): on_change hooks run a
// command (without a shell for a list, /bin/sh -c for a string) or signal a
// pid file's process, only for files whose bytes changed, once per hook per
// burst of changes, at most four at once (mount/hooks); --max-stale turns a
// value stale for too long into EIO (store.go) and has the kernel's caches of
// its files dropped at that moment (expiry.go); Prometheus metrics in a
// registry of their own and /healthz
// (metrics.go); a JSON audit line per open naming the reading process
// (audit.go); mlockall and no core dumps (hygiene.go).
//
// Run takes, beside its Config, an Env: the output writers, a call once the
// mount serves and a static AWS key. `secretsfs demo` (in main) uses them to
// run this daemon against the in-process emulator of package test/emulator;
// this package imports nothing from test/ (test/layering checks it).
//
// Secret values never reach a log line or an error message.
package mount
