package hooks

import (
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// fakeClockCache builds a cache over a fake client and clock, with
// background refresh off unless a tweak turns it on.
func fakeClockCache(t *testing.T, tweaks ...func(*cache.Config)) (*cache.Cache, *cachetest.Client, *cachetest.Clock) {
	t.Helper()
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
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, client, clock
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, what, cond)
}
