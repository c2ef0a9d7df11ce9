// Package catalog says which secrets a mount shows, and at which paths: it
// implements fs.Catalog, plus Start and Stop for its background goroutine.
// The daemon (package mount) picks the mode; the catalog talks to Secrets
// Manager only through package cache (a Lister and a Describer).
//
// A catalog works in one of two modes. In listing mode (NewListing) the tree
// comes from ListSecrets, narrowed by name prefixes and tags, and is listed
// again every list interval; a failed listing keeps the last one and is
// retried after RetryMin, doubling up to the interval (cache.Backoff). A name
// the listing lacks is asked for with DescribeSecret (a call of its own,
// never a cached answer, whose tags decide) before the filesystem answers
// ENOENT; misses are remembered briefly in a bounded set (misses.go), and
// those calls are rate-limited per mount, a name beyond the rate being a miss
// without a call, so that invented names cost neither unbounded calls nor
// memory nor a place in the cache. A secret found that way is shown until
// the next listing, which alone decides from then on, so one that leaves the
// scope disappears with it.
//
// Scoping: a secret is shown when its name starts with one of the prefixes
// (any, when none is given) and it carries every tag asked for, key and value
// alike. ListSecrets filters on prefixes of names, tag keys and tag values,
// and different filter keys are ANDed while the values of one key are ORed,
// so the service cannot express "tag KEY has value VALUE": cache.Lister
// narrows the listing on the service's side as far as it can and the catalog
// applies the exact rules to every entry itself.
//
// In explicit mode (NewExplicit) only the named secrets are shown, each at
// its name's path (an id the cache cannot answer for, such as an ARN, is
// resolved with DescribeSecret, eight at once at most). An id that cannot be
// resolved is shown under the id itself, so that reading its files reports
// why, and is asked for again with the backoff. A Watcher, started first,
// lists the named secrets (and a mapping's) by name, 10 a ListSecrets call,
// at start and once per refresh interval, so that the cache holds their
// metadata and they need no DescribeSecret; ListSecrets refused, it stops
// and DescribeSecret does the job, so that permission is not needed.
//
// Cost: List's answer is made once per change (a listing that changed it, a
// secret found, an id resolved) and shared read-only; Len and RefsOf answer
// from it by length, binary search or map, so that a metrics scrape or a
// change hook's question about one secret costs the same with 10 secrets as
// with 10 000.
//
// The catalog's clock is injected (Options.Clock); the one real-time bound
// is the context deadline of a lookup (defaultFindTimeout), which bounds I/O
// and decides nothing tests measure.
package catalog
