package telemetry

import (
	"errors"
	"fmt"
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
type Health struct {
	c        CacheView
	mounted  atomic.Bool
	maxStale time.Duration
	clock    cache.Clock
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

// Check reports on the mount and every secret that counts.
func (h *Health) Check() Report {
	r := Report{Mounted: h.mounted.Load()}
	for _, id := range h.c.SecretIDs() {
		in, ok := h.c.Info(id)
		if !ok || !in.Read && !in.Pinned {
			continue // never read: nothing served, nothing failed
		}
		r.Secrets++
		if reason := h.unservable(in); reason != "" {
			r.Unservable = append(r.Unservable, Unservable{SecretID: id, Reason: reason})
		}
	}
	r.Healthy = r.Mounted && len(r.Unservable) == 0
	return r
}

// unservable says why a secret cannot be served, or "" when it can.
func (h *Health) unservable(in cache.SecretInfo) string {
	if in.LastError != nil {
		switch {
		case errors.Is(in.LastError, cache.ErrNotFound):
			return ""
		case !in.Stale:
			return fmt.Sprintf("no value: %v", in.LastError)
		case h.maxStale > 0 && h.clock.Now().Sub(in.RefreshedAt) > h.maxStale:
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
