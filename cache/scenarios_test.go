package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/secretsfs/secretsfs/cache/cachetest"
)

const hour = time.Hour

func TestS01_ReadsWithinIntervalCostOneDescribeOneGet(t *testing.T) {
	e := newEnv(t, nil)
	v1 := e.client.PutString("db", "s1")
	for i := 0; i < 10; i++ {
		if got := e.str("db"); got != "s1" {
			t.Fatalf("read %d = %q, want s1", i, got)
		}
	}
	e.calls(1, 1)
	for _, c := range e.client.Log() {
		if c.Op == opG && (c.VersionID != v1 || c.Stage != "") {
			t.Fatalf("GetSecretValue called with %+v; want VersionId %s and no stage", c, v1)
		}
	}
}

func TestS02_IntervalPassedSameVersion(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	e.str("db")
	e.clock.Advance(hour)
	e.rnd.Set(func(int64) int64 { return 0 }) // bottom of the range this time
	if got := e.str("db"); got != "s1" {
		t.Fatalf("read = %q", got)
	}
	e.calls(2, 1)
	if in := e.info("db"); !in.NextRefresh.Equal(e.clock.Now().Add(hour / 2)) {
		t.Fatalf("next refresh %v after now; want T/2", in.NextRefresh.Sub(e.clock.Now()))
	}
}

func TestS03_RotationAfterInterval(t *testing.T) {
	e := newEnv(t, nil)
	v1 := e.client.PutString("db", "s1")
	e.str("db")
	v2 := e.client.PutString("db", "s2") // AWSCURRENT -> v2, AWSPREVIOUS -> v1
	e.clock.Advance(hour)
	if got := e.str("db"); got != "s2" {
		t.Fatalf("read after rotation = %q, want s2", got)
	}
	e.calls(2, 2)
	if got := e.strStage("db", "AWSPREVIOUS"); got != "s1" {
		t.Fatalf("AWSPREVIOUS = %q, want s1", got)
	}
	e.calls(2, 2)
	log := e.client.Log()
	if last := log[len(log)-1]; last.VersionID != v2 {
		t.Fatalf("last call %+v, want GetSecretValue of %s", last, v2)
	}
	_ = v1
}

func TestS04_RotationBeforeIntervalIsNotSeen(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	e.str("db")
	e.client.PutString("db", "s2")
	e.clock.Advance(hour - time.Second)
	if got := e.str("db"); got != "s1" {
		t.Fatalf("read = %q, want the cached s1", got)
	}
	e.calls(1, 1)
}

func TestS05_MissingStageIsCachedNotFound(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	for i := 0; i < 100; i++ {
		_, err := e.c.GetSecretStringWithStage(context.Background(), "db", "AWSPENDING")
		if !isNotFound(err) {
			t.Fatalf("read %d: err = %v, want not found", i, err)
		}
	}
	e.calls(1, 0)
}

func TestS06_NoVersionIdsToStages(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	e.client.Update("db", func(s *cachetest.Secret) { s.NoVersionIdsToStages = true })
	for i := 0; i < 3; i++ {
		if _, err := e.c.GetSecretString(context.Background(), "db"); !isNotFound(err) {
			t.Fatalf("err = %v, want not found", err)
		}
	}
	e.calls(1, 0)
}

func TestS07_WrongValueTypeIsNotFound(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("str", "s1")
	e.client.PutBinary("bin", []byte{0, 1, 2})
	if _, err := e.c.GetSecretBinary(context.Background(), "str"); !isNotFound(err) {
		t.Fatalf("binary read of a string secret: err = %v", err)
	}
	if _, err := e.c.GetSecretString(context.Background(), "bin"); !isNotFound(err) {
		t.Fatalf("string read of a binary secret: err = %v", err)
	}
	// The right reads still work, from the cache.
	if b, err := e.c.GetSecretBinary(context.Background(), "bin"); err != nil || string(b) != "\x00\x01\x02" {
		t.Fatalf("binary read = %v, %v", b, err)
	}
	e.calls(2, 2)
}

func TestS08_VersionWithNeitherFieldIsNotFound(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutVersion("empty", cachetest.Version{})
	if _, err := e.c.GetSecretString(context.Background(), "empty"); !isNotFound(err) {
		t.Fatalf("string: %v", err)
	}
	if _, err := e.c.GetSecretBinary(context.Background(), "empty"); !isNotFound(err) {
		t.Fatalf("binary: %v", err)
	}
	if _, err := e.c.GetValue(context.Background(), "empty", ""); !isNotFound(err) {
		t.Fatalf("value: %v", err)
	}
	e.calls(1, 1)
}

func TestS09_FirstDescribeFailsSameErrorInsideBackoff(t *testing.T) {
	e := newEnv(t, nil)
	var first error
	for i := 0; i < 3; i++ {
		_, err := e.c.GetSecretString(context.Background(), "missing")
		if !isNotFound(err) {
			t.Fatalf("err = %v, want not found", err)
		}
		var rnf *types.ResourceNotFoundException
		if !errors.As(err, &rnf) {
			t.Fatalf("the SDK's ResourceNotFoundException is not reachable: %v", err)
		}
		if i == 0 {
			first = err
		} else if err != first {
			t.Fatalf("read %d returned another error: %v", i, err)
		}
		e.clock.Advance(300 * time.Millisecond)
	}
	e.calls(1, 0)
}

func TestS10_RecoveryAfterRetryTime(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.c.GetSecretString(context.Background(), "late"); !isNotFound(err) {
		t.Fatalf("err = %v", err)
	}
	if in := e.info("late"); in.ErrorCount != 1 {
		t.Fatalf("error count %d", in.ErrorCount)
	}
	e.client.PutString("late", "here")
	e.clock.Advance(time.Second)
	if got := e.str("late"); got != "here" {
		t.Fatalf("read = %q", got)
	}
	in := e.info("late")
	if in.ErrorCount != 0 || in.LastError != nil {
		t.Fatalf("after recovery: count %d, error %v", in.ErrorCount, in.LastError)
	}
	e.calls(2, 1)
}

func TestS11_BackoffSequence(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ExceptionRetryDelayMax = 60 * time.Second })
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
	e.client.FailAlways(opD, throttled)
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i, w := range want {
		_, err := e.c.GetSecretString(context.Background(), "db")
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("failure %d: err = %v, want unavailable", i, err)
		}
		in := e.info("db")
		if got := in.NextRefresh.Sub(e.clock.Now()); got != w*time.Second {
			t.Fatalf("after failure %d the retry waits %v, want %v", i+1, got, w*time.Second)
		}
		// Just before the retry time: no call.
		e.clock.Set(in.NextRefresh.Add(-time.Millisecond))
		e.c.GetSecretString(context.Background(), "db")
		if n := e.client.Calls(opD); n != i+1 {
			t.Fatalf("a read inside the backoff made a call (%d calls after %d failures)", n, i+1)
		}
		e.clock.Set(in.NextRefresh)
	}
	// The defaults give 1, 2, 4 ... s capped at an hour.
	d := DefaultConfig()
	for n, w := range map[int]time.Duration{0: time.Second, 1: 2 * time.Second, 2: 4 * time.Second, 11: 2048 * time.Second, 12: time.Hour, 100: time.Hour} {
		if got := d.retryDelay(n); got != w {
			t.Errorf("default retryDelay(%d) = %v, want %v", n, got, w)
		}
	}
}

func TestS12_StaleValueOnErrorAfterInterval(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	e.str("db")
	e.client.FailAlways(opD, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "denied"})
	e.clock.Advance(hour)
	v, err := e.c.GetValue(context.Background(), "db", "")
	if err != nil || string(v.Data) != "s1" || !v.Stale {
		t.Fatalf("read = %q stale=%v err=%v; want stale s1 and no error", v.Data, v.Stale, err)
	}
	in := e.info("db")
	if !in.Stale || !errors.Is(in.LastError, ErrAccessDenied) {
		t.Fatalf("info: stale %v, last error %v", in.Stale, in.LastError)
	}
	if got := in.NextRefresh.Sub(e.clock.Now()); got != time.Second {
		t.Fatalf("retry in %v, want 1s", got)
	}
	e.calls(2, 1)
}

func TestS13_PersistentErrorAtMostOneCallPerBackoff(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ExceptionRetryDelayMax = 8 * time.Second })
	e.client.PutString("db", "s1")
	e.str("db")
	e.client.FailAlways(opD, &smithy.GenericAPIError{Code: "ThrottlingException"})
	e.clock.Advance(hour)
	// Read every 100 ms for 60 s: retries at 1, 2, 4, 8, 8, ... s apart.
	for i := 0; i < 600; i++ {
		if got := e.str("db"); got != "s1" {
			t.Fatalf("read = %q", got)
		}
		e.clock.Advance(100 * time.Millisecond)
	}
	// 1 first + failures at 0, 1, 3, 7, 15, 23, 31, 39, 47, 55 s.
	e.calls(1+10, 1)
}

func TestS14_RecoveryResumesNormalInterval(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	e.str("db")
	e.client.FailAlways(opD, &smithy.GenericAPIError{Code: "AccessDeniedException"})
	e.clock.Advance(hour)
	e.str("db")
	e.client.FailAlways(opD, nil)
	e.client.PutString("db", "s2")
	e.clock.Advance(time.Second)
	if got := e.str("db"); got != "s2" {
		t.Fatalf("read after recovery = %q, want s2", got)
	}
	in := e.info("db")
	if in.Stale || in.ErrorCount != 0 || !in.NextRefresh.Equal(e.clock.Now().Add(hour)) {
		t.Fatalf("after recovery: %+v", in)
	}
	e.calls(3, 2)
}

func TestS15_NewVersionFetchFailsLastGoodServedStale(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	e.str("db")
	e.client.PutString("db", "s2")
	e.client.FailAlways(opG, &types.DecryptionFailure{Message: aws.String("KMS says no")})
	e.clock.Advance(hour)
	v, err := e.c.GetValue(context.Background(), "db", "")
	if err != nil || string(v.Data) != "s1" || !v.Stale {
		t.Fatalf("read = %q stale=%v err=%v; want s1, stale", v.Data, v.Stale, err)
	}
	// The retry follows the version's own backoff; it then succeeds.
	e.client.FailAlways(opG, nil)
	e.clock.Advance(time.Second)
	v, err = e.c.GetValue(context.Background(), "db", "")
	if err != nil || string(v.Data) != "s2" || v.Stale {
		t.Fatalf("read after recovery = %q stale=%v err=%v", v.Data, v.Stale, err)
	}
}

func TestS15b_NewVersionFetchFailsWithNothingToFallBackTo(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	e.client.FailAlways(opG, &types.DecryptionFailure{Message: aws.String("KMS says no")})
	_, err := e.c.GetSecretString(context.Background(), "db")
	var df *types.DecryptionFailure
	if !errors.Is(err, ErrAccessDenied) || !errors.As(err, &df) {
		t.Fatalf("err = %v, want access denied with the SDK's DecryptionFailure", err)
	}
}

func TestS16_DeletedSecretStopsBeingServed(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	e.str("db")
	changes := make(chan Change, 10)
	defer e.c.Subscribe(func(c Change) { changes <- c })()
	e.client.FailAlways(opD, &types.ResourceNotFoundException{Message: aws.String("gone")})
	e.clock.Advance(hour)
	if _, err := e.c.GetSecretString(context.Background(), "db"); !isNotFound(err) {
		t.Fatalf("err = %v, want not found for a deleted secret", err)
	}
	select {
	case c := <-changes:
		if c.Stage != "AWSCURRENT" || c.NewVersionID != "" {
			t.Fatalf("change %+v", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no change reported for the deleted secret")
	}
}

func TestS17_ScheduledForDeletionIsNotFound(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	e.str("db")
	e.client.Update("db", func(s *cachetest.Secret) { s.Deleted = true })
	e.clock.Advance(hour)
	_, err := e.c.GetSecretString(context.Background(), "db")
	if !isNotFound(err) || !strings.Contains(err.Error(), "scheduled for deletion") {
		t.Fatalf("err = %v", err)
	}
	if !e.info("db").ScheduledForDeletion {
		t.Fatal("info does not say scheduled for deletion")
	}
}

func TestS18_DefaultStageOnEveryReadPath(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DefaultVersionStage = "AWSPREVIOUS" })
	e.client.PutString("s", `{"v":"old"}`)
	e.client.PutString("s", `{"v":"new"}`)
	e.client.PutBinary("b", []byte("old"))
	e.client.PutBinary("b", []byte("new"))
	ctx := context.Background()
	check := func(what, got string, err error) {
		t.Helper()
		if err != nil || !strings.Contains(got, "old") {
			t.Errorf("%s = %q, %v; want the AWSPREVIOUS value", what, got, err)
		}
	}
	s, err := e.c.GetSecretString(ctx, "s")
	check("GetSecretString", s, err)
	s, err = e.c.GetSecretStringWithStage(ctx, "s", "")
	check("GetSecretStringWithStage(\"\")", s, err)
	b, err := e.c.GetSecretBinary(ctx, "b")
	check("GetSecretBinary", string(b), err)
	b, err = e.c.GetSecretBinaryWithStage(ctx, "b", "")
	check("GetSecretBinaryWithStage(\"\")", string(b), err)
	v, err := e.c.GetValue(ctx, "s", "")
	check("GetValue", string(v.Data), err)
	if v.Stage != "AWSPREVIOUS" {
		t.Errorf("GetValue stage %q", v.Stage)
	}
	m, err := GetSecretJSON[map[string]string](ctx, e.c, "s")
	check("GetSecretJSON", m["v"], err)
}

func TestS19_ForcedRefreshWithoutError(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	e.str("db")
	if err := e.c.RefreshNow(context.Background(), "db"); err != nil {
		t.Fatalf("RefreshNow: %v", err)
	}
	e.calls(2, 1)
	if in := e.info("db"); !in.RefreshedAt.Equal(e.clock.Now()) {
		t.Fatalf("refresh not stored: %+v", in)
	}
	e.str("db")
	e.calls(2, 1)

	// On a secret never read, the default stage's value comes with it.
	e.client.PutString("fresh", "f1")
	if err := e.c.RefreshNow(context.Background(), "fresh"); err != nil {
		t.Fatalf("RefreshNow: %v", err)
	}
	e.calls(3, 2)
	if got := e.str("fresh"); got != "f1" {
		t.Fatalf("read = %q", got)
	}
	e.calls(3, 2)
}

func TestS20_ForcedRefreshInBackoffWaitsAtMostTheCap(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.ExceptionRetryDelayBase = time.Minute
		c.ForceRefreshMaxWait = 5 * time.Second
	})
	e.client.FailAlways(opD, &smithy.GenericAPIError{Code: "ThrottlingException"})
	e.c.GetSecretString(context.Background(), "db") // fails; retry in a minute
	done := make(chan error, 1)
	go func() { done <- e.c.RefreshNow(context.Background(), "db") }()
	eventually(t, "RefreshNow to wait on the clock", func() bool { return e.clock.Waiters() == 1 })
	select {
	case err := <-done:
		t.Fatalf("RefreshNow returned before the wait: %v", err)
	default:
	}
	e.clock.Advance(5 * time.Second)
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("RefreshNow = %v, want the failure", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RefreshNow did not return after the capped wait")
	}
	e.calls(2, 0)
	if in := e.info("db"); in.ErrorCount != 2 {
		t.Fatalf("error count %d, want 2", in.ErrorCount)
	}

	// A caller that gives up while waiting gets its context's error.
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- e.c.RefreshNow(ctx, "db") }()
	eventually(t, "RefreshNow to wait again", func() bool { return e.clock.Waiters() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled RefreshNow = %v", err)
	}
}

func TestS21_ForcedRefreshRacingReads(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "value-0000")
	e.str("db")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	bad := make(chan string, 8)
	for r := 0; r < 8; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s, err := e.c.GetSecretString(context.Background(), "db")
				if err != nil || len(s) != len("value-0000") || !strings.HasPrefix(s, "value-") {
					select {
					case bad <- fmt.Sprintf("%q %v", s, err):
					default:
					}
				}
			}
		}()
	}
	for i := 1; i <= 50; i++ {
		e.client.PutString("db", fmt.Sprintf("value-%04d", i))
		if err := e.c.RefreshNow(context.Background(), "db"); err != nil {
			t.Errorf("RefreshNow: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case b := <-bad:
		t.Fatalf("a reader saw %s", b)
	default:
	}
	if got := e.str("db"); got != "value-0050" {
		t.Fatalf("final read %q", got)
	}
}

func TestS22_ConcurrentReadersShareOneFetch(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	e.client.Hold()
	const n = 50
	var wg sync.WaitGroup
	results := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := e.c.GetSecretString(context.Background(), "db")
			if err != nil {
				s = err.Error()
			}
			results <- s
		}()
	}
	eventually(t, "all readers to wait on the fetch", func() bool { return e.c.waiting.Load() == n })
	e.client.Release()
	wg.Wait()
	close(results)
	for s := range results {
		if s != "s1" {
			t.Fatalf("a reader got %q", s)
		}
	}
	e.calls(1, 1)
}

func TestS23_DifferentSecretsFetchInParallel(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("a", "A")
	e.client.PutString("b", "B")
	e.client.Hold()
	var wg sync.WaitGroup
	for _, id := range []string{"a", "b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.c.GetSecretString(context.Background(), id)
		}()
	}
	eventually(t, "both describes in flight at once", func() bool { now, _ := e.client.InFlight(); return now == 2 })
	e.client.Release()
	wg.Wait()
	if e.str("a") != "A" || e.str("b") != "B" {
		t.Fatal("wrong values")
	}
}

func TestS24_CancelledCallerDoesNotPoisonOthers(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	e.client.Hold()
	ctx, cancel := context.WithCancel(context.Background())
	errA := make(chan error, 1)
	valB := make(chan string, 1)
	go func() { _, err := e.c.GetSecretString(ctx, "db"); errA <- err }()
	go func() {
		s, err := e.c.GetSecretString(context.Background(), "db")
		if err != nil {
			s = err.Error()
		}
		valB <- s
	}()
	eventually(t, "both readers to wait", func() bool { return e.c.waiting.Load() == 2 })
	cancel()
	if err := <-errA; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled reader got %v", err)
	}
	e.client.Release()
	if got := <-valB; got != "s1" {
		t.Fatalf("other reader got %q", got)
	}
	if in := e.info("db"); in.LastError != nil {
		t.Fatalf("stored error %v", in.LastError)
	}
	e.calls(1, 1)
}

func TestS25_SecretLRUEviction(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxCacheSize = 2 })
	for _, id := range []string{"a", "b", "c"} {
		e.client.PutString(id, id)
		e.str(id)
	}
	e.calls(3, 3)
	if _, ok := e.c.Info("a"); ok {
		t.Fatal("a is still cached")
	}
	e.str("a")
	e.calls(4, 4)
	e.str("c") // c was used after b, so b went when a came back
	e.calls(4, 4)
	if _, ok := e.c.Info("b"); ok {
		t.Fatal("b should have been evicted")
	}
}

func TestS26_VersionLRUOfTen(t *testing.T) {
	e := newEnv(t, nil)
	v0 := e.client.PutString("db", "value-0")
	e.str("db")
	for i := 1; i <= 12; i++ {
		e.client.PutString("db", fmt.Sprintf("value-%d", i))
		e.clock.Advance(hour)
		e.str("db")
	}
	e.client.SetStage("db", "AWSCURRENT", v0)
	e.clock.Advance(hour)
	if got := e.str("db"); got != "value-0" {
		t.Fatalf("read = %q", got)
	}
	n := 0
	for _, c := range e.client.Log() {
		if c.Op == opG && c.VersionID == v0 {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("v0 fetched %d times, want 2 (evicted from the version LRU)", n)
	}
}

func TestS27_LRU(t *testing.T) {
	t.Run("max 10 with 100 inserts", func(t *testing.T) {
		l := newLRU[int, int](10)
		evictions := 0
		for i := 0; i < 100; i++ {
			if _, ev := l.putIfAbsent(i, i); ev != nil {
				evictions++
			}
		}
		if l.len() != 10 || evictions != 90 {
			t.Fatalf("len %d, evictions %d", l.len(), evictions)
		}
		for i := 90; i < 100; i++ {
			if _, ok := l.peek(i); !ok {
				t.Fatalf("%d missing", i)
			}
		}
	})
	t.Run("touched key survives", func(t *testing.T) {
		l := newLRU[int, int](10)
		for i := 0; i < 10; i++ {
			l.putIfAbsent(i, i)
		}
		l.get(0)
		l.putIfAbsent(10, 10)
		if _, ok := l.peek(0); !ok {
			t.Fatal("touched key 0 was evicted")
		}
		if _, ok := l.peek(1); ok {
			t.Fatal("least recently used key 1 survived")
		}
	})
	t.Run("max 1", func(t *testing.T) {
		l := newLRU[string, int](1)
		l.putIfAbsent("a", 1)
		_, ev := l.putIfAbsent("b", 2)
		if ev == nil || *ev != 1 || l.len() != 1 {
			t.Fatalf("evicted %v, len %d", ev, l.len())
		}
		if v, ok := l.get("b"); !ok || v != 2 {
			t.Fatal("b missing")
		}
	})
	t.Run("put-if-absent keeps value and recency", func(t *testing.T) {
		l := newLRU[string, int](2)
		l.putIfAbsent("a", 1)
		l.putIfAbsent("b", 2)
		if ins, _ := l.putIfAbsent("a", 99); ins {
			t.Fatal("put-if-absent replaced a present key")
		}
		if v, _ := l.peek("a"); v != 1 {
			t.Fatalf("value changed to %d", v)
		}
		l.putIfAbsent("c", 3) // a was not made recent, so it goes
		if _, ok := l.peek("a"); ok {
			t.Fatal("put-if-absent bumped recency")
		}
		var order []string
		l.each(func(k string, _ int) { order = append(order, k) })
		if strings.Join(order, ",") != "c,b" {
			t.Fatalf("order %v", order)
		}
	})
}

func TestS28_InvalidConfigRejected(t *testing.T) {
	client := cachetest.NewClient()
	cases := []struct {
		field string
		mod   func(*Config)
	}{
		{"MaxCacheSize", func(c *Config) { c.MaxCacheSize = 0 }},
		{"MaxCacheSize", func(c *Config) { c.MaxCacheSize = -1 }},
		{"ExceptionRetryDelayBase", func(c *Config) { c.ExceptionRetryDelayBase = -time.Second }},
		{"ExceptionRetryGrowthFactor", func(c *Config) { c.ExceptionRetryGrowthFactor = 0.5 }},
		{"ExceptionRetryDelayMax", func(c *Config) { c.ExceptionRetryDelayMax = -1 }},
		{"DefaultVersionStage", func(c *Config) { c.DefaultVersionStage = "" }},
		{"SecretRefreshInterval", func(c *Config) { c.SecretRefreshInterval = -time.Hour }},
		{"RefreshAhead", func(c *Config) { c.RefreshAhead = -1 }},
		{"RotationGrace", func(c *Config) { c.RotationGrace = -1 }},
		{"ForceRefreshMaxWait", func(c *Config) { c.ForceRefreshMaxWait = -1 }},
		{"ForceRefreshMinInterval", func(c *Config) { c.ForceRefreshMinInterval = -1 }},
		{"FetchTimeout", func(c *Config) { c.FetchTimeout = 0 }},
	}
	for _, tc := range cases {
		cfg := DefaultConfig()
		tc.mod(&cfg)
		c, err := New(client, cfg)
		if err == nil || c != nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: New = %v, %v; want an error naming the field", tc.field, c, err)
		}
	}
	if _, err := New(client, Config{}); err == nil || !strings.Contains(err.Error(), "MaxCacheSize") || !strings.Contains(err.Error(), "FetchTimeout") {
		t.Errorf("zero Config: %v; want every bad field named", err)
	}
	if _, err := New(nil, DefaultConfig()); err == nil {
		t.Error("nil client accepted")
	}
}

func TestS29_ZeroIntervalDescribesOnEveryRead(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SecretRefreshInterval = 0 })
	e.client.PutString("db", "s1")
	for i := 0; i < 5; i++ {
		e.str("db")
	}
	e.calls(5, 1)
}

func TestS30_JitterCoversBothEndsOfRange(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SecretRefreshInterval = 10 * time.Second })
	e.client.PutString("db", "s1")
	var ns []int64
	seen := map[time.Duration]bool{}
	draws := []func(n int64) int64{
		func(int64) int64 { return 0 },
		func(n int64) int64 { return n / 2 },
		func(n int64) int64 { return n - 1 },
	}
	for _, d := range draws {
		e.rnd.Set(func(n int64) int64 { ns = append(ns, n); return d(n) })
		if err := e.c.RefreshNow(context.Background(), "db"); err != nil {
			t.Fatal(err)
		}
		off := e.info("db").NextRefresh.Sub(e.clock.Now())
		if off < 5*time.Second || off > 10*time.Second {
			t.Fatalf("next refresh in %v, outside [T/2, T]", off)
		}
		seen[off] = true
	}
	if !seen[5*time.Second] || !seen[10*time.Second] {
		t.Fatalf("offsets %v do not reach both ends", seen)
	}
	for _, n := range ns {
		if n != int64(5*time.Second)+1 {
			t.Fatalf("drawn from [0, %d), want the width of [T/2, T] inclusive", n)
		}
	}
}

// recordingHook logs Put and Get calls and wraps what is stored.
type recordingHook struct {
	mu  sync.Mutex
	log []string
}

type wrapped struct{ v any }

func (h *recordingHook) record(s string) {
	h.mu.Lock()
	h.log = append(h.log, s)
	h.mu.Unlock()
}

func kind(v any) string {
	switch v.(type) {
	case *secretsmanager.DescribeSecretOutput:
		return "d"
	case *secretsmanager.GetSecretValueOutput:
		return "v"
	}
	return fmt.Sprintf("?%T", v)
}

func (h *recordingHook) Put(v any) any {
	h.record("P-" + kind(v))
	return wrapped{v}
}

func (h *recordingHook) Get(v any) any {
	w, ok := v.(wrapped)
	if !ok {
		h.record(fmt.Sprintf("G-unwrapped(%T)", v))
		return v
	}
	h.record("G-" + kind(w.v))
	return w.v
}

func (h *recordingHook) take() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := strings.Join(h.log, ",")
	h.log = nil
	return s
}

func TestS32_HookOrder(t *testing.T) {
	h := &recordingHook{}
	e := newEnv(t, func(c *Config) { c.Hook = h })
	e.client.PutString("db", "s1")
	e.str("db")
	if got := h.take(); got != "P-d,G-d,P-v,G-v" {
		t.Fatalf("first read: %s", got)
	}
	e.str("db")
	if got := h.take(); got != "G-d,G-v" {
		t.Fatalf("second read: %s", got)
	}
	e.clock.Advance(hour)
	if got := e.str("db"); got != "s1" {
		t.Fatalf("read = %q", got)
	}
	if got := h.take(); got != "P-d,G-d,G-v" {
		t.Fatalf("refresh with the same version: %s", got)
	}
}

func TestS33_HookNeverSeesNothing(t *testing.T) {
	h := &recordingHook{}
	e := newEnv(t, func(c *Config) { c.Hook = h })
	for i := 0; i < 3; i++ {
		if _, err := e.c.GetSecretString(context.Background(), "missing"); !isNotFound(err) {
			t.Fatalf("err = %v", err)
		}
	}
	if got := h.take(); got != "" {
		t.Fatalf("hook called with nothing stored: %s", got)
	}
}

type badHook struct{}

func (badHook) Put(v any) any { return v }
func (badHook) Get(any) any   { return "not an answer" }

func TestHookReturningWrongTypeIsAnError(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Hook = badHook{} })
	e.client.PutString("db", "s1")
	_, err := e.c.GetSecretString(context.Background(), "db")
	if err == nil || !strings.Contains(err.Error(), "hook returned string") {
		t.Fatalf("err = %v", err)
	}
}

func TestS34_ReturnedBytesAreCopies(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutBinary("bin", []byte("abc"))
	e.client.PutString("str", "xyz")
	ctx := context.Background()
	b, _ := e.c.GetSecretBinary(ctx, "bin")
	b[0] = 'Z'
	v, _ := e.c.GetValue(ctx, "bin", "")
	v.Data[1] = 'Z'
	sv, _ := e.c.GetValue(ctx, "str", "")
	sv.Data[0] = 'Z'
	if b2, _ := e.c.GetSecretBinary(ctx, "bin"); string(b2) != "abc" {
		t.Fatalf("cache changed to %q", b2)
	}
	if s := e.str("str"); s != "xyz" {
		t.Fatalf("cache changed to %q", s)
	}
}

func TestS35_NameAndARNAreTwoEntries(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	arn := e.client.ARN("db")
	if e.str("db") != "s1" || e.str(arn) != "s1" {
		t.Fatal("wrong values")
	}
	e.calls(2, 2)
	if n := e.c.Stats().Secrets; n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
	if in := e.info(arn); in.Name != "db" || in.ARN != arn {
		t.Fatalf("info by ARN: %+v", in)
	}
}
