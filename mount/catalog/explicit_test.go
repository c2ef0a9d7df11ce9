package catalog

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/emutest"
)

func TestExplicitCatalog(t *testing.T) {
	f := emutest.New(t)
	f.Create(t, "app/db", "v")
	arn := f.Create(t, "app/key", "v")
	f.Create(t, "not/shown", "v")
	c0, err := cache.New(f.Client, cache.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c0.Close()
	c := NewExplicit([]string{"app/db", arn, "app/missing", "app/db"}, c0, testOptions(cachetest.NewClock(t0)))
	startCatalog(t, c)
	want := []sfs.SecretRef{
		{Name: "app/db", ID: "app/db"},
		{Name: "app/key", ID: arn},
		{Name: "app/missing", ID: "app/missing"},
	}
	if got := c.List(); !slices.Equal(got, want) {
		t.Fatalf("List() = %+v, want %+v", got, want)
	}
	if _, ok, err := c.Find(context.Background(), "not/shown"); ok || err != nil {
		t.Fatalf("Find in explicit mode = %v, %v", ok, err)
	}
	if n := f.Emu.Calls(emulator.OpListSecrets); n != 0 {
		t.Fatalf("explicit mode made %d ListSecrets calls", n)
	}
}

func TestExplicitCatalogResolvesLater(t *testing.T) {
	f := emutest.New(t)
	arn := f.Create(t, "app/key", "v")
	f.Emu.InjectFault(emulator.OpDescribeSecret, emulator.Fault{ErrorType: emulator.ErrInternalServiceError, Times: 1})
	clock := cachetest.NewClock(t0)
	c := NewExplicit([]string{arn}, uncachedCache(f, clock), testOptions(clock))
	changed := make(chan struct{}, 1)
	defer c.OnChange(func() { changed <- struct{}{} })()
	startCatalog(t, c)
	if got := c.List(); len(got) != 1 || got[0].Name != arn {
		t.Fatalf("List() while unresolved = %+v, want the ARN as the name", got)
	}
	advanceWhenWaiting(t, clock, time.Second)
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no OnChange after the id was resolved")
	}
	if got := c.List(); len(got) != 1 || got[0] != (sfs.SecretRef{Name: "app/key", ID: arn}) {
		t.Fatalf("List() after resolving = %+v", got)
	}
	if n := f.Emu.Calls(emulator.OpListSecrets); n != 0 {
		t.Fatalf("explicit mode made %d ListSecrets calls", n)
	}
}

// describeFunc is a Describer answering Describe with a function.
type describeFunc func(ctx context.Context, id string) (cache.SecretInfo, error)

func (f describeFunc) Describe(ctx context.Context, id string) (cache.SecretInfo, error) {
	return f(ctx, id)
}

func (f describeFunc) Lookup(context.Context, string, func(cache.SecretInfo) bool) (cache.SecretInfo, error) {
	panic("explicit mode never looks up")
}

// Explicit mode resolves resolveConcurrency ids at once, never more.
func TestExplicitResolveIsBounded(t *testing.T) {
	var mu sync.Mutex
	now, most := 0, 0
	gate := make(chan struct{})
	var open sync.Once
	t.Cleanup(func() { open.Do(func() { close(gate) }) }) // also on failure: no lookup stays held
	describe := describeFunc(func(ctx context.Context, id string) (cache.SecretInfo, error) {
		mu.Lock()
		now++
		most = max(most, now)
		mu.Unlock()
		<-gate
		mu.Lock()
		now--
		mu.Unlock()
		return cache.SecretInfo{Name: id}, nil
	})
	ids := make([]string, 3*resolveConcurrency)
	for i := range ids {
		ids[i] = fmt.Sprint("s", i)
	}
	c := NewExplicit(ids, describe, testOptions(cachetest.NewClock(t0)))
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
