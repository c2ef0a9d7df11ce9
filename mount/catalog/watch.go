package catalog

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/secretsfs/secretsfs/cache"
)

// Prefetcher fetches the values of secrets in the background, in batches;
// *cache.Cache is one.
type Prefetcher interface {
	Prefetch(ctx context.Context, ids []string)
}

var _ Prefetcher = (*cache.Cache)(nil)

// Watcher keeps a fixed set of secrets (explicit mode's ids, the mapped
// files' ids) up to date cheaply, for a cache that stores what it lists:
//
//   - Start lists their names with ListSecrets "name" filters, 10 names a
//     call (so the first reads and the explicit catalog's resolution need
//     no DescribeSecret), then prefetches every id's value in batches of 20.
//   - Then every refresh interval it lists them all again, one call every
//     interval/calls, so that a rotation shows within one interval with no
//     DescribeSecret, and the calls are spread rather than bunched.
//
// Ids no name filter can carry (ARNs) are left to the cache's own
// DescribeSecret refresh, and so is every id once ListSecrets is refused
// (said once in the log).
type Watcher struct {
	ids      []string   // every id, for the prefetch
	chunks   [][]string // the names listed, 10 a call
	lister   Lister
	pre      Prefetcher
	interval time.Duration
	opts     Options
	bg       background
}

// NewWatcher returns a Watcher of ids, listing with l and prefetching with
// p, one pass per interval (the cache's refresh interval).
func NewWatcher(ids []string, l Lister, p Prefetcher, interval time.Duration, opts Options) *Watcher {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	var names []string
	for _, id := range ids {
		if cache.NameFilterable(id) {
			names = append(names, id)
		}
	}
	return &Watcher{
		ids:      ids,
		chunks:   slices.Collect(slices.Chunk(names, watchNamesPerCall)),
		lister:   l,
		pre:      p,
		interval: interval,
		opts:     opts,
	}
}

// watchNamesPerCall is how many names one ListSecrets call carries: the
// values one "name" filter takes.
const watchNamesPerCall = 10

// Start makes the first pass and the prefetch, then starts the passes in
// the background. Failures are logged; only a cancelled ctx makes it fail.
func (w *Watcher) Start(ctx context.Context) error {
	listing := len(w.chunks) > 0
	for _, chunk := range w.chunks {
		if !w.list(ctx, chunk) {
			listing = false
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(w.ids) > 0 {
		w.pre.Prefetch(ctx, w.ids)
	}
	if listing && w.interval > 0 {
		w.bg.start(ctx, w.loop)
	}
	return nil
}

// Stop ends the background passes.
func (w *Watcher) Stop() { w.bg.stop() }

// loop lists one chunk every interval/len(chunks), round and round, until
// ctx ends or ListSecrets is refused. The times are fixed from the start,
// so slow calls do not stretch the period.
func (w *Watcher) loop(ctx context.Context) {
	gap := w.interval / time.Duration(len(w.chunks))
	base := w.opts.Clock.Now()
	for k := 1; ; k++ {
		select {
		case <-ctx.Done():
			return
		case <-w.opts.Clock.Alarm(base.Add(time.Duration(k) * gap)):
		}
		if !w.list(ctx, w.chunks[(k-1)%len(w.chunks)]) {
			return
		}
	}
}

// list lists one chunk of names; the cache stores what it says. It reports
// false when listing is refused for good.
func (w *Watcher) list(ctx context.Context, names []string) bool {
	_, err := w.lister.List(ctx, cache.ListFilter{Names: names})
	switch {
	case err == nil:
		return true
	case errors.Is(err, cache.ErrAccessDenied):
		w.opts.Logger.Warn("ListSecrets is refused; the named secrets are refreshed with DescribeSecret instead "+
			"(grant secretsmanager:ListSecrets to cut the calls)", "err", err)
		return false
	case errors.Is(err, errors.ErrUnsupported):
		return false
	case ctx.Err() == nil:
		w.opts.Logger.Debug("listing named secrets failed; DescribeSecret covers them until the next pass", "err", err)
	}
	return true
}
