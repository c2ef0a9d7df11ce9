package mount

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/mount/catalog"
)

// poolKey tells which mounts may share a cache: those that reach Secrets
// Manager as the same identity (region, profile, endpoint, role and static
// key) with the same User-Agent version and cache settings.
type poolKey struct {
	Identity cache.Identity
	Version  string
	// Cache is the cache's configuration without clock, logger or
	// observer: Config.Cache alone says which settings reach the cache.
	Cache cache.Config
}

func poolKeyOf(cfg Config, env Env) poolKey {
	return poolKey{Identity: cfg.identity(env), Version: cfg.Version, Cache: cfg.Cache(nil, nil, nil)}
}

// shared is one identity's client and cache, used by every mount of that
// identity.
type shared struct {
	cache *cache.Cache // also lists secrets for the catalogs, storing what it lists
	obs   *fanout      // the cache's observer: each mount's metrics and expiry
	refs  int
	// watchers keep the named secrets of the identity's mounts up to date,
	// one for each set of secrets: mounts naming the same secrets (the
	// pods of one deployment) share one, and so its calls. Guarded by the
	// pool's mu.
	watchers map[watchKey]*sharedWatcher
}

// watchKey is a set of secret ids (sorted, "\n"-joined) and the interval
// they are listed at.
type watchKey struct {
	ids      string
	interval time.Duration
}

// sharedWatcher is a catalog.Watcher used by refs mounts.
type sharedWatcher struct {
	w       *catalog.Watcher
	refs    int           // guarded by the pool's mu
	started chan struct{} // closed once the first pass ended
	failed  bool          // the first pass was cut short; set before started closes
	end     func()        // ends the watcher's lifetime
}

// cachePool holds one cache per identity, counted by the mounts using it;
// the last mount to release an identity closes its cache.
type cachePool struct {
	mu      sync.Mutex
	entries map[poolKey]*shared
}

func newCachePool() *cachePool { return &cachePool{entries: map[poolKey]*shared{}} }

// acquire returns the cache of cfg's identity, built on first use, and the
// function that gives it back.
func (p *cachePool) acquire(ctx context.Context, cfg Config, env Env, clock cache.Clock, log *slog.Logger) (*shared, func(), error) {
	key := poolKeyOf(cfg, env)
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.entries[key]
	if s == nil {
		client, err := cache.NewClient(ctx, key.Identity, cfg.Version)
		if err != nil {
			return nil, nil, err
		}
		obs := &fanout{}
		c, err := cache.New(client, cfg.Cache(clock, log.With("component", "cache"), obs))
		if err != nil {
			return nil, nil, fmt.Errorf("cache: %w", err)
		}
		s = &shared{cache: c, obs: obs, watchers: map[watchKey]*sharedWatcher{}}
		p.entries[key] = s
	}
	s.refs++
	var once sync.Once
	return s, func() { once.Do(func() { p.release(key, s) }) }, nil
}

func (p *cachePool) release(key poolKey, s *shared) {
	p.mu.Lock()
	s.refs--
	last := s.refs == 0
	if last && p.entries[key] == s {
		delete(p.entries, key)
	}
	p.mu.Unlock()
	if last {
		s.cache.Close()
	}
}

// watch keeps ids up to date in s's cache, listing them every interval
// with a catalog.Watcher shared by every mount of s that names the same
// ids, and returns the function that gives it back (the last one stops
// it). The first mount makes the watcher's first pass; the others wait
// for it. ctx bounds that wait and that pass only.
func (p *cachePool) watch(ctx context.Context, s *shared, ids []string, interval time.Duration, opts catalog.Options) (release func(), err error) {
	ids = slices.Compact(slices.Sorted(slices.Values(ids))) // a copy
	key := watchKey{ids: strings.Join(ids, "\n"), interval: interval}
	for {
		p.mu.Lock()
		sw := s.watchers[key]
		first := sw == nil
		if first {
			life, end := context.WithCancel(context.WithoutCancel(ctx))
			sw = &sharedWatcher{w: catalog.NewWatcher(ids, s.cache, s.cache, interval, opts), started: make(chan struct{}), end: end}
			s.watchers[key] = sw
			sw.refs++
			p.mu.Unlock()
			stop := context.AfterFunc(ctx, end) // ctx ending during the first pass ends it
			err := sw.w.Start(life)
			stop()
			if err != nil {
				p.mu.Lock()
				delete(s.watchers, key)
				p.mu.Unlock()
				sw.failed = true
				close(sw.started)
				end()
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, err
			}
			close(sw.started)
		} else {
			sw.refs++
			p.mu.Unlock()
			select {
			case <-sw.started:
			case <-ctx.Done():
				p.unwatch(s, key, sw)
				return nil, ctx.Err()
			}
			if sw.failed {
				continue // its first mount gave up: start it again
			}
		}
		var once sync.Once
		return func() { once.Do(func() { p.unwatch(s, key, sw) }) }, nil
	}
}

// unwatch gives a shared watcher back; the last user stops it.
func (p *cachePool) unwatch(s *shared, key watchKey, sw *sharedWatcher) {
	p.mu.Lock()
	sw.refs--
	last := sw.refs == 0
	if last && s.watchers[key] == sw {
		delete(s.watchers, key)
	}
	p.mu.Unlock()
	if last {
		sw.w.Stop()
		sw.end()
	}
}

// caches returns every cache in use.
func (p *cachePool) caches() []*cache.Cache {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*cache.Cache, 0, len(p.entries))
	for _, s := range p.entries {
		out = append(out, s.cache)
	}
	return out
}

// fanout passes every observation of a shared cache on to each mount's
// observers.
type fanout struct {
	mu   sync.RWMutex
	next int
	obs  map[int]cache.Observer
}

// add makes o observe the cache until remove is called; a nil o is ignored.
func (f *fanout) add(o cache.Observer) (remove func()) {
	if o == nil {
		return func() {}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.obs == nil {
		f.obs = map[int]cache.Observer{}
	}
	id := f.next
	f.next++
	f.obs[id] = o
	return func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.obs, id)
	}
}

func (f *fanout) APICall(op string, err error, took time.Duration) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, o := range f.obs {
		o.APICall(op, err, took)
	}
}

func (f *fanout) Refresh(secretID string, err error, took time.Duration) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, o := range f.obs {
		o.Refresh(secretID, err, took)
	}
}
