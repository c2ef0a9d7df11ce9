// Package telemetry is what the daemon tells about itself: Prometheus
// metrics, the /healthz health report, the HTTP server of both, and the
// audit log of opens; also the append-only log file that the audit log and
// the daemon's --log-file share.
//
// Main decisions:
//   - Metrics live in a registry of their own (not the global default), so
//     two daemons in one process, or tests, never collide. Labels carry
//     operation names, outcomes and errno names, never a secret name or
//     value: /metrics names no secret.
//   - /healthz counts only secrets that were read or are pinned (mapped
//     files): a name only looked up, or one that does not exist (a reader's
//     typo), never fails a liveness probe. It names the secrets it cannot
//     serve. A stale answer is healthy until --max-stale, timed by the
//     injected clock.
//   - Audit lines never carry a value: when, which file and version, the
//     outcome and which process asked. Their time is the event's, stamped by
//     fs with the injected clock.
//   - Log files are opened with O_NOFOLLOW (a symbolic link is refused) and
//     mode 0600, and are opened again by their path after a rotation: on
//     the next write when the path names another file, and on SIGHUP.
//
// Layering: telemetry imports cache and fs (for their observer and auditor
// interfaces), never mount, hooks or catalog. What it needs from them comes
// in as small interfaces it declares (CacheView) or closures (the count of
// secrets served). A nil *Metrics or *Audit hands out nil interfaces
// (FSObserver, CacheObserver, Auditor), never an interface holding a nil
// pointer.
//
// Time: health reads the injected cache.Clock. The HTTP server's timeouts
// and the shutdown's context deadline bound I/O only and decide nothing a
// test times, so they use the real clock.
package telemetry
