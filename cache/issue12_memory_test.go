package cache

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsfs/secretsfs/cache/cachetest"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// TestIssue12_Memory_AListingThatChangesNothingKeepsTheEntries: in listing
// mode every secret is listed once per list interval. A pass that says what
// the cache already holds (the same versions and stages, name, ARN) keeps
// each entry's stage map and strings: it allocates, per secret, little
// beyond what the client's answer itself took, and no new map per secret
// (which a daemon of 10 000 secrets made every few seconds, and whose
// strings kept blocks of the SDK's answers alive).
func TestIssue12_Memory_AListingThatChangesNothingKeepsTheEntries(t *testing.T) {
	const n = 100 // one page: no pacing between pages
	e := newEnv(t, nil)
	names := e.putMany(n)
	e.list(ListFilter{})
	for _, name := range names {
		e.str(name)
	}
	// What the fake's answer of one page costs alone.
	answer := testutil.BytesPerOp(20, func() {
		if _, err := e.client.ListSecrets(context.Background(), &secretsmanager.ListSecretsInput{}); err != nil {
			t.Fatal(err)
		}
	})
	pass := testutil.BytesPerOp(20, func() { e.list(ListFilter{}) })
	per := (pass - answer) / n
	t.Logf("a listing pass that changes nothing allocates %.0f bytes per secret besides the answer (%.0f per secret)", per, answer/n)
	if per > 100 {
		t.Fatalf("a listing pass that changes nothing allocates %.0f bytes per secret besides the answer: it rebuilds the entries' state", per)
	}
	e.calls(0, n) // the passes asked no value again
}

// TestIssue12_Listing_AnUnchangedPageCostsNothingPerSecret: a daemon of
// 10 000 listed secrets applies 100 pages every list interval, nearly all of
// them saying what the cache holds already. Applying such a page allocates
// nothing per secret (beyond what the client's answer took) and does not
// move the secrets in the background schedule: that is work per secret per
// pass, for nothing, which kept an idle daemon busy.
func TestIssue12_Listing_AnUnchangedPageCostsNothingPerSecret(t *testing.T) {
	// The cost of a pass at two sizes, each on one page (no pacing): the
	// difference per secret is what one more unchanged secret costs,
	// whatever a pass costs once.
	type cost struct {
		allocs, bytes float64
		fixes         int
	}
	pass := func(n int) cost {
		e := newEnv(t, func(c *Config) { c.RefreshAhead = time.Minute })
		names := e.putMany(n)
		e.list(ListFilter{})
		for _, name := range names {
			e.str(name)
		}
		e.list(ListFilter{})
		answer := func() {
			if _, err := e.client.ListSecrets(context.Background(), &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(listPageSize)}); err != nil {
				t.Fatal(err)
			}
		}
		list := func() { e.list(ListFilter{}) }
		e.c.sched.mu.Lock()
		fixes := e.c.sched.fixes
		e.c.sched.mu.Unlock()
		const runs = 20
		c := cost{
			allocs: testing.AllocsPerRun(runs, list) - testing.AllocsPerRun(runs, answer),
			bytes:  testutil.BytesPerOp(runs, list) - testutil.BytesPerOp(runs, answer),
		}
		e.c.sched.mu.Lock()
		c.fixes = e.c.sched.fixes - fixes
		e.c.sched.mu.Unlock()
		e.checkSchedule()
		e.calls(0, n) // nothing was asked again
		return c
	}
	small, large := pass(40), pass(100)
	allocs := (large.allocs - small.allocs) / 60
	bytes := (large.bytes - small.bytes) / 60
	t.Logf("one more unchanged secret in a listing pass: %.2f allocations, %.0f bytes; schedule moves per pass: %d (40 secrets), %d (100)",
		allocs, bytes, small.fixes, large.fixes)
	// What List returns holds a Listed per secret, in one allocation (the
	// size class rounds it up): that is the caller's, not the apply's.
	result := float64(unsafe.Sizeof(Listed{})) + 24
	if allocs > 0.1 || bytes > result {
		t.Errorf("an unchanged listed secret costs %.2f allocations (%.0f bytes) per pass, want none besides its Listed (%.0f bytes)", allocs, bytes, result)
	}
	if small.fixes > 0 || large.fixes > 0 {
		t.Errorf("unchanged listing passes moved secrets in the background schedule %d and %d times, want none", small.fixes, large.fixes)
	}
}

// freshLister is freshClient that also lists, with fresh strings in every
// page, as the SDK's decoding gives them.
type freshLister struct{ freshClient }

func (f freshLister) ListSecrets(ctx context.Context, in *secretsmanager.ListSecretsInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error) {
	out, err := f.Client.ListSecrets(ctx, in, opts...)
	if err != nil {
		return nil, err
	}
	for i := range out.SecretList {
		le := &out.SecretList[i]
		arn, name := strings.Clone(*le.ARN), strings.Clone(*le.Name)
		le.ARN, le.Name = &arn, &name
		le.SecretVersionsToStages = freshStages(le.SecretVersionsToStages)
	}
	return out, nil
}

// listPaced lists through c, moving the fake clock over the pauses between
// pages: every alarm of the clock must be the listing's.
func listPaced(t *testing.T, c *Cache, clock *cachetest.Clock) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := c.List(context.Background(), ListFilter{})
		done <- err
	}()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			return
		default:
		}
		if clock.Waiters() > 0 {
			clock.Advance(listPageGap)
		}
		runtime.Gosched()
	}
}

// TestIssue12_Memory_StatePerListedSecretIsSmall: in listing mode a secret
// listed (AWSCURRENT and AWSPREVIOUS) and read costs the cache little
// besides its value: what it holds (name, ARN, a version id per version, two
// stages) and a small fixed part, not maps, copies and fields for what
// happens rarely (errors, forced refreshes, hooks). (Background refresh is
// off, so that the clock moves only for the listing's pages; on, its
// schedule adds 8 bytes per secret in use.)
func TestIssue12_Memory_StatePerListedSecretIsSmall(t *testing.T) {
	const n = 2000
	fake := cachetest.NewClient()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("team/app-%05d", i)
		fake.PutString(ids[i], "old")
		fake.PutString(ids[i], fmt.Sprintf("%016d", i)) // AWSPREVIOUS moves to "old"
	}
	clock := cachetest.NewClock(t0)
	cfg := DefaultConfig()
	cfg.MaxCacheSize = 10 // the listing makes room for what it names
	cfg.RefreshAhead = 0
	cfg.Clock = clock
	cfg.Rand = &cachetest.Rand{Fn: maxRand}
	c, err := New(freshLister{freshClient{fake}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	before := heapInUse()
	listPaced(t, c, clock)
	for _, id := range ids {
		if _, err := c.GetSecretString(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	listPaced(t, c, clock) // and a pass that changes nothing
	after := heapInUse()
	runtime.KeepAlive(c)
	// What the secret holds: its value (16 bytes), name (14), ARN (70)
	// and version ids ("v" and a number), each in its size class.
	held := int64(16 + 16 + 80 + 2*8)
	per := int64(after-before)/n - held
	t.Logf("heap per listed and read secret: %d bytes besides the %d it holds", per, held)
	if per > 760 {
		t.Fatalf("each listed and read secret costs %d bytes besides what it holds", per)
	}
	if got := fake.Calls(opD); got != 0 {
		t.Fatalf("%d DescribeSecret calls for listed secrets", got)
	}
}
