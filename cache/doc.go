// Package cache is an in-memory caching client for AWS Secrets Manager. It
// behaves like the AWS Secrets Manager caching client for Python (and its Go
// and Java siblings) and goes further. It knows nothing of FUSE: Go programs
// can use it as a library.
//
// A read of a stage resolves the stage to a version id through the secret's
// last DescribeSecret answer, then returns that version's value, fetched once
// with GetSecretValue by version id: versions are immutable, so a cached
// value is never fetched again. A secret's answer is trusted for a refresh
// period drawn uniformly in [T/2, T] (T = Config.SecretRefreshInterval), so a
// fleet of hosts does not poll in step. Steady state costs no calls; each
// period costs one DescribeSecret; a rotation adds one GetSecretValue.
//
// Failures back off exponentially (Config.ExceptionRetryDelayBase, growth
// and cap; each wait drawn in its top quarter), counted per secret and per
// version. While a refresh fails, the
// last good answer keeps being served (stale-on-error) and reads between
// retries make no calls; an error reaches the caller only when no value can
// be produced. Where the reference fails a read because the new version
// after a rotation cannot be fetched, this cache serves the stage's last
// good value, marked stale.
//
// Decisions beyond the reference:
//   - Calls run in a single flight per secret (and per version), detached
//     from the callers' contexts with a timeout of their own: a caller that
//     gives up never stores its cancellation as the entry's error, and no
//     lock is held across a network call.
//   - Secrets in use are refreshed in the background shortly before they
//     expire (Config.RefreshAhead), so reads do not wait for the network,
//     and shortly after a NextRotationDate that DescribeSecret reports. A
//     secret that was read (or is pinned) and fails is retried in the
//     background with the backoff until it recovers; one only described
//     is retried when it is asked for again.
//   - List is the change detector for many secrets: each ListSecrets page
//     (100 secrets) stores every listed secret's version -> stages map as a
//     DescribeSecret answer would, so listed secrets need no DescribeSecret
//     while listings come; values that moved are fetched at once, 20 a
//     BatchGetSecretValue call (per-secret errors stay per secret; refused,
//     it falls back to GetSecretValue, logged once). A listing older than
//     what the cache saw moves nothing back. Listed secrets are kept on top
//     of MaxCacheSize. Prefetch fetches values a caller is about to need,
//     in batches, in the background.
//   - Subscribers learn which stage of which secret moved to which version.
//   - A secret that DescribeSecret reports as gone (ResourceNotFound) or
//     scheduled for deletion is not found, rather than served stale forever.
//   - RefreshNow stores its answer and reports success or failure; it waits
//     only for a pending retry time, capped at Config.ForceRefreshMaxWait.
//     It joins a refresh in flight, and calls again only if that one
//     started before it was asked. RequestRefresh is the forced refresh to
//     offer untrusted callers: it also joins, starts at most one forced
//     refresh per secret per Config.ForceRefreshMinInterval, and makes no
//     call during a backoff unless the caller may cut it short.
//   - Lookup describes an id that comes from outside (a path someone typed)
//     without caching it unless asked to: ids that do not exist, or are not
//     wanted, take no place in the LRU and evict nothing.
//   - Returned byte slices are copies. Errors match ErrNotFound
//     (fs.ErrNotExist), ErrAccessDenied (fs.ErrPermission) or ErrUnavailable
//     with errors.Is, and the SDK's typed error with errors.As. Secret values
//     never appear in errors or logs.
//   - A binary value's buffer is zeroed when its version or its secret is
//     evicted from the LRU. String values cannot be: Go strings are
//     immutable, and the garbage collector may have copied any buffer.
//   - An optional Observer is told of every call and refresh, for metrics.
//   - Calls are bounded as a whole: at most Config.MaxInFlight at once, of
//     which background refreshes take at most all but two (from as many
//     goroutines), so that a reader's call finds room. Background work is
//     marked on its context (backgroundCtx); everything else is a reader's.
//     Listings, Prefetch and the fetches a listing starts are background
//     work. A reader who comes to wait for background work (joins a
//     background refresh, or needs a value a batch has claimed) promotes
//     it: its calls run as a reader's from then on.
//   - A throttling answer to any call (ThrottlingException,
//     TooManyRequestsException, RequestLimitExceeded) slows the whole cache
//     down: calls are then paced (AIMD) at half the rate of the last second,
//     halved again on each further throttling answer, down to one a second,
//     and the pace grows back by one call a second per second of successful
//     calls until, beyond a hundred a second, calls are no longer paced.
//     Background calls yield to readers' under the pace; readers wait their
//     turn, never beyond their context. NewClient and NewClientFromConfig
//     also set the SDK's adaptive retry mode.
//   - The background schedule is a min-heap of the secrets in use by due
//     time, updated where a secret's schedule changes: no wake-up, timer or
//     read walks the cache, and with nothing due the scheduler sets no
//     timer. Retry waits are drawn in [3w/4, w] around the backoff's w, as
//     refresh times are in [T/2, T], so that secrets which failed together
//     are not retried in step.
//   - Without a Hook an entry keeps what it serves (the value, the stages,
//     the metadata), never the SDK's answers. Close zeroes the values.
//   - NewClient builds a client for an Identity: the SDK's chain (or a
//     static key) with an optional role, or a Kubernetes Workload whose
//     service-account tokens alone give the credentials (workload.go:
//     AssumeRoleWithWebIdentity with a role, else the EKS Pod Identity
//     agent), with nothing of the process's own configuration.
//
// Entries are keyed by the exact id string given: a name and an ARN of one
// secret are two entries, as in the reference.
package cache
