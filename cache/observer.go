package cache

import "time"

// Observer learns what the cache does, for metrics. Its methods are called
// from the cache's goroutines, never with a lock held, and must not block.
// Nothing passed to them is secret.
type Observer interface {
	// APICall reports one Secrets Manager call: its operation
	// (OpDescribeSecret, OpGetSecretValue, OpBatchGetSecretValue,
	// OpListSecrets), its error as the cache's callers
	// see it (matching ErrNotFound, ErrAccessDenied, ErrUnavailable, or nil)
	// and how long it took.
	APICall(op string, err error, took time.Duration)
	// Refresh reports one refresh of a secret: DescribeSecret and the fetch
	// of the values its stages in use moved to, with the refresh's error.
	Refresh(secretID string, err error, took time.Duration)
}

type nopObserver struct{}

func (nopObserver) APICall(string, error, time.Duration) {}
func (nopObserver) Refresh(string, error, time.Duration) {}
