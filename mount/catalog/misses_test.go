package catalog

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/emutest"
)

// findMiss asserts that Find says no to a name.
func findMiss(t *testing.T, c *Listing, name string) {
	t.Helper()
	if ref, ok, err := c.Find(context.Background(), name); ok || err != nil {
		t.Fatalf("Find(%s) = %+v, %v, %v; want a miss", name, ref, ok, err)
	}
}

// Lookups of 1100 invented names, each one asking Secrets Manager, leave
// the cached secrets alone: none is evicted, and an outage afterwards still
// finds them all in the cache.
func TestDefect9_05_InventedNamesLeaveTheCacheAlone(t *testing.T) {
	f := emutest.New(t)
	real := []string{"app/a", "app/b", "app/c"}
	for _, n := range real {
		f.Create(t, n, "value of "+n)
	}
	clock := cachetest.NewClock(t0)
	c0 := scopedCache(t, f, clock)
	c := NewListing(cache.NewLister(f.Client), c0, nil, nil, testOptions(clock))
	startCatalog(t, c)
	ctx := context.Background()
	for _, n := range real {
		if _, err := c0.GetValue(ctx, n, ""); err != nil {
			t.Fatal(err)
		}
	}
	before := slices.Sorted(slices.Values(c0.SecretIDs()))
	describes := f.Emu.Calls(emulator.OpDescribeSecret)

	const invented = 1100
	step := time.Duration(float64(time.Second) / float64(c.opts.LookupRate)) // one lookup's worth of the rate
	for i := range invented {
		clock.Advance(step)
		findMiss(t, c, fmt.Sprintf("made/up/%d", i))
	}
	if n := f.Emu.Calls(emulator.OpDescribeSecret) - describes; n != invented {
		t.Fatalf("%d DescribeSecret calls for %d invented names within the rate, want one each", n, invented)
	}
	if after := slices.Sorted(slices.Values(c0.SecretIDs())); !slices.Equal(after, before) {
		t.Fatalf("the cache holds %d ids after the lookups, want %v", len(after), before)
	}
	if n := c0.Stats().Secrets; n != len(real) {
		t.Fatalf("%d secrets cached, want %d", n, len(real))
	}
	c.mu.Lock()
	misses := c.misses.len()
	c.mu.Unlock()
	if limit := int(c.opts.MissTTL / step); misses > limit {
		t.Fatalf("%d misses remembered, want at most the %d of the last MissTTL", misses, limit)
	}

	f.Emu.InjectFault(emulator.AllOperations, emulator.Fault{ErrorType: emulator.ErrInternalServiceError})
	for _, n := range real {
		if v, err := c0.GetValue(ctx, n, ""); err != nil || string(v.Data) != "value of "+n {
			t.Errorf("%s during the outage: %q, %v", n, v.Data, err)
		}
	}
}

// The misses Find remembers are bounded in number (the oldest go first) and
// in time.
func TestDefect9_05_MissSetIsBounded(t *testing.T) {
	f := emutest.New(t)
	clock := cachetest.NewClock(t0)
	opts := testOptions(clock)
	opts.MaxMisses, opts.LookupRate = 8, rate.Inf
	c := NewListing(cache.NewLister(f.Client), uncachedCache(f, clock), nil, nil, opts)
	startCatalog(t, c)
	describes := func() int { return f.Emu.Calls(emulator.OpDescribeSecret) }
	remembered := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.misses.len()
	}

	for i := range 20 {
		findMiss(t, c, fmt.Sprintf("x/%d", i))
		if n := remembered(); n > 8 {
			t.Fatalf("%d misses remembered after %d lookups, want at most 8", n, i+1)
		}
	}
	n := describes()
	for i := 12; i < 20; i++ { // the last 8 cost no call
		findMiss(t, c, fmt.Sprintf("x/%d", i))
	}
	if got := describes(); got != n {
		t.Fatalf("%d calls for the 8 newest misses, want none", got-n)
	}
	findMiss(t, c, "x/0") // forgotten: asked again, and x/12 goes
	if got := describes(); got != n+1 {
		t.Fatalf("%d calls for a forgotten miss, want 1", got-n)
	}
	clock.Advance(opts.MissTTL)
	findMiss(t, c, "x/19")
	if got := describes(); got != n+2 {
		t.Fatalf("%d calls for an expired miss, want 1", got-n-1)
	}
	if got := remembered(); got != 1 {
		t.Fatalf("%d misses remembered after the rest expired, want 1", got)
	}
}

// Lookups of names the listing lacks cost calls at LookupRate at most;
// beyond it they are misses without a call, and are not remembered as
// misses. Listed names need no call and are answered meanwhile.
func TestDefect9_05_LookupsBeyondTheRateCostNoCall(t *testing.T) {
	f := emutest.New(t)
	f.Create(t, "app/listed", "v")
	clock := cachetest.NewClock(t0)
	opts := testOptions(clock)
	opts.LookupRate, opts.LookupBurst = 2, 5
	c := NewListing(cache.NewLister(f.Client), uncachedCache(f, clock), nil, nil, opts)
	startCatalog(t, c)
	f.Create(t, "app/new", "v")
	ctx := context.Background()
	describes := func() int { return f.Emu.Calls(emulator.OpDescribeSecret) }

	for i := range 20 {
		findMiss(t, c, fmt.Sprintf("made/up/%d", i))
	}
	if n := describes(); n != 5 {
		t.Fatalf("%d DescribeSecret calls for 20 lookups, want the burst of 5", n)
	}
	findMiss(t, c, "app/new") // exists, but the rate is spent
	if _, ok, err := c.Find(ctx, "app/listed"); !ok || err != nil {
		t.Fatalf("Find(listed) while limited = %v, %v", ok, err)
	}
	if n := describes(); n != 5 {
		t.Fatalf("%d DescribeSecret calls, want still 5", n)
	}

	clock.Advance(500 * time.Millisecond) // one call's worth
	if _, ok, err := c.Find(ctx, "app/new"); !ok || err != nil {
		t.Fatalf("Find(app/new) once the rate allows = %v, %v", ok, err)
	}
	clock.Advance(time.Second) // two calls' worth
	for i := 5; i < 10; i++ {  // refused before, so not remembered as misses
		findMiss(t, c, fmt.Sprintf("made/up/%d", i))
	}
	if n := describes(); n != 8 {
		t.Fatalf("%d DescribeSecret calls, want 5 + 1 + 2", n)
	}
}
