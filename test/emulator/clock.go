package emulator

import (
	"sync"
	"time"
)

// Clock tells the emulator the time. It decides every date the emulator
// reports (CreatedDate, LastChangedDate, DeletedDate, NextRotationDate) and
// when a secret's recovery window is over.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// ManualClock is a Clock that only moves when told to, for tests that drive
// recovery windows and rotation schedules without sleeping. It is safe for
// concurrent use.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time // guarded by mu
}

// NewManualClock returns a ManualClock set to t.
func NewManualClock(t time.Time) *ManualClock {
	return &ManualClock{now: t}
}

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set sets the clock to t.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
