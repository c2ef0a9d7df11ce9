package mount

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/secretsfs/secretsfs/cache"
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
		s = &shared{cache: c, obs: obs}
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
