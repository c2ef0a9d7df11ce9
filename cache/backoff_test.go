package cache

import (
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		name string
		b    Backoff
		want map[int]time.Duration // n -> Delay(n)
	}{
		// The cache's retries with its defaults (TestS11_BackoffSequence
		// checks the same through a failing secret).
		{"cache defaults", Backoff{Base: s, Growth: 2, Max: time.Hour},
			map[int]time.Duration{0: s, 1: 2 * s, 2: 4 * s, 11: 2048 * s, 12: time.Hour, 100: time.Hour}},
		{"S11, capped at 60 s", Backoff{Base: s, Growth: 2, Max: 60 * s},
			map[int]time.Duration{0: s, 1: 2 * s, 2: 4 * s, 3: 8 * s, 4: 16 * s, 5: 32 * s, 6: 60 * s, 7: 60 * s, 8: 60 * s}},
		// The catalog's retries of a failed listing: its n-th failure
		// waits Delay(n-1) (TestRetryDelay in mount).
		{"catalog", Backoff{Base: s, Growth: 2, Max: 5 * s},
			map[int]time.Duration{-1: s, 0: s, 1: 2 * s, 2: 4 * s, 3: 5 * s, 39: 5 * s}},
		{"growth 1 stays at base", Backoff{Base: 3 * s, Growth: 1, Max: time.Hour},
			map[int]time.Duration{0: 3 * s, 50: 3 * s}},
		{"fractional growth", Backoff{Base: s, Growth: 1.5, Max: time.Minute},
			map[int]time.Duration{1: 1500 * time.Millisecond, 2: 2250 * time.Millisecond}},
		{"base above max", Backoff{Base: time.Minute, Growth: 2, Max: s},
			map[int]time.Duration{0: s, 5: s}},
		{"zero base", Backoff{Base: 0, Growth: 2, Max: s},
			map[int]time.Duration{0: 0, 10: 0}},
		{"never overflows", Backoff{Base: s, Growth: 1000, Max: time.Duration(1<<63 - 1)},
			map[int]time.Duration{1000: time.Duration(1<<63 - 1)}},
	} {
		for n, want := range tc.want {
			if got := tc.b.Delay(n); got != want {
				t.Errorf("%s: %+v.Delay(%d) = %v, want %v", tc.name, tc.b, n, got, want)
			}
		}
	}
}

// The cache's retry delay is its Backoff: one rule, not a copy.
func TestConfigRetryDelayIsItsBackoff(t *testing.T) {
	c := DefaultConfig()
	c.ExceptionRetryDelayBase, c.ExceptionRetryGrowthFactor, c.ExceptionRetryDelayMax = 250*time.Millisecond, 3, 90*time.Second
	b := Backoff{Base: c.ExceptionRetryDelayBase, Growth: c.ExceptionRetryGrowthFactor, Max: c.ExceptionRetryDelayMax}
	for n := range 10 {
		if got, want := c.retryDelay(n), b.Delay(n); got != want {
			t.Errorf("retryDelay(%d) = %v, Backoff.Delay = %v", n, got, want)
		}
	}
}
