package catalog

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/cache/cachetest"
	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// t0 is the fake clocks' start.
var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func testOptions(clock *cachetest.Clock) Options {
	return Options{
		Interval:    time.Minute,
		MissTTL:     10 * time.Second,
		MaxMisses:   defaultMaxMisses,
		LookupRate:  defaultLookupRate,
		LookupBurst: defaultLookupBurst,
		RetryMin:    time.Second,
		Clock:       clock,
		// Errors show in the test output, to explain a failure.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, what, cond)
}

// advanceWhenWaiting moves the fake clock once a goroutine waits on it.
func advanceWhenWaiting(t *testing.T, clock *cachetest.Clock, d time.Duration) {
	t.Helper()
	waitFor(t, "a goroutine waiting on the clock", func() bool { return clock.Waiters() > 0 })
	clock.Advance(d)
}

func names(refs []sfs.SecretRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Name
	}
	return out
}

func startCatalog(t *testing.T, c Catalog) {
	t.Helper()
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(c.Stop)
}
