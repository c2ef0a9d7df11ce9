package cache

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/secretsfs/secretsfs/cache/cachetest"
)

// freshClient is the fake client whose values are fresh allocations on
// every answer, as the SDK's are after decoding a response: the fake itself
// hands out its own strings, which would hide what the cache keeps.
type freshClient struct{ *cachetest.Client }

func (f freshClient) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	out, err := f.Client.DescribeSecret(ctx, in, opts...)
	if err != nil {
		return nil, err
	}
	arn, name := strings.Clone(*out.ARN), strings.Clone(*out.Name)
	out.ARN, out.Name = &arn, &name
	out.VersionIdsToStages = freshStages(out.VersionIdsToStages)
	return out, nil
}

// freshStages copies a version -> stages map, strings included.
func freshStages(versions map[string][]string) map[string][]string {
	m := make(map[string][]string, len(versions))
	for vid, stages := range versions {
		fresh := make([]string, len(stages))
		for i, s := range stages {
			fresh[i] = strings.Clone(s)
		}
		m[strings.Clone(vid)] = fresh
	}
	return m
}

func (f freshClient) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	out, err := f.Client.GetSecretValue(ctx, in, opts...)
	if err == nil && out.SecretString != nil {
		s := strings.Clone(*out.SecretString)
		out.SecretString = &s
	}
	return out, err
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Memory per cached secret: 10 000 secrets of 1 KiB, each read once, with
// background refresh on as the daemon runs it. The figure is logged (run
// with -v); the bound keeps what the cache adds to each value small.
func TestIssue12_Engine_MemoryPerSecret(t *testing.T) {
	const n = 10000
	fake := cachetest.NewClient()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("team/app-%05d", i)
		fake.PutString(ids[i], fmt.Sprintf("%05d", i)+strings.Repeat("x", 1019))
	}
	clock := cachetest.NewClock(t0)
	cfg := DefaultConfig()
	cfg.MaxCacheSize = n
	cfg.Clock = clock
	cfg.Rand = &cachetest.Rand{Fn: maxRand}
	c, err := New(freshClient{fake}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	before := heapInUse()
	for _, id := range ids {
		if _, err := c.GetSecretString(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	after := heapInUse()
	runtime.KeepAlive(c)
	per := int64(after-before) / n
	t.Logf("heap per cached secret of 1024 bytes: %d bytes (%d bytes besides the value)", per, per-1024)
	if over := per - 1024; over > 880 {
		t.Fatalf("each cached secret costs %d bytes besides its 1 KiB value; want at most 880", over)
	}
}

// At most Config.MaxInFlight calls are under way at once, whatever the
// number of readers.
func TestIssue12_Engine_BoundedInFlightForeground(t *testing.T) {
	e := newEnv(t, nil)
	const n = 200
	for i := range n {
		e.client.PutString(fmt.Sprintf("s%03d", i), "v")
	}
	e.client.Hold()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.str(fmt.Sprintf("s%03d", i))
		}()
	}
	eventually(t, "calls to pile up", func() bool { now, _ := e.client.InFlight(); return now >= e.cfg.MaxInFlight })
	e.client.Release()
	wg.Wait()
	if _, max := e.client.InFlight(); max > e.cfg.MaxInFlight {
		t.Fatalf("%d calls were under way at once; the limit is %d", max, e.cfg.MaxInFlight)
	}
	e.calls(n, n)
}

// Background refreshes of many secrets due at once take at most all but
// two of the call slots, from a bounded number of goroutines, so that a
// reader's call still finds room.
func TestIssue12_Engine_BoundedInFlightBackground(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RefreshAhead = time.Minute })
	const n = 200
	e.putAndRead(n)
	e.client.PutString("reader", "v")
	eventually(t, "the scheduler's alarm", func() bool { return e.clock.Waiters() > 0 })
	goroutines := runtime.NumGoroutine()
	e.client.Hold()
	e.clock.Advance(hour) // every secret is due
	bg := e.cfg.MaxInFlight - 2
	eventually(t, "background calls to pile up", func() bool { now, _ := e.client.InFlight(); return now >= bg })
	if _, max := e.client.InFlight(); max > bg {
		t.Fatalf("%d background calls under way at once; want at most %d", max, bg)
	}
	if g := runtime.NumGoroutine() - goroutines; g > 4*bg {
		t.Fatalf("%d goroutines more while %d secrets refresh in the background; want them bounded by the call slots", g, n)
	}
	read := make(chan string)
	go func() { read <- e.strStage("reader", "") }()
	eventually(t, "the reader's call to start beside the background ones", func() bool {
		now, _ := e.client.InFlight()
		return now == bg+1
	})
	e.client.Release()
	if got := <-read; got != "v" {
		t.Fatalf("read %q", got)
	}
	eventually(t, "every background refresh", func() bool { return e.client.Calls(opD) == 2*n+1 })
	if _, max := e.client.InFlight(); max > bg+1 {
		t.Fatalf("%d calls under way at once; want at most %d background ones and the reader's", max, bg)
	}
}

// A throttling answer to a call about one secret slows the calls about all
// the others (the calls a fake second fall), and the pace recovers as calls
// succeed, until calls are no longer paced at all.
func TestIssue12_Engine_ThrottleSlowsEveryone(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	ids := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%03d", prefix, i)
			e.client.PutString(out[i], "v")
		}
		return out
	}
	calls := func() int { return e.client.Calls(opD) + e.client.Calls(opG) }
	// readAll reads ids concurrently, advancing the fake clock a second at a
	// time whenever every reader's call waits on it, and returns the calls
	// made in each fake second.
	readAll := func(ids []string) (perSecond []int) {
		var left atomic.Int64
		left.Store(int64(len(ids)))
		errs := make(chan error, len(ids))
		last := calls()
		for _, id := range ids {
			go func() {
				defer left.Add(-1)
				_, err := e.c.GetSecretString(ctx, id)
				errs <- err
			}()
		}
		for {
			eventually(t, "every reader to be done or to wait on the clock", func() bool {
				l := left.Load()
				return l == 0 || int64(e.clock.Waiters()) == l
			})
			perSecond = append(perSecond, calls()-last)
			last = calls()
			if left.Load() == 0 {
				break
			}
			if len(perSecond) > 600 {
				t.Fatalf("readers still waiting after %d fake seconds", len(perSecond))
			}
			e.clock.Advance(time.Second)
		}
		for range ids {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		return perSecond
	}

	if got := readAll(ids("a", 20)); len(got) != 1 || got[0] != 40 {
		t.Fatalf("before any throttling, calls by fake second %v; want all 40 at once", got)
	}
	e.client.PutString("hot", "v")
	e.client.FailNext(opD, 1, errThrottled())
	if _, err := e.c.GetSecretString(ctx, "hot"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("throttled read: %v", err)
	}
	slow := readAll(ids("b", 100))
	t.Logf("after one throttled call, calls by fake second: %v", slow)
	if slow[0] > 5 || slow[1] > 25 {
		t.Fatalf("after a throttled call the others were not slowed: calls by fake second %v", slow)
	}
	if last := slow[len(slow)-2]; last <= slow[1] {
		t.Fatalf("the pace did not recover as calls succeeded: calls by fake second %v", slow)
	}
	e.clock.Advance(2 * time.Minute)
	if got := readAll(ids("c", 3)); len(got) < 1 { // successes after a calm spell end the pacing
		t.Fatal("no calls")
	}
	if got := readAll(ids("d", 20)); len(got) != 1 || got[0] != 40 {
		t.Fatalf("after recovery, calls by fake second %v; want all 40 at once again", got)
	}
}

// putAndRead puts n secrets (putMany) and reads each once.
func (e *env) putAndRead(n int) []string {
	e.t.Helper()
	ids := e.putMany(n)
	for _, id := range ids {
		e.str(id)
	}
	return ids
}

// checkSchedule asserts that every cached entry's place in the schedule
// matches its state: in the heap at its background time if it has one, out
// of it otherwise (or while a background refresh holds it).
func (e *env) checkSchedule() {
	e.t.Helper()
	e.c.mu.Lock()
	var entries []*secretEntry
	e.c.secrets.each(func(_ string, ent *secretEntry) { entries = append(entries, ent) })
	e.c.mu.Unlock()
	for _, ent := range entries {
		ent.mu.Lock()
		at, ok := e.c.backgroundTimeLocked(ent)
		e.c.sched.mu.Lock()
		it := ent.sched
		inHeap := it.idx >= 0 && int(it.idx) < len(e.c.sched.heap) && e.c.sched.heap[it.idx] == ent
		e.c.sched.mu.Unlock()
		ent.mu.Unlock()
		switch {
		case it.busy:
		case ok != inHeap:
			e.t.Fatalf("%s: scheduled %v, in the heap %v", ent.id, ok, inHeap)
		case ok && it.due != at:
			e.t.Fatalf("%s: due %v in the heap, %v by its state", ent.id, e.c.timeOf(it.due), e.c.timeOf(at))
		}
	}
}

// schedCounts reads the scheduler's wake-ups and the entries it looked at.
func (e *env) schedCounts() (wakeups, visits int) {
	e.c.sched.mu.Lock()
	defer e.c.sched.mu.Unlock()
	return e.c.sched.wakeups, e.c.sched.visits
}

// schedWaiting tells whether the scheduler sleeps, and until when.
func (e *env) schedWaiting() (bool, time.Time) {
	e.c.sched.mu.Lock()
	defer e.c.sched.mu.Unlock()
	return e.c.sched.waiting, e.c.timeOf(e.c.sched.armed)
}

// spreadRand draws distinct, spread numbers: the i-th draw is i*7919 mod n.
func spreadRand() func(int64) int64 {
	var i int64
	return func(n int64) int64 { i++; return i * 7919 % n }
}

// With 10 000 secrets in use, a wake-up of the scheduler looks at the
// secrets that are due and at the next one, not at every secret.
func TestIssue12_Engine_SchedulerWakeUpCostIndependentOfN(t *testing.T) {
	const n = 10000
	e := newEnv(t, func(c *Config) { c.RefreshAhead = time.Minute; c.MaxCacheSize = n })
	e.rnd.Set(spreadRand())
	e.putAndRead(n)
	e.checkSchedule()
	var first time.Time
	eventually(t, "the scheduler to sleep until the first secret is due", func() bool {
		w, at := e.schedWaiting()
		first = at
		return w && !at.IsZero() && e.clock.Waiters() > 0
	})
	wakeups, visits := e.schedCounts()
	for k := 1; k <= 3; k++ {
		e.clock.Set(first)
		eventually(t, "a background refresh", func() bool { return e.client.Calls(opD) == n+k })
		eventually(t, "the scheduler to sleep again", func() bool {
			w, at := e.schedWaiting()
			if w && at.After(first) {
				first = at
				return true
			}
			return false
		})
	}
	w, v := e.schedCounts()
	t.Logf("3 secrets due one after the other among %d: %d wake-ups, %d entries looked at", n, w-wakeups, v-visits)
	if w-wakeups > 6 || v-visits > 12 {
		t.Fatalf("3 due secrets among %d cost %d wake-ups and %d looks at entries; want a few, whatever the number of secrets", n, w-wakeups, v-visits)
	}
	if got := e.client.Calls(opD); got != n+3 {
		t.Fatalf("%d DescribeSecret calls, want %d: only the due secrets are refreshed", got, n+3)
	}
	e.checkSchedule()
}

// While nothing is due the scheduler sets no alarm and does not wake up,
// however much time passes.
func TestIssue12_Engine_IdleSchedulerSleeps(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RefreshAhead = time.Minute })
	e.rnd.Set(spreadRand())
	const n = 100
	ids := e.putAndRead(n)
	// Each is refreshed once in the background; not read since, none is
	// scheduled again.
	e.clock.Advance(hour)
	eventually(t, "a background refresh of each", func() bool { return e.client.Calls(opD) == 2*n })
	eventually(t, "the scheduler to sleep with nothing to wait for", func() bool {
		w, at := e.schedWaiting()
		return w && at.IsZero()
	})
	e.checkSchedule()
	if got := e.clock.Waiters(); got != 0 {
		t.Fatalf("%d alarms set while nothing is due", got)
	}
	wakeups, _ := e.schedCounts()
	for range 48 {
		e.clock.Advance(hour)
	}
	if w, _ := e.schedCounts(); w != wakeups || e.clock.Waiters() != 0 || e.client.Calls(opD) != 2*n {
		t.Fatalf("idle for two days: %d wake-ups, %d alarms, %d calls", w-wakeups, e.clock.Waiters(), e.client.Calls(opD)-2*n)
	}
	// A read puts the secret back on the schedule, and wakes the scheduler.
	e.str(ids[7])
	eventually(t, "the scheduler's alarm for the secret read", func() bool { return e.clock.Waiters() == 1 })
	e.checkSchedule()
}

// Secrets that failed together (an outage) are not retried at one instant:
// each retry wait is drawn in [3w/4, w] around the backoff's w.
func TestIssue12_Engine_RetriesAfterAnOutageAreSpread(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RefreshAhead = time.Minute; c.ExceptionRetryDelayBase = time.Minute })
	const n = 50
	ids := e.putAndRead(n)
	for _, id := range ids {
		e.c.Pin(id)
	}
	e.rnd.Set(spreadRand())
	e.client.FailAlways(opD, errAccessDenied())
	e.clock.Advance(hour)
	eventually(t, "every background refresh to fail", func() bool { return e.c.Stats().Errors == n })
	now := e.clock.Now()
	seen := make(map[time.Time]bool)
	for _, id := range ids {
		in := e.info(id)
		if wait := in.NextRefresh.Sub(now); wait < 45*time.Second || wait > time.Minute {
			t.Fatalf("%s: retry in %v; want within [45s, 1m]", id, wait)
		}
		seen[in.NextRefresh] = true
	}
	if len(seen) < n/2 {
		t.Fatalf("%d secrets that failed together are retried at only %d instants", n, len(seen))
	}
	e.checkSchedule()
}

func errAccessDenied() error {
	return &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "denied"}
}

// Under the pace, background calls take only the turns readers leave: a
// background call asked for while readers are queued goes after the last
// of them, and readers asked for later still go first.
func TestIssue12_Engine_BackgroundYieldsToReaders(t *testing.T) {
	var p pacer
	for range 9 {
		p.started(t0)
	}
	p.throttled(t0, p.started(t0)) // 10 calls in the last second: 5 a second from now on
	var last time.Time
	for range 10 {
		last = p.reserve(t0)
	}
	if !last.After(t0) {
		t.Fatal("ten readers at once were not paced after a throttling answer")
	}
	ok, retry := p.take(t0)
	if ok || retry.Before(last) {
		t.Fatalf("a background call went (%v) or was told to come back at %v, before the last reader's turn at %v", ok, retry.Sub(t0), last.Sub(t0))
	}
	reader := p.reserve(t0)
	if ok, _ := p.take(retry); ok && !reader.Before(retry) {
		t.Fatalf("a background call went at %v, before a reader queued earlier (turn at %v)", retry.Sub(t0), reader.Sub(t0))
	}
	if ok, _ := p.take(reader.Add(time.Second)); !ok {
		t.Fatal("no turn for background calls once the readers are served")
	}
}

// A reader who comes to wait for a background refresh (its secret expired
// before the refresh got its turn) promotes it: from then on its calls take
// a reader's turn instead of yielding to every reader's.
func TestIssue12_Engine_ReaderPromotesTheBackgroundRefreshItJoins(t *testing.T) {
	t.Run("the refresh joined is promoted", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.RefreshAhead = time.Minute })
		e.client.PutString("x", "v")
		e.str("x")
		eventually(t, "the scheduler's alarm", func() bool { return e.clock.Waiters() > 0 })
		e.client.Hold()
		e.clock.Advance(hour - time.Minute)
		eventually(t, "the background refresh's call", func() bool { now, _ := e.client.InFlight(); return now == 1 })
		ent := e.c.entry("x")
		ent.mu.Lock()
		promote := ent.promote
		ent.mu.Unlock()
		if promote == nil {
			t.Fatal("a background refresh in flight cannot be promoted")
		}
		e.clock.Advance(time.Minute) // expired: a read waits for the refresh
		read := make(chan string)
		go func() { read <- e.str("x") }()
		eventually(t, "the reader to promote the refresh it joined", func() bool {
			select {
			case <-promote:
				return true
			default:
				return false
			}
		})
		e.client.Release()
		if got := <-read; got != "v" {
			t.Fatalf("read %q", got)
		}
	})
	t.Run("a promoted call takes a reader's turn", func(t *testing.T) {
		e := newEnv(t, nil)
		p := &e.c.pacer
		for range 9 {
			p.started(t0)
		}
		p.throttled(t0, p.started(t0)) // 5 calls a second, 4 at once
		for range 10 {
			p.reserve(t0) // readers' turns up to t0+1.2s
		}
		promote := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- e.c.call(promotableCtx(e.c.bgCtx, promote), opD, "x", func(context.Context) error { return nil })
		}()
		eventually(t, "the background call to wait for a free turn", func() bool { return e.clock.Waiters() == 1 })
		close(promote)
		eventually(t, "the promoted call to take a reader's turn", func() bool { return e.clock.Waiters() == 2 })
		for range 10 {
			p.reserve(t0) // readers who come later
		}
		e.clock.Set(t0.Add(1400 * time.Millisecond)) // the turn after the first ten readers'
		eventually(t, "the promoted call to run at its turn, before the later readers'", func() bool {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				return true
			default:
				return false
			}
		})
	})
}
