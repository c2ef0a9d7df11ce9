package cache

import "time"

// Backoff is an exponential backoff: the wait after a failure grows by
// Growth with each further consecutive failure, from Base up to Max. The
// cache's retries of failed refreshes use it, and so does the catalog's
// retry of failed listings, so that every retry in secretsfs follows one
// rule.
type Backoff struct {
	// Base is the wait after a first failure.
	Base time.Duration
	// Growth multiplies the wait after each further failure (at least 1).
	Growth float64
	// Max caps the wait.
	Max time.Duration
}

// Delay is the wait after a failure preceded by n consecutive failures:
// min(Base * Growth^n, Max). n <= 0 gives min(Base, Max).
func (b Backoff) Delay(n int) time.Duration {
	d := float64(b.Base)
	limit := float64(b.Max)
	for i := 0; i < n && d < limit; i++ {
		d *= b.Growth
	}
	if d >= limit {
		return b.Max // not time.Duration(limit): float64 rounds a Max near the largest Duration up, past it
	}
	return time.Duration(d)
}
