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

// Explicit mode resolves resolveConcurrency ids at once, never more.
func TestExplicitResolveIsBounded(t *testing.T) {
	var mu sync.Mutex
	now, most := 0, 0
	gate := make(chan struct{})
	var open sync.Once
	t.Cleanup(func() { open.Do(func() { close(gate) }) }) // also on failure: no lookup stays held
	describe := func(ctx context.Context, id string) (secretMeta, error) {
		mu.Lock()
		now++
		most = max(most, now)
		mu.Unlock()
		<-gate
		mu.Lock()
		now--
		mu.Unlock()
		return secretMeta{Name: id}, nil
	}
	ids := make([]string, 3*resolveConcurrency)
	for i := range ids {
		ids[i] = fmt.Sprint("s", i)
	}
	c := newExplicitCatalog(ids, describe, testOptions(cachetest.NewClock(t0)))
	started := make(chan error, 1)
	go func() { started <- c.Start(context.Background()) }()
	waitFor(t, "the bound of lookups under way", func() bool { mu.Lock(); defer mu.Unlock(); return now == resolveConcurrency })
	open.Do(func() { close(gate) })
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	if most != resolveConcurrency {
		t.Fatalf("at most %d lookups under way at once, want %d", most, resolveConcurrency)
	}
	if got := len(c.List()); got != len(ids) {
		t.Fatalf("%d secrets resolved, want %d", got, len(ids))
	}
}
