package telemetry

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/secretsfs/secretsfs/cache"
)

// Health answers /healthz: healthy when the filesystem is mounted and every
// secret the cache holds because it was read, or is pinned, can be served:
// its last refresh succeeded, or failed while an answer no older than
// --max-stale is still served, and no stage points at a version whose value
// failed to be fetched. A secret only described (a name looked up, a
// directory listed) does not count, nor does one that does not exist (a
// reader's wrong path): a typo must not fail a liveness probe. The cache
// retries a failed secret that counts in the background, so health comes
// back without a reader. Mapped files' secrets are pinned, so they count
// before anybody reads them.
//
// Cost: a health answer is about every secret that counts, so it walks the
// cache; the walk is bounded instead of made per request. /healthz, the
// secretsfs_healthy gauge and the secretsfs_stale_secrets gauge share the
// last walk while the cache has made no call to Secrets Manager since and
// it is less than walkEvery old (by the injected clock): with nothing
// changing, a probe or a scrape costs the same with 10 secrets as with
// 10 000, however often it comes. A call (a refresh, its failure, a
// recovery) shows at the next request; what changes without a call (a
// secret turning too stale, a pin) within walkEvery.
type Health struct {
	c        CacheView
	mounted  atomic.Bool
	maxStale time.Duration
	clock    cache.Clock

	mu   sync.Mutex // held during a walk: concurrent requests share it
	last *walk      // guarded by mu; nil before the first
}

// walkEvery bounds how often health walks the cache.
const walkEvery = time.Second

// walk is what one look at every cached secret found.
type walk struct {
	at         time.Time
	calls      int64 // the cache's count of calls (and failures) when it was made
	checked    int   // secrets that count (read or pinned)
	stale      int   // cached secrets served from an older answer
	unservable []Unservable
}

// NewHealth reports on the secrets of c; maxStale is --max-stale (0 for no
// bound), timed by clock. It reports not mounted until SetMounted(true).
func NewHealth(c CacheView, maxStale time.Duration, clock cache.Clock) *Health {
	return &Health{c: c, maxStale: maxStale, clock: clock}
}

// SetMounted says whether the filesystem is mounted and serving.
func (h *Health) SetMounted(mounted bool) { h.mounted.Store(mounted) }

// Report is /healthz's JSON body.
type Report struct {
	Healthy    bool         `json:"healthy"`
	Mounted    bool         `json:"mounted"`
	Secrets    int          `json:"secrets_checked"`
	Unservable []Unservable `json:"unservable,omitempty"`
}

// Unservable names a secret that cannot be served, and why.
type Unservable struct {
	SecretID string `json:"secret_id"`
	Reason   string `json:"reason"`
}

// Check reports on the mount and every secret that counts (as of the
// last walk: see Health).
func (h *Health) Check() Report {
	w := h.walked()
	r := Report{Mounted: h.mounted.Load(), Secrets: w.checked, Unservable: slices.Clone(w.unservable)}
	r.Healthy = r.Mounted && len(r.Unservable) == 0
	return r
}

// Stale counts the cached secrets whose last refresh failed, served from
// an older answer (as of the last walk).
func (h *Health) Stale() int { return h.walked().stale }

// walked returns the last walk of the cache, or walks it again when it is
// walkEvery old or the cache made a call since.
func (h *Health) walked() *walk {
	now := h.clock.Now()
	calls := callCount(h.c.Stats())
	h.mu.Lock()
	defer h.mu.Unlock()
	if l := h.last; l != nil && l.calls == calls && !now.Before(l.at) && now.Sub(l.at) < walkEvery {
		return l
	}
	w := &walk{at: now, calls: calls}
	for _, id := range h.c.SecretIDs() {
		in, ok := h.c.Info(id)
		if !ok {
			continue
		}
		if in.Stale {
			w.stale++
		}
		if !in.Read && !in.Pinned {
			continue // never read: nothing served, nothing failed
		}
		w.checked++
		if reason := h.unservable(in, now); reason != "" {
			w.unservable = append(w.unservable, Unservable{SecretID: id, Reason: reason})
		}
	}
	h.last = w
	return w
}

// callCount is how many calls the cache made, and how many failed.
func callCount(s cache.Stats) int64 {
	n := s.Errors
	for _, c := range s.APICalls {
		n += c
	}
	return n
}

// unservable says why a secret cannot be served, or "" when it can.
func (h *Health) unservable(in cache.SecretInfo, now time.Time) string {
	if in.LastError != nil {
		switch {
		case errors.Is(in.LastError, cache.ErrNotFound):
			return ""
		case !in.Stale:
			return fmt.Sprintf("no value: %v", in.LastError)
		case h.maxStale > 0 && now.Sub(in.RefreshedAt) > h.maxStale:
			return fmt.Sprintf("stale longer than --max-stale %v: %v", h.maxStale, in.LastError)
		}
	}
	for _, v := range in.Versions {
		if v.LastError == nil || !v.FetchedAt.IsZero() {
			continue
		}
		for stage, vid := range in.Stages {
			if vid == v.VersionID {
				return fmt.Sprintf("stage %s: version %s cannot be fetched: %v", stage, vid, v.LastError)
			}
		}
	}
	return ""
}
