package cache

import (
	"math/rand/v2"
	"time"
)

// Clock tells the time and waits. Every TTL, jitter and backoff decision of
// the cache reads the time from its Clock, so tests drive time with a fake
// one instead of sleeping.
type Clock interface {
	Now() time.Time
	// Alarm returns a channel that receives the time once the clock reaches
	// t; at once if it already has. Waiting for an absolute time rather than
	// a duration leaves no gap between reading the clock and starting to
	// wait.
	Alarm(t time.Time) <-chan time.Time
}

// Rand is the random source for the refresh-time jitter. *rand.Rand from
// math/rand/v2 satisfies it. It must be safe for concurrent use or used
// through the cache only.
type Rand interface {
	// Int64N returns a uniform number in [0, n); n > 0.
	Int64N(n int64) int64
}

// SystemClock returns the real time. It is the only real Clock in
// secretsfs: every other package takes a Clock and is given this one in
// production and a fake in tests.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time                     { return time.Now() }
func (systemClock) Alarm(t time.Time) <-chan time.Time { return time.After(time.Until(t)) }

// globalRand draws from math/rand/v2's goroutine-safe global source.
type globalRand struct{}

func (globalRand) Int64N(n int64) int64 { return rand.Int64N(n) }

// A stamp is a time of the cache's clock in 8 bytes rather than a
// time.Time's 24, for the times the cache keeps per secret: nanoseconds from
// the cache's epoch (its clock's time when it was built, with the monotonic
// reading, so that stamps compare as the clock's times do), offset so that
// the zero stamp stands for the zero time and is before every other.
type stamp int64

// stampOffset is what a stamp adds to the nanoseconds from the epoch; times
// more than 146 years away are clamped.
const stampOffset = int64(1) << 62

// stamp converts a time of the cache's clock.
func (c *Cache) stamp(t time.Time) stamp {
	if t.IsZero() {
		return 0
	}
	d := max(min(int64(t.Sub(c.epoch)), stampOffset-1), 1-stampOffset)
	return stamp(d + stampOffset)
}

// timeOf converts a stamp back.
func (c *Cache) timeOf(s stamp) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return c.epoch.Add(time.Duration(int64(s) - stampOffset))
}

// A wallTime is a date the service gives (a rotation, a change, a version's
// creation) in 8 bytes: Unix nanoseconds, 0 for none.
type wallTime int64

func wallOf(t *time.Time) wallTime {
	if t == nil || t.IsZero() {
		return 0
	}
	return wallTime(t.UnixNano())
}

func (w wallTime) time() time.Time {
	if w == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(w)).UTC()
}
