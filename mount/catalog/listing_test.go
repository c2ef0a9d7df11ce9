package catalog

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/emutest"
)

func newTestListing(f *emutest.Fixture, clock *cachetest.Clock, prefixes []string, tags []cache.Tag) *Listing {
	return NewListing(cache.NewLister(f.Client), uncachedCache(f, clock), prefixes, tags, testOptions(clock))
}

// uncachedCache is a cache that keeps nothing between calls (no refresh
// interval, no backoff), so that every Describe reaches the emulator as the
// catalog's own memory decides.
func uncachedCache(f *emutest.Fixture, clock *cachetest.Clock) *cache.Cache {
	cfg := cache.DefaultConfig()
	cfg.SecretRefreshInterval = 0
	cfg.ExceptionRetryDelayBase = 0
	cfg.RefreshAhead = 0
	cfg.Clock = clock
	c, err := cache.New(f.Client, cfg)
	if err != nil {
		panic(err)
	}
	return c
}

func TestListingPrefixes(t *testing.T) {
	f := emutest.New(t)
	for _, n := range []string{"prod/db", "prod/api", "production", "staging/db", "dev/prod/x"} {
		f.Create(t, n, "v")
	}
	c := newTestListing(f, cachetest.NewClock(t0), []string{"prod/", "staging/"}, nil)
	startCatalog(t, c)
	got := names(c.List())
	want := []string{"prod/api", "prod/db", "staging/db"}
	if !slices.Equal(got, want) {
		t.Fatalf("List() = %v, want %v", got, want)
	}
	for _, r := range c.List() {
		if r.ID != r.Name {
			t.Errorf("ref %+v: want the name as id", r)
		}
	}
}

func TestListingTagsMatchExactPairs(t *testing.T) {
	f := emutest.New(t)
	f.Create(t, "a", "v", "env", "prod")                 // the pair
	f.Create(t, "b", "v", "env", "prod", "team", "x")    // the pair among others
	f.Create(t, "c", "v", "env", "dev", "owner", "prod") // key and value on different tags
	f.Create(t, "d", "v", "envx", "prod")                // a longer key
	f.Create(t, "e", "v", "env", "production")           // a longer value
	f.Create(t, "g", "v", "team", "x")                   // only the second tag
	f.Create(t, "h", "v", "env", "prod", "team", "y")    // the second tag's value differs
	f.Create(t, "i", "v", "team", "x", "env", "prod")    // both, other order
	f.Create(t, "j", "v", "env", "prod", "te am", "x y") // unrelated tag with spaces
	f.Create(t, "k", "v", "team", "x", "env", "prod!")   // value with a character of negation
	c := newTestListing(f, cachetest.NewClock(t0), nil, []cache.Tag{{Key: "env", Value: "prod"}, {Key: "team", Value: "x"}})
	startCatalog(t, c)
	if got, want := names(c.List()), []string{"b", "i"}; !slices.Equal(got, want) {
		t.Fatalf("List() = %v, want %v", got, want)
	}
}

func TestListingTagsTheServiceCannotFilter(t *testing.T) {
	f := emutest.New(t)
	f.Create(t, "a", "v", "!odd", "")
	f.Create(t, "b", "v", "!odd", "x")
	f.Create(t, "c", "v", "other", "")
	c := newTestListing(f, cachetest.NewClock(t0), nil, []cache.Tag{{Key: "!odd", Value: ""}})
	startCatalog(t, c)
	if got, want := names(c.List()), []string{"a"}; !slices.Equal(got, want) {
		t.Fatalf("List() = %v, want %v", got, want)
	}
}

func TestListingPaginates(t *testing.T) {
	f := emutest.New(t)
	const n = 230
	for i := range n {
		f.Create(t, fmt.Sprintf("s/%03d", i), "v")
	}
	c := newTestListing(f, cachetest.NewClock(t0), nil, nil)
	startCatalog(t, c)
	if got := len(c.List()); got != n {
		t.Fatalf("listed %d secrets, want %d", got, n)
	}
	if calls := f.Emu.Calls(emulator.OpListSecrets); calls < 3 {
		t.Fatalf("%d ListSecrets calls for %d secrets, want at least 3 pages", calls, n)
	}
}

func TestListingNoticesNewAndDeletedSecrets(t *testing.T) {
	f := emutest.New(t)
	f.Create(t, "a", "v")
	clock := cachetest.NewClock(t0)
	c := newTestListing(f, clock, nil, nil)
	changed := make(chan struct{}, 10)
	cancel := c.OnChange(func() { changed <- struct{}{} })
	defer cancel()
	startCatalog(t, c)
	if got := names(c.List()); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("List() = %v", got)
	}

	if len(changed) != 1 { // the first listing changed the empty list
		t.Fatalf("OnChange called %d times by the first listing, want 1", len(changed))
	}
	<-changed

	// An interval without a change tells nobody.
	advanceWhenWaiting(t, clock, time.Minute)
	waitFor(t, "the second listing", func() bool { return f.Emu.Calls(emulator.OpListSecrets) == 2 })
	waitFor(t, "the loop to wait again", func() bool { return clock.Waiters() > 0 })
	if len(changed) != 0 {
		t.Fatal("OnChange called although the listing did not change")
	}
	f.Create(t, "b", "v")
	advanceWhenWaiting(t, clock, time.Minute)
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no OnChange after a new secret was listed")
	}
	if got := names(c.List()); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("List() = %v, want [a b]", got)
	}
	if len(changed) != 0 {
		t.Fatalf("OnChange called %d extra times", len(changed))
	}

	if _, err := f.Client.DeleteSecret(context.Background(), deleteInput("a")); err != nil {
		t.Fatal(err)
	}
	advanceWhenWaiting(t, clock, time.Minute)
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no OnChange after a secret was deleted")
	}
	if got := names(c.List()); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("List() = %v, want [b]", got)
	}
}

func TestListingRetriesAFailedFirstListing(t *testing.T) {
	f := emutest.New(t)
	f.Create(t, "a", "v")
	f.Emu.InjectFault(emulator.OpListSecrets, emulator.Fault{ErrorType: emulator.ErrAccessDenied, Times: 2})
	clock := cachetest.NewClock(t0)
	c := newTestListing(f, clock, nil, nil)
	startCatalog(t, c)
	if got := c.List(); len(got) != 0 {
		t.Fatalf("List() = %v after a failed listing", got)
	}
	advanceWhenWaiting(t, clock, time.Second) // first retry: fails again
	waitFor(t, "the second attempt", func() bool { return f.Emu.Calls(emulator.OpListSecrets) == 2 })
	advanceWhenWaiting(t, clock, time.Second) // the retry delay doubled: not yet
	advanceWhenWaiting(t, clock, time.Second)
	waitFor(t, "the listing after the outage", func() bool { return len(c.List()) == 1 })
	if n := f.Emu.Calls(emulator.OpListSecrets); n != 3 {
		t.Fatalf("%d ListSecrets calls, want 3 (1 s, then 2 s between attempts)", n)
	}
}

func TestFindAsksForUnlistedNamesAndRemembersMisses(t *testing.T) {
	f := emutest.New(t)
	f.Create(t, "app/listed", "v")
	clock := cachetest.NewClock(t0)
	c := newTestListing(f, clock, []string{"app/"}, nil)
	startCatalog(t, c)
	ctx := context.Background()
	describes := func() int { return f.Emu.Calls(emulator.OpDescribeSecret) }

	// A listed name needs no call.
	if ref, ok, err := c.Find(ctx, "app/listed"); err != nil || !ok || ref.Name != "app/listed" {
		t.Fatalf("Find(listed) = %+v, %v, %v", ref, ok, err)
	}
	// A secret created after the listing is found at once, and shown.
	f.Create(t, "app/new", "v")
	if ref, ok, err := c.Find(ctx, "app/new"); err != nil || !ok || ref != (sfs.SecretRef{Name: "app/new", ID: "app/new"}) {
		t.Fatalf("Find(new) = %+v, %v, %v", ref, ok, err)
	}
	if got := names(c.List()); !slices.Equal(got, []string{"app/listed", "app/new"}) {
		t.Fatalf("List() after Find = %v", got)
	}
	if n := describes(); n != 1 {
		t.Fatalf("%d DescribeSecret calls, want 1", n)
	}

	// A miss is remembered for MissTTL.
	for range 3 {
		if _, ok, err := c.Find(ctx, "app/missing"); ok || err != nil {
			t.Fatalf("Find(missing) = %v, %v", ok, err)
		}
	}
	if n := describes(); n != 2 {
		t.Fatalf("%d DescribeSecret calls after three lookups of a missing name, want 2", n)
	}
	f.Create(t, "app/missing", "v")
	clock.Advance(9 * time.Second)
	if _, ok, _ := c.Find(ctx, "app/missing"); ok {
		t.Fatal("a remembered miss was asked for again before its time")
	}
	clock.Advance(time.Second)
	if _, ok, err := c.Find(ctx, "app/missing"); !ok || err != nil {
		t.Fatalf("Find after the miss expired = %v, %v", ok, err)
	}
	if n := describes(); n != 3 {
		t.Fatalf("%d DescribeSecret calls, want 3", n)
	}

	// Names outside the prefixes, or no secret can have, cost no call.
	for _, name := range []string{"other/x", "app/bad:name", "", "app/" + string(make([]byte, 600))} {
		if _, ok, err := c.Find(ctx, name); ok || err != nil {
			t.Fatalf("Find(%.20q) = %v, %v", name, ok, err)
		}
	}
	if n := describes(); n != 3 {
		t.Fatalf("%d DescribeSecret calls after impossible names, want 3", n)
	}

	// An error other than not found is returned and not remembered.
	f.Emu.InjectFault(emulator.OpDescribeSecret, emulator.Fault{ErrorType: emulator.ErrInternalServiceError, Times: 1})
	if _, ok, err := c.Find(ctx, "app/flaky"); ok || err == nil {
		t.Fatalf("Find during a fault = %v, %v; want an error", ok, err)
	}
	f.Create(t, "app/flaky", "v")
	if _, ok, err := c.Find(ctx, "app/flaky"); !ok || err != nil {
		t.Fatalf("Find after the fault = %v, %v", ok, err)
	}
}

func TestFindChecksTags(t *testing.T) {
	f := emutest.New(t)
	c := newTestListing(f, cachetest.NewClock(t0), nil, []cache.Tag{{Key: "env", Value: "prod"}})
	startCatalog(t, c)
	f.Create(t, "tagged", "v", "env", "prod")
	f.Create(t, "untagged", "v", "env", "dev")
	ctx := context.Background()
	if _, ok, err := c.Find(ctx, "tagged"); !ok || err != nil {
		t.Fatalf("Find(tagged) = %v, %v", ok, err)
	}
	if _, ok, err := c.Find(ctx, "untagged"); ok || err != nil {
		t.Fatalf("Find(untagged) = %v, %v", ok, err)
	}
}

func TestFindThroughTheCache(t *testing.T) {
	f := emutest.New(t)
	c0, err := cache.New(f.Client, cache.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c0.Close()
	c := NewListing(cache.NewLister(f.Client), c0, nil, nil, testOptions(cachetest.NewClock(t0)))
	startCatalog(t, c)
	f.Create(t, "late", "v")
	if _, ok, err := c.Find(context.Background(), "late"); !ok || err != nil {
		t.Fatalf("Find(late) = %v, %v", ok, err)
	}
	if _, ok, err := c.Find(context.Background(), "never"); ok || err != nil {
		t.Fatalf("Find(never) = %v, %v", ok, err)
	}
	// The cache keeps the answer: reading the found secret costs no second
	// DescribeSecret.
	before := f.Emu.Calls(emulator.OpDescribeSecret)
	if _, err := c0.GetValue(context.Background(), "late", ""); err != nil {
		t.Fatal(err)
	}
	if after := f.Emu.Calls(emulator.OpDescribeSecret); after != before {
		t.Fatalf("reading a found secret made %d more DescribeSecret calls", after-before)
	}
}

func TestRetryDelay(t *testing.T) {
	o := Options{RetryMin: time.Second, Interval: 5 * time.Second}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 5 * time.Second, 40: 5 * time.Second} {
		if got := o.retryDelay(n); got != want {
			t.Errorf("retryDelay(%d) = %v, want %v", n, got, want)
		}
	}
}

func deleteInput(name string) *secretsmanager.DeleteSecretInput {
	return &secretsmanager.DeleteSecretInput{SecretId: aws.String(name)} // scheduled, as usual
}

// scopedCache is a cache as the daemon builds it (a long refresh interval,
// so a secret's tags are those of its last description) on the fake clock,
// without background refresh, so that only the catalog waits on the clock.
func scopedCache(t *testing.T, f *emutest.Fixture, clock *cachetest.Clock) *cache.Cache {
	t.Helper()
	cfg := cache.DefaultConfig()
	cfg.RefreshAhead = 0
	cfg.Clock = clock
	c, err := cache.New(f.Client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func untag(t *testing.T, f *emutest.Fixture, name string, keys ...string) {
	t.Helper()
	if _, err := f.Client.UntagResource(context.Background(), &secretsmanager.UntagResourceInput{SecretId: aws.String(name), TagKeys: keys}); err != nil {
		t.Fatalf("untag %s: %v", name, err)
	}
}

// relistAfter moves the fake clock by d, to the next listing, and waits
// until that listing is done.
func relistAfter(t *testing.T, f *emutest.Fixture, clock *cachetest.Clock, d time.Duration) {
	t.Helper()
	n := f.Emu.Calls(emulator.OpListSecrets)
	advanceWhenWaiting(t, clock, d)
	waitFor(t, "the next listing", func() bool { return f.Emu.Calls(emulator.OpListSecrets) > n })
	waitFor(t, "the listing loop to wait again", func() bool { return clock.Waiters() > 0 })
}

// A secret outside --prefix or without the --tag tags is never found by its
// path, and one that leaves the scope is gone at the next listing and stays
// unfound, however recently the cache described it in scope.
func TestDefect9_04_FindAndListingKeepToTheScope(t *testing.T) {
	f := emutest.New(t)
	f.Create(t, "team/listed", "v", "team", "a")
	f.Create(t, "team/untagged", "v")
	f.Create(t, "other/tagged", "v", "team", "a")
	clock := cachetest.NewClock(t0)
	c0 := scopedCache(t, f, clock)
	c := NewListing(cache.NewLister(f.Client), c0, []string{"team/"}, []cache.Tag{{Key: "team", Value: "a"}}, testOptions(clock))
	startCatalog(t, c)
	ctx := context.Background()
	if got := names(c.List()); !slices.Equal(got, []string{"team/listed"}) {
		t.Fatalf("List() = %v", got)
	}
	// A read describes the listed secret into the cache, tags and all.
	if _, err := c0.GetValue(ctx, "team/listed", ""); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"team/untagged", "other/tagged"} {
		if _, ok, err := c.Find(ctx, name); ok || err != nil {
			t.Fatalf("Find(%s) = %v, %v; want a miss", name, ok, err)
		}
	}

	// Half an interval later, a new tagged secret is found by its path.
	clock.Advance(c.opts.Interval / 2)
	f.Create(t, "team/late", "v", "team", "a")
	if _, ok, err := c.Find(ctx, "team/late"); !ok || err != nil {
		t.Fatalf("Find(team/late) = %v, %v", ok, err)
	}
	if got := names(c.List()); !slices.Equal(got, []string{"team/late", "team/listed"}) {
		t.Fatalf("List() after Find = %v", got)
	}

	// Both lose the tag: the next listing drops both, and neither is found
	// again by its path.
	untag(t, f, "team/listed", "team")
	untag(t, f, "team/late", "team")
	relistAfter(t, f, clock, c.opts.Interval/2)
	if got := names(c.List()); len(got) != 0 {
		t.Fatalf("List() after both lost the tag = %v, want none", got)
	}
	for _, name := range []string{"team/listed", "team/late", "team/untagged"} {
		if _, ok, err := c.Find(ctx, name); ok || err != nil {
			t.Fatalf("Find(%s) after it left the scope = %v, %v; want a miss", name, ok, err)
		}
	}
	if got := names(c.List()); len(got) != 0 {
		t.Fatalf("List() after the lookups = %v, want none", got)
	}
}

// timedLister is a Lister whose every pass takes took on the fake clock,
// and which records when each pass started.
type timedLister struct {
	clock  *cachetest.Clock
	took   time.Duration
	mu     sync.Mutex
	starts []time.Time
}

func (l *timedLister) List(context.Context, cache.ListFilter) ([]cache.Listed, error) {
	l.mu.Lock()
	l.starts = append(l.starts, l.clock.Now())
	l.mu.Unlock()
	l.clock.Advance(l.took)
	return []cache.Listed{{Name: "a"}}, nil
}

func (l *timedLister) passes() []time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.starts)
}

// Issue 12: a listing pass of 10 000 secrets takes seconds (100 pages,
// paced); the next pass must start one list interval after the last one
// started, not after it ended, so that a mount lists exactly once per
// interval.
func TestIssue12_ListingStartsOncePerInterval(t *testing.T) {
	clock := cachetest.NewClock(t0)
	l := &timedLister{clock: clock, took: 20 * time.Second}
	c := NewListing(l, nil, nil, nil, testOptions(clock)) // interval: 1 min
	startCatalog(t, c)
	for i := 1; i <= 3; i++ {
		// The pass took 20 s: 40 s more is one interval after it started.
		advanceWhenWaiting(t, clock, 40*time.Second)
		waitFor(t, fmt.Sprintf("listing pass %d", i+1), func() bool { return len(l.passes()) == i+1 })
	}
	for i, at := range l.passes() {
		if want := t0.Add(time.Duration(i) * time.Minute); !at.Equal(want) {
			t.Fatalf("pass %d started at %v, want %v (one interval after the previous start)", i, at.Sub(t0), want.Sub(t0))
		}
	}
}
