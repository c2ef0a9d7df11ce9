package cache

import (
	"context"
	"fmt"
	"time"
)

// RefreshNow refreshes the secret's metadata at once, fetches the values its
// stages in use now point at, and reports whether the refresh succeeded. It
// shares the single flight of reads: it joins a refresh in flight, and
// starts one of its own only if that one began before the call, so that a
// change made before the call shows. While the secret is backing off after
// errors it first waits for the pending retry time, at most
// Config.ForceRefreshMaxWait. It is for the program that owns the cache;
// RequestRefresh is the one to offer to others.
func (c *Cache) RefreshNow(ctx context.Context, secretID string) error {
	e := c.entry(secretID)
	after := c.seq.Load()
	return c.forceRefresh(ctx, e, true, func(e *secretEntry, _ time.Time) bool {
		return e.attemptSeq > after
	})
}

// RefreshRequest says what a forced refresh asked for through
// RequestRefresh may do.
type RefreshRequest struct {
	// CutBackoff lets the request refresh a secret that is backing off
	// after errors, once its retry time has come or after at most
	// Config.ForceRefreshMaxWait, as RefreshNow does. Give it only to
	// trusted callers (a mount's owner, root): without it a request during
	// the backoff makes no call and reports the last error at once.
	CutBackoff bool
}

// RequestRefresh is RefreshNow made safe to offer to untrusted callers
// (every reader of a mounted file): it joins a refresh in flight; it starts
// at most one forced refresh per secret per Config.ForceRefreshMinInterval,
// a request inside that window reporting the outcome of the refresh stored
// last; and while the secret backs off after errors it calls only when
// req.CutBackoff allows it.
func (c *Cache) RequestRefresh(ctx context.Context, secretID string, req RefreshRequest) error {
	e := c.entry(secretID)
	after := c.seq.Load()
	window := c.cfg.ForceRefreshMinInterval
	return c.forceRefresh(ctx, e, req.CutBackoff, func(e *secretEntry, now time.Time) bool {
		forcedAt := e.forcedAtLocked()
		return e.attemptSeq > after || !forcedAt.IsZero() && now.Sub(forcedAt) < window
	})
}

// maxForcedFlights bounds the flights one forced refresh waits for: the one
// in flight, which may have started too early or found nothing to do, and
// then its own.
const maxForcedFlights = 3

// forceRefresh refreshes e until done holds, and returns the outcome of the
// refresh stored last. It joins the refresh in flight, if any, and starts
// one only while done does not hold. While e is backing off after errors it
// makes no call unless cutBackoff, and then first waits for the retry time,
// at most Config.ForceRefreshMaxWait.
func (c *Cache) forceRefresh(ctx context.Context, e *secretEntry, cutBackoff bool, done refreshCond) error {
	now := c.clock.Now()
	e.mu.Lock()
	if len(e.uses) == 0 {
		e.track(c.cfg.DefaultVersionStage)
	}
	var wait time.Time
	if e.fail != nil && now.Before(e.fail.retry) {
		if !cutBackoff {
			err := e.fail.err
			e.mu.Unlock()
			return err
		}
		wait = e.fail.retry
		if limit := now.Add(c.cfg.ForceRefreshMaxWait); limit.Before(wait) {
			wait = limit
		}
	}
	e.mu.Unlock()

	if !wait.IsZero() {
		select {
		case <-c.clock.Alarm(wait):
		case <-ctx.Done():
			return fmt.Errorf("refresh %q: %w", e.id, ctx.Err())
		}
	}
	// pending is the flight's condition, checked as it starts: when it
	// decides to call, it marks the call as forced.
	pending := func(e *secretEntry, now time.Time) bool {
		if done(e, now) {
			return false
		}
		e.rareLocked().forcedAt = now
		return true
	}
	for range maxForcedFlights {
		if err := c.waitFlight(ctx, c.secretFlight(e, pending)); err != nil && ctx.Err() != nil {
			return fmt.Errorf("refresh %q: %w", e.id, ctx.Err())
		}
		e.mu.Lock()
		ok := done(e, c.clock.Now())
		e.mu.Unlock()
		if ok {
			break
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fail.lastErr()
}

// Pin keeps a secret refreshed in the background even when nobody reads it
// through the cache, e.g. because the kernel serves its file from its own
// cache. It needs background refresh on (Config.RefreshAhead > 0). Call the
// returned function to undo it. A pinned secret can still be evicted when
// more than MaxCacheSize secrets are in use.
func (c *Cache) Pin(secretID string) (unpin func()) {
	e := c.entry(secretID)
	e.mu.Lock()
	e.pins++
	c.scheduleLocked(e)
	e.mu.Unlock()
	done := false
	return func() {
		e.mu.Lock()
		if !done {
			done = true
			e.pins--
			c.scheduleLocked(e)
		}
		e.mu.Unlock()
	}
}

// backgroundTimeLocked tells when an entry is due for a background refresh,
// if it is in use: RefreshAhead before it expires (at most a quarter of its
// refresh period), or its retry time while in error. A secret in error that
// was ever read or is pinned is retried with the backoff until it recovers,
// read since or not: its readers wait for it. One only described is retried
// when it is asked for again.
func (c *Cache) backgroundTimeLocked(e *secretEntry) (stamp, bool) {
	switch {
	case e.fail != nil && (e.read || e.pins > 0):
		return c.stamp(e.fail.retry), true
	case !e.used && e.pins == 0:
		return 0, false
	case e.force:
		return 0, true
	case e.fail != nil:
		return c.stamp(e.fail.retry), true
	case e.nextRefresh <= e.refreshedAt:
		// A zero refresh interval: every read refreshes; nothing to do ahead.
		return 0, false
	}
	lead := c.cfg.RefreshAhead
	if quarter := time.Duration(e.nextRefresh-e.refreshedAt) / 4; quarter < lead {
		lead = quarter
	}
	return e.nextRefresh - stamp(lead), true
}

// dueInBackground is the background refresh's refreshCond.
func (c *Cache) dueInBackground(e *secretEntry, now time.Time) bool {
	at, ok := c.backgroundTimeLocked(e)
	return ok && at <= c.stamp(now)
}

// Describe returns what the cache knows of a secret's metadata, refreshing
// it first when it has expired (as a read does), without fetching any value.
// A secret that does not exist gives an error matching ErrNotFound.
func (c *Cache) Describe(ctx context.Context, secretID string) (SecretInfo, error) {
	e := c.entry(secretID)
	e.mu.Lock()
	need := c.needsRefresh(e, c.clock.Now())
	e.mu.Unlock()
	if need {
		if err := c.waitFlight(ctx, c.secretFlight(e, c.needsRefresh)); err != nil && ctx.Err() != nil {
			return SecretInfo{}, fmt.Errorf("describe %q: %w", secretID, ctx.Err())
		}
	}
	e.mu.Lock()
	_, err := c.resolveMetaLocked(e)
	e.mu.Unlock()
	if err != nil {
		return SecretInfo{}, err
	}
	info, _ := c.Info(secretID)
	return info, nil
}
