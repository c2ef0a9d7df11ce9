// Package hooks runs the on_change hooks of a mount: a command, or a
// signal to the process a pid file names, run when the bytes of a file the
// mount shows change.
//
// It follows the cache (Source, which *cache.Cache satisfies) and asks fs
// which files a change touched (sfs.DirOf, sfs.ChangedFiles), so a hook
// names exactly the paths the mount shows. Mapped files (Watch, built by
// WatchesOf) are rendered again and compared by SHA-256 instead. The
// default layout's hook learns which secrets are shown from a Shown (any
// fs.Catalog) and keeps them pinned in the cache, so that a rotation is
// noticed whether anything reads them or not. The package imports cache,
// fs and mapping, never the daemon or its telemetry: a run is reported
// through the Config.Ran closure.
//
// Main decisions:
//   - Coalescing: each hook runs once per burst of changes, once its
//     debounce has passed without another change of a file it covers,
//     naming every file changed since its last run (SECRETSFS_PATHS). Runs
//     of one hook never overlap.
//   - The environment is an allow-list (hookEnvAllowed): the locale,
//     identity, search path and terminal of the daemon, and what changed,
//     never a value or a credential. A hook's output is discarded.
//   - Concurrency: at most maxHookRuns runs, across every hook, at once; a
//     run that finds all slots busy waits for one.
//   - Pid files: a signal is sent only through a regular file that root or
//     the daemon's own user owns and that group and others cannot write
//     (trustedPIDFile), checked and read through one descriptor.
//   - Time: the debounce and the logged run time come from the injected
//     cache.Clock. The context timeouts that bound a command (hookTimeout)
//     and a rendering bound I/O only and decide nothing tests time, so they
//     use the real clock.
package hooks
