package cache

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Config holds the cache's settings. The first seven fields are those of the
// reference caching clients' SecretCacheConfig, with the same defaults; the
// rest are secretsfs's additions. Start from DefaultConfig and change what
// you need: New rejects invalid values with an error naming the field.
type Config struct {
	// MaxCacheSize is how many secrets are kept; the least recently used is
	// evicted beyond it. Each secret also keeps its last 10 versions.
	// A larger cache costs memory; a smaller one costs API calls.
	MaxCacheSize int
	// ExceptionRetryDelayBase is the wait after the first failed refresh.
	// Each wait of the backoff is drawn uniformly in its top quarter
	// ([3w/4, w]), so that secrets which failed together are not retried in
	// step.
	ExceptionRetryDelayBase time.Duration
	// ExceptionRetryGrowthFactor multiplies the wait after each further
	// consecutive failure. It must be at least 1.
	ExceptionRetryGrowthFactor float64
	// ExceptionRetryDelayMax caps the wait between retries. A small cap
	// notices recovery sooner at the price of more calls during an outage.
	ExceptionRetryDelayMax time.Duration
	// DefaultVersionStage is the stage read when a caller names none.
	DefaultVersionStage string
	// SecretRefreshInterval is how long a secret's metadata is trusted before
	// it is asked for again; each refresh picks the next time uniformly in
	// [T/2, T] so that many hosts do not poll in step. Shorter means
	// rotations show sooner and more DescribeSecret calls. Zero asks on
	// every read.
	SecretRefreshInterval time.Duration
	// Hook, when set, transforms what is stored and what is read back.
	Hook Hook

	// RefreshAhead is how long before a secret in use expires it is
	// refreshed in the background, so that reads never wait for the network.
	// It is capped at a quarter of the secret's current refresh period.
	// Zero turns background refresh off (the reference's behaviour): an
	// expired secret is then refreshed by the read that finds it expired.
	// With background refresh on, call Close when done with the cache.
	RefreshAhead time.Duration
	// RotationGrace is how long after a NextRotationDate reported by
	// DescribeSecret the secret is refreshed, so that a scheduled rotation
	// shows within seconds rather than within the refresh interval.
	RotationGrace time.Duration
	// ForceRefreshMaxWait caps how long RefreshNow (and RequestRefresh when
	// it may cut a backoff short) waits for a pending retry time while the
	// secret is backing off after errors.
	ForceRefreshMaxWait time.Duration
	// ForceRefreshMinInterval is the least time between two calls that
	// RequestRefresh makes for one secret: a request sooner after the start
	// of the secret's last forced refresh reports the outcome of the refresh
	// stored last. Longer bounds what readers who loop can cost; shorter
	// lets them see a change sooner. Zero sets no bound (concurrent requests
	// still share a call).
	ForceRefreshMinInterval time.Duration
	// FetchTimeout bounds each Secrets Manager call. Calls run detached from
	// the callers that wait for them, so one caller's cancelled context never
	// fails the others.
	FetchTimeout time.Duration
	// MaxInFlight is how many Secrets Manager calls the cache makes at once,
	// at most, whatever the number of secrets and readers. Background
	// refreshes take at most all but two of them (at least one), from as
	// many goroutines, so that a reader's call always finds room. More
	// fetches a cold directory sooner; fewer is gentler on the account's
	// request quotas and on memory (each call holds its answer).
	//
	// Calls are also paced when Secrets Manager throttles: after a
	// throttling answer (ThrottlingException, TooManyRequestsException,
	// RequestLimitExceeded) to any call, every call of the cache is paced,
	// first at half the rate of the last second, then at half the pace
	// again after each further throttling answer (down to one call a
	// second); each second of successful calls adds one call a second, and
	// beyond a hundred calls a second pacing ends. Background refreshes
	// yield to readers: they take only the pace readers leave, and wait
	// while readers' calls are queued. Readers wait their turn too, never
	// beyond their context.
	MaxInFlight int
	// Clock tells the time; nil means the system clock.
	Clock Clock
	// Rand is the jitter's random source; nil means math/rand/v2's.
	Rand Rand
	// Logger receives warnings (stale values served, failed refreshes);
	// nil discards them. Secret values are never logged.
	Logger *slog.Logger
	// Observer, when set, is told of every call to Secrets Manager and every
	// refresh, e.g. to export metrics.
	Observer Observer
}

// Defaults of the reference caching client.
const (
	DefaultMaxCacheSize               = 1024
	DefaultExceptionRetryDelayBase    = time.Second
	DefaultExceptionRetryGrowthFactor = 2
	DefaultExceptionRetryDelayMax     = time.Hour
	DefaultVersionStage               = "AWSCURRENT"
	DefaultSecretRefreshInterval      = time.Hour
)

// DefaultMaxInFlight is the default Config.MaxInFlight.
const DefaultMaxInFlight = 8

// versionCacheSize is how many versions of one secret are kept, as in the
// reference.
const versionCacheSize = 10

// DefaultConfig returns the reference's defaults, with background refresh a
// minute ahead of expiry, rotation pick-up 10 s after a scheduled rotation,
// forced refreshes waiting at most 5 s for a pending retry, requested ones
// calling at most once a second per secret, 30 s per call, and at most 8
// calls at once.
func DefaultConfig() Config {
	return Config{
		MaxCacheSize:               DefaultMaxCacheSize,
		ExceptionRetryDelayBase:    DefaultExceptionRetryDelayBase,
		ExceptionRetryGrowthFactor: DefaultExceptionRetryGrowthFactor,
		ExceptionRetryDelayMax:     DefaultExceptionRetryDelayMax,
		DefaultVersionStage:        DefaultVersionStage,
		SecretRefreshInterval:      DefaultSecretRefreshInterval,
		RefreshAhead:               time.Minute,
		RotationGrace:              10 * time.Second,
		ForceRefreshMaxWait:        5 * time.Second,
		ForceRefreshMinInterval:    time.Second,
		FetchTimeout:               30 * time.Second,
		MaxInFlight:                DefaultMaxInFlight,
	}
}

// validate reports every invalid field at once.
func (c Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("cache config: %s %s", field, fmt.Sprintf(format, args...)))
	}
	if c.MaxCacheSize <= 0 {
		bad("MaxCacheSize", "is %d; it must be at least 1", c.MaxCacheSize)
	}
	if c.ExceptionRetryDelayBase < 0 {
		bad("ExceptionRetryDelayBase", "is %v; it must not be negative", c.ExceptionRetryDelayBase)
	}
	if !(c.ExceptionRetryGrowthFactor >= 1) { // also catches NaN
		bad("ExceptionRetryGrowthFactor", "is %v; it must be at least 1", c.ExceptionRetryGrowthFactor)
	}
	if c.ExceptionRetryDelayMax < 0 {
		bad("ExceptionRetryDelayMax", "is %v; it must not be negative", c.ExceptionRetryDelayMax)
	}
	if c.DefaultVersionStage == "" {
		bad("DefaultVersionStage", "is empty; use %q unless you need another stage", DefaultVersionStage)
	}
	if c.SecretRefreshInterval < 0 {
		bad("SecretRefreshInterval", "is %v; it must not be negative", c.SecretRefreshInterval)
	}
	if c.RefreshAhead < 0 {
		bad("RefreshAhead", "is %v; it must not be negative (zero turns background refresh off)", c.RefreshAhead)
	}
	if c.RotationGrace < 0 {
		bad("RotationGrace", "is %v; it must not be negative", c.RotationGrace)
	}
	if c.ForceRefreshMaxWait < 0 {
		bad("ForceRefreshMaxWait", "is %v; it must not be negative", c.ForceRefreshMaxWait)
	}
	if c.ForceRefreshMinInterval < 0 {
		bad("ForceRefreshMinInterval", "is %v; it must not be negative (zero sets no bound)", c.ForceRefreshMinInterval)
	}
	if c.FetchTimeout <= 0 {
		bad("FetchTimeout", "is %v; it must be positive", c.FetchTimeout)
	}
	if c.MaxInFlight < 1 {
		bad("MaxInFlight", "is %d; it must be at least 1 (the default is %d)", c.MaxInFlight, DefaultMaxInFlight)
	}
	return errors.Join(errs...)
}

// backgroundSlots is how many calls background refreshes make at once: all
// but two of MaxInFlight, at least one.
func (c Config) backgroundSlots() int {
	return max(1, c.MaxInFlight-2)
}

// retryDelay is the wait after a failure preceded by n consecutive failures:
// min(base * growth^n, max).
func (c Config) retryDelay(n int) time.Duration {
	return Backoff{Base: c.ExceptionRetryDelayBase, Growth: c.ExceptionRetryGrowthFactor, Max: c.ExceptionRetryDelayMax}.Delay(n)
}
