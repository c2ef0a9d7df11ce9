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
