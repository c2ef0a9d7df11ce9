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
// The catalog (package mount/catalog) says which secrets the mount shows: a
// listing narrowed by prefixes and tags, or only the secrets named with
// --secret (or, with a mapping, only the mapped files); catalogOf (mode.go)
// picks the mode.
//
// Beyond serving files (features.go, wired in Daemon.Add): on_change hooks run a
// command (without a shell for a list, /bin/sh -c for a string) or signal a
// pid file's process, only for files whose bytes changed, once per hook per
// burst of changes, at most four at once (mount/hooks); --max-stale turns a
// value stale for too long into EIO (store.go) and has the kernel's caches of
// its files dropped at that moment (expiry.go); Prometheus metrics in a
// registry of their own and /healthz
// (metrics.go); a JSON audit line per open naming the reading process
// (audit.go); mlockall and no core dumps (hygiene.go).
//
// A Daemon serves many mounts from one process (daemon.go): Add builds one
// mount top to bottom (telemetry, the cache, the catalog, the store, the
// mapped files, the mount, the hooks) and Mount.Unmount undoes it in reverse
// order. Mounts of the same identity (region, profile, endpoint, role and
// cache settings) share one cache from a pool counted by its mounts
// (pool.go); the last one closes it. Run is a Daemon with one mount.
//
// Run takes, beside its Config, an Env: the output writers, a call once the
// mount serves and a static AWS key. `secretsfs demo` (in main) uses them to
// run this daemon against the in-process emulator of package test/emulator;
// this package imports nothing from test/ (test/layering checks it).
//
// Secret values never reach a log line or an error message.
package mount
