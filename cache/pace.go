package cache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/aws/smithy-go"
)

// This file holds what bounds the cache's calls as a whole: the call slots
// (Config.MaxInFlight) and the pace set by throttling answers. Both apply in
// call, to every call the cache makes.

// errClosed is the cause of a background call given up because the cache
// was closed. It is never stored as an entry's error.
var errClosed = errors.New("cache closed")

// bgKey marks a context as background work; its value is a bgMark.
type bgKey struct{}

// bgMark marks background work. promote, when set, is closed when a reader
// comes to wait for the work: its calls then run as a reader's.
type bgMark struct{ promote <-chan struct{} }

// backgroundCtx marks ctx as background work: its calls take only the
// background slots and yield to readers' calls under pacing. Calls without
// the mark are foreground.
func backgroundCtx(ctx context.Context) context.Context {
	return context.WithValue(ctx, bgKey{}, bgMark{})
}

// promotableCtx marks ctx as background work that becomes a reader's once
// promote is closed.
func promotableCtx(ctx context.Context, promote <-chan struct{}) context.Context {
	return context.WithValue(ctx, bgKey{}, bgMark{promote: promote})
}

// backgroundMark tells whether ctx is background work, not promoted yet,
// and returns its promote channel (nil if it cannot be promoted).
func backgroundMark(ctx context.Context) (promote <-chan struct{}, bg bool) {
	m, ok := ctx.Value(bgKey{}).(bgMark)
	if !ok {
		return nil, false
	}
	select {
	case <-m.promote:
		return nil, false
	default:
		return m.promote, true
	}
}

func isBackground(ctx context.Context) bool {
	_, bg := backgroundMark(ctx)
	return bg
}

// isThrottle tells whether a call's error is the service asking for fewer
// calls. It looks at the error code, never at the message.
func isThrottle(err error) bool {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode() {
	case codeThrottling, codeTooManyRequests, codeRequestLimit:
		return true
	}
	return false
}

// slots bounds the calls under way at once: every call holds one of all,
// and a background call also one of bg, which has fewer, so that some are
// always left for readers.
type slots struct {
	all, bg chan struct{}
}

func newSlots(cfg Config) slots {
	return slots{all: make(chan struct{}, cfg.MaxInFlight), bg: make(chan struct{}, cfg.backgroundSlots())}
}

// acquire waits for a slot, or for ctx to be done. A background call
// (promote non-nil or bg) that is promoted while it waits for a background
// slot goes on as a reader's. It reports whether it holds a background
// slot, to hand to release.
func (s slots) acquire(ctx context.Context, bg bool, promote <-chan struct{}) (heldBg bool, err error) {
	if bg {
		select {
		case s.bg <- struct{}{}:
			heldBg = true
		case <-promote:
		case <-ctx.Done():
			return false, context.Cause(ctx)
		}
	}
	select {
	case s.all <- struct{}{}:
		return heldBg, nil
	case <-ctx.Done():
		if heldBg {
			<-s.bg
		}
		return false, context.Cause(ctx)
	}
}

func (s slots) release(heldBg bool) {
	<-s.all
	if heldBg {
		<-s.bg
	}
}

// Pacing under throttling (AIMD): see Config.MaxInFlight.
const (
	paceMinRate  = 1.0   // calls a second, the slowest pace
	paceMaxRate  = 100.0 // calls a second; beyond it, calls are not paced
	paceRecovery = 1.0   // calls a second added per second of successful calls
	paceBurst    = 4.0   // calls that may start at once under pacing
)

// pacer spaces the cache's calls after throttling answers: a token bucket
// whose rate halves on each throttling answer and grows back linearly while
// calls succeed. Readers reserve their turn (the bucket may go into debt);
// background calls take a token only when one is free, so they yield to
// readers. Unthrottled, it costs one lock per call and paces nothing.
type pacer struct {
	mu      sync.Mutex
	rate    float64   // calls a second; 0: not paced; guarded by mu
	tokens  float64   // at last; negative while readers are queued; guarded by mu
	last    time.Time // guarded by mu
	grownAt time.Time // when rate last changed; guarded by mu
	epoch   uint64    // bumped on each slow-down; guarded by mu
	// Calls started in the current and the previous second, to know the
	// rate at which the first throttling answer came.
	winStart        time.Time // guarded by mu
	winCalls, prevN int       // guarded by mu
}

// refillLocked adds the tokens earned since last.
func (p *pacer) refillLocked(now time.Time) {
	if now.After(p.last) {
		p.tokens = min(paceBurst, p.tokens+now.Sub(p.last).Seconds()*p.rate)
		p.last = now
	}
}

// until is when the tokens reach want, at the current rate.
func (p *pacer) untilLocked(now time.Time, want float64) time.Time {
	return now.Add(time.Duration((want - p.tokens) / p.rate * float64(time.Second)))
}

// reserve takes a reader's turn and returns when it comes (now when calls
// are not paced). Give the turn back with unreserve if it is not used.
func (p *pacer) reserve(now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rate == 0 {
		return now
	}
	p.refillLocked(now)
	p.tokens--
	if p.tokens >= 0 {
		return now
	}
	return p.untilLocked(now, 0)
}

func (p *pacer) unreserve() {
	p.mu.Lock()
	if p.rate != 0 {
		p.tokens = min(paceBurst, p.tokens+1)
	}
	p.mu.Unlock()
}

// take takes a background call's turn if one is free now; otherwise it
// returns when to try again.
func (p *pacer) take(now time.Time) (ok bool, retry time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rate == 0 {
		return true, time.Time{}
	}
	p.refillLocked(now)
	if p.tokens >= 1 {
		p.tokens--
		return true, time.Time{}
	}
	return false, p.untilLocked(now, 1)
}

// started counts a call starting now and returns the pace's epoch, to hand
// back with the call's outcome.
func (p *pacer) started(now time.Time) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := now.Sub(p.winStart); d >= time.Second || d < 0 {
		p.prevN = 0
		if d < 2*time.Second && d >= 0 {
			p.prevN = p.winCalls
		}
		p.winStart, p.winCalls = now, 0
	}
	p.winCalls++
	return p.epoch
}

// throttled slows the pace down after a throttling answer to a call that
// started in epoch: calls that started before the last slow-down do not
// slow it down again.
func (p *pacer) throttled(now time.Time, epoch uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if epoch != p.epoch {
		return
	}
	p.epoch++
	if p.rate == 0 {
		// Pacing starts with a full bucket: a few calls may still go at
		// once, then one per 1/rate.
		p.rate = min(paceMaxRate, float64(max(p.winCalls, p.prevN))) / 2
		p.tokens, p.last = paceBurst, now
	} else {
		p.refillLocked(now)
		p.rate /= 2
	}
	p.rate = max(p.rate, paceMinRate)
	p.grownAt = now
}

// succeeded lets the pace grow back after a successful call.
func (p *pacer) succeeded(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rate == 0 || !now.After(p.grownAt) {
		return
	}
	p.refillLocked(now)
	p.rate += paceRecovery * now.Sub(p.grownAt).Seconds()
	p.grownAt = now
	if p.rate > paceMaxRate {
		p.rate, p.tokens = 0, paceBurst
	}
}

// pace waits for a call's turn under the pacing, or for ctx to be done. A
// background call promoted while it waits takes a reader's turn.
func (c *Cache) pace(ctx context.Context, bg bool, promote <-chan struct{}) error {
	if !bg {
		at := c.pacer.reserve(c.clock.Now())
		if !at.After(c.clock.Now()) {
			return nil
		}
		select {
		case <-c.clock.Alarm(at):
			return nil
		case <-ctx.Done():
			c.pacer.unreserve()
			return context.Cause(ctx)
		}
	}
	for {
		ok, retry := c.pacer.take(c.clock.Now())
		if ok {
			return nil
		}
		select {
		case <-c.clock.Alarm(retry):
		case <-promote:
			return c.pace(ctx, false, nil)
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}
