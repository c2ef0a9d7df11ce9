// Package mount runs the secretsfs daemon: it turns a Config into a mounted
// filesystem and keeps it serving until its context ends.
//
// Run validates the mount point before anything else and clears a stale
// mount left by a daemon that was killed ("transport endpoint is not
// connected") with a lazy unmount. It then builds, through package cache
// (cache.NewClient; mount imports nothing of the AWS SDK), the AWS client
// for the mount's cache.Identity (region, profile, endpoint, an optional STS
// role and the static key), the caching client of package
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
// Beyond serving files (the settings in features.go, wired in Daemon.Add):
// on_change hooks (package mount/hooks); --max-stale turns a value stale for
// too long into EIO (store.go) and has the kernel's caches of its files
// dropped at that moment (expiry.go); Prometheus metrics, /healthz and the
// audit log (package mount/telemetry); mlockall and no core dumps
// (hygiene.go).
//
// Time comes from one injected clock (cache.Clock; cache.SystemClock in
// production): the cache's schedule, the catalog's intervals and lookup
// rate, the hooks' debounce, --max-stale, health and audit timestamps.
// Context deadlines and HTTP server timeouts, which only bound I/O, use the
// real clock.
//
// A Daemon serves many mounts from one process (daemon.go): Add builds one
// mount top to bottom (telemetry, the cache, the catalog, the store, the
// mapped files, the mount, the hooks) and Mount.Unmount undoes it in reverse
// order. Mounts of the same identity (region, profile, endpoint, role and
// cache settings) share one cache from a pool counted by its mounts
// (pool.go), and those naming the same secrets one watcher of them; the
// last one closes it. Run is a Daemon with one mount; the
// CSI node driver (package mount/csi) is a Daemon serving each pod's volume,
// whose Config.Workload names the pod's identity, and which takes over the
// mount points a previous driver process left by mounting over them
// (Config.Handover; RebindBelow for subPaths; DetachAll at unpublish).
//
// Run takes, beside its Config, an Env: the output writers, a call once the
// mount serves and a static AWS key. `secretsfs demo` (in main) uses them to
// run this daemon against the in-process emulator of package test/emulator;
// this package imports nothing from test/ (test/layering checks it).
//
// Secret values never reach a log line or an error message.
package mount
