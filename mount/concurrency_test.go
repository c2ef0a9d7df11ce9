package mount

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
)

// SIGHUP's forced refresh of every cached secret runs refreshConcurrency
// refreshes at once, never more.
func TestRefreshAllIsBounded(t *testing.T) {
	client := cachetest.NewClient()
	cc := cache.DefaultConfig()
	cc.RefreshAhead = 0
	cc.Clock = cachetest.NewClock(t0)
	c, err := cache.New(client, cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for i := range 3 * refreshConcurrency {
		id := fmt.Sprint("s", i)
		client.PutString(id, "v")
		if _, err := c.GetSecretString(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}

	client.Hold()
	t.Cleanup(client.Release) // also on failure: no refresh stays held
	var wg sync.WaitGroup
	wg.Go(func() { refreshAll(context.Background(), c, slog.New(slog.DiscardHandler)) })
	waitFor(t, "the bound of refreshes under way", func() bool { now, _ := client.InFlight(); return now == refreshConcurrency })
	client.Release()
	wg.Wait()
	if _, most := client.InFlight(); most != refreshConcurrency {
		t.Fatalf("at most %d calls under way at once, want %d", most, refreshConcurrency)
	}
}
