package catalog

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/secretsfs/secretsfs/cache"
	sfs "github.com/secretsfs/secretsfs/fs"
)

// Catalog timings and bounds that are not configurable.
const (
	defaultMissTTL     = 10 * time.Second // how long Find remembers a miss
	defaultMaxMisses   = 1024             // how many misses Find remembers at most
	defaultLookupRate  = 10               // DescribeSecret calls per second for names the listing lacks
	defaultLookupBurst = 50               // ... and how many may come at once
	defaultRetryMin    = time.Second      // first retry after a failed listing
	defaultFindTimeout = 30 * time.Second // bound of one DescribeSecret by Find
)

// Catalog is an fs.Catalog that runs a background goroutine. List's
// answer is made once per change and shared (read-only); Len and RefsOf
// answer from it without a copy or a walk, so that a metrics scrape or a
// change of one secret costs the same with 10 secrets as with 10 000.
type Catalog interface {
	sfs.Catalog
	// Len is len(List()).
	Len() int
	// RefsOf returns the refs under which a secret id is shown
	// (read-only; empty when it is not).
	RefsOf(id string) []sfs.SecretRef
	// Start makes the first listing (or resolves the explicit ids) and
	// starts the background goroutine. A failing first listing is logged and
	// retried; only a cancelled ctx makes Start fail.
	Start(ctx context.Context) error
	// Stop ends the background goroutine and waits for it.
	Stop()
}

// Lister lists the secrets of an account; *cache.Cache is one (and stores
// what it lists, so that a listing refreshes the listed secrets), and so is
// *cache.Lister. The listing may hold more than the filter asks for: the
// catalog applies the exact rules.
type Lister interface {
	List(ctx context.Context, f cache.ListFilter) ([]cache.Listed, error)
}

// Describer asks Secrets Manager about one secret; *cache.Cache is one.
// A secret that does not exist gives an error matching cache.ErrNotFound.
type Describer interface {
	// Describe resolves an id, keeping the answer for the first read.
	Describe(ctx context.Context, id string) (cache.SecretInfo, error)
	// Lookup asks about a name now, never answering from a cache; keep
	// says whether the secret is wanted (worth caching), so that names
	// outside the mount's scope never take a place in the cache.
	Lookup(ctx context.Context, name string, keep func(cache.SecretInfo) bool) (cache.SecretInfo, error)
}

var _ Describer = (*cache.Cache)(nil)

// Options are the timings and the plumbing of a catalog.
type Options struct {
	// Interval is the list interval; in explicit mode, the longest wait
	// before ids that could not be resolved are asked for again.
	Interval time.Duration
	// MissTTL is how long Find remembers that a name does not exist.
	MissTTL time.Duration
	// MaxMisses bounds how many such names are remembered (the oldest are
	// forgotten first), whatever the rate of lookups.
	MaxMisses int
	// LookupRate and LookupBurst bound the DescribeSecret calls Find makes
	// for names the listing lacks, per catalog (per mount): calls per
	// second, and how many may come at once. A name beyond them is a miss
	// without a call, so that a user inventing names costs a bounded number
	// of calls. More finds new secrets sooner under load; less bounds cost.
	LookupRate  rate.Limit
	LookupBurst int
	// RetryMin is the first wait after a failed listing; it doubles after
	// each further failure, up to Interval.
	RetryMin time.Duration
	Clock    cache.Clock
	Logger   *slog.Logger
}

// DefaultOptions are the daemon's options for a list interval.
func DefaultOptions(interval time.Duration, clock cache.Clock, log *slog.Logger) Options {
	return Options{
		Interval:    interval,
		MissTTL:     defaultMissTTL,
		MaxMisses:   defaultMaxMisses,
		LookupRate:  defaultLookupRate,
		LookupBurst: defaultLookupBurst,
		RetryMin:    defaultRetryMin,
		Clock:       clock,
		Logger:      log,
	}
}

// retryDelay is the wait after the n-th consecutive failure (n >= 1):
// RetryMin doubling up to Interval, by the cache's backoff rule.
func (o Options) retryDelay(n int) time.Duration {
	return cache.Backoff{Base: o.RetryMin, Growth: 2, Max: o.Interval}.Delay(n - 1)
}

// background runs one goroutine of a catalog until stopped.
type background struct {
	mu      sync.Mutex
	cancel  context.CancelFunc // guarded by mu
	done    chan struct{}      // guarded by mu
	started bool               // guarded by mu
}

// start runs loop in a goroutine until ctx ends or stop is called.
func (b *background) start(ctx context.Context, loop func(context.Context)) {
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	b.mu.Lock()
	b.cancel, b.done, b.started = cancel, done, true
	b.mu.Unlock()
	go func() {
		defer close(done)
		loop(lctx)
	}()
}

// stop ends the goroutine and waits for it; a no-op if never started.
func (b *background) stop() {
	b.mu.Lock()
	cancel, done := b.cancel, b.done
	b.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// running reports whether start was called.
func (b *background) running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.started
}

// subscribers is a set of OnChange callbacks.
type subscribers struct {
	mu   sync.Mutex
	next int            // guarded by mu
	fns  map[int]func() // guarded by mu
}

func (s *subscribers) add(fn func()) (cancel func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fns == nil {
		s.fns = make(map[int]func())
	}
	id := s.next
	s.next++
	s.fns[id] = fn
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.fns, id)
	}
}

// notify calls every callback, without holding the lock.
func (s *subscribers) notify() {
	s.mu.Lock()
	fns := make([]func(), 0, len(s.fns))
	for _, fn := range s.fns {
		fns = append(fns, fn)
	}
	s.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// cmpName orders refs by name.
func cmpName(a, b sfs.SecretRef) int { return strings.Compare(a.Name, b.Name) }

// byName compares a ref's name with a name, for binary searches.
func byName(r sfs.SecretRef, name string) int { return strings.Compare(r.Name, name) }
