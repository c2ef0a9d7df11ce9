// Package fakecache builds, for tests of the packages above the cache, a
// real cache.Cache over the fake client and fake clock of cache/cachetest.
package fakecache

import (
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
)

// New builds a cache over a fake client and clock (a one-minute refresh
// interval, retries capped at a second), with background refresh off
// unless a tweak turns it on; it is closed when the test ends.
func New(tb testing.TB, tweaks ...func(*cache.Config)) (*cache.Cache, *cachetest.Client, *cachetest.Clock) {
	tb.Helper()
	client := cachetest.NewClient()
	clock := cachetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	cfg := cache.DefaultConfig()
	cfg.RefreshAhead = 0
	cfg.Clock = clock
	cfg.SecretRefreshInterval = time.Minute
	cfg.ExceptionRetryDelayMax = time.Second
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	c, err := cache.New(client, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c, client, clock
}
