package cache

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// The warning of a failed refresh says when the next retry is: 1 s, 2 s,
// 4 s after successive failures, not always the first delay.
func TestDefect9_13_RefreshFailureLogsTheRealRetryTime(t *testing.T) {
	var logs testutil.SyncBuffer
	e := newEnv(t, func(c *Config) {
		c.SecretRefreshInterval = time.Minute
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	e.client.PutString("db", "s1")
	e.str("db")
	e.client.FailAlways(opD, errThrottled())
	e.clock.Advance(time.Minute)
	for _, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if got := e.str("db"); got != "s1" {
			t.Fatalf("stale read = %q", got)
		}
		e.clock.Advance(wait)
	}
	var got []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "refresh failed") {
			got = append(got, l)
		}
	}
	want := []string{"retry_in=1s retry_at=2026-01-02T03:05:06.000Z", "retry_in=2s retry_at=2026-01-02T03:05:08.000Z", "retry_in=4s retry_at=2026-01-02T03:05:12.000Z"}
	if len(got) != len(want) {
		t.Fatalf("%d warnings of a failed refresh, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("warning %d = %s\nwant it to say %s", i+1, got[i], want[i])
		}
	}
	e.calls(4, 1)
}

// A secret that was read and whose refresh fails keeps being retried in the
// background, with the backoff, until it recovers, although nobody reads it
// meanwhile; one that was only described (a looked-up name) is not read,
// so it is neither retried in the background nor counted as read.
func TestDefect9_07_FailedReadSecretIsRetriedUntilItRecovers(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RefreshAhead = time.Minute })
	e.client.PutString("db", "s1")
	e.client.FailNext(opD, 3, errThrottled())
	if _, err := e.c.GetSecretString(context.Background(), "db"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("first read = %v, want the throttling error", err)
	}
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		eventually(t, "the retry alarm", func() bool { return e.info("db").ErrorCount == i+1 && e.clock.Waiters() > 0 })
		if got := e.info("db").NextRefresh.Sub(e.clock.Now()); got != wait {
			t.Fatalf("retry %d in %v, want %v", i+1, got, wait)
		}
		e.clock.Advance(wait)
		eventually(t, "a background retry", func() bool { return e.client.Calls(opD) == i+2 })
	}
	eventually(t, "the value fetched in the background", func() bool { return e.client.Calls(opG) == 1 })
	if in := e.info("db"); in.LastError != nil || !in.Read || in.Pinned {
		t.Fatalf("after recovery: %+v, want no error, read, not pinned", in)
	}
	misses := e.c.Stats().Misses
	if got := e.str("db"); got != "s1" || e.c.Stats().Misses != misses {
		t.Fatalf("read after recovery = %q; it waited for the network: %v", got, e.c.Stats().Misses != misses)
	}

	// Only described: not read, not retried in the background.
	e.client.PutString("looked-up", "x")
	e.client.FailNext(opD, 1, errThrottled())
	if _, err := e.c.Describe(context.Background(), "looked-up"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Describe = %v, want the throttling error", err)
	}
	if in := e.info("looked-up"); in.Read || in.Pinned {
		t.Fatalf("a described secret counts as read or pinned: %+v", in)
	}
	e.noBackgroundRefresh("looked-up")
	// Pinned, it is.
	defer e.c.Pin("looked-up")()
	if in := e.info("looked-up"); !in.Pinned {
		t.Fatalf("pinned secret: %+v", in)
	}
	calls := e.client.Calls(opD)
	eventually(t, "the retry alarm of the pinned secret", func() bool { return e.clock.Waiters() > 0 })
	e.clock.Advance(time.Second)
	eventually(t, "the pinned secret's retry", func() bool { return e.client.Calls(opD) == calls+1 })
}

// Forced refreshes asked for at once by readers of a file (getfattr of
// user.secretsfs.refresh) share one DescribeSecret.
func TestDefect9_08_ConcurrentForcedRefreshesJoinOneCall(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	e.str("db")
	e.client.Hold()
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() { errs <- e.c.RequestRefresh(context.Background(), "db", RefreshRequest{}) }()
	}
	eventually(t, "every request to wait for a call", func() bool { return e.c.waiting.Load() == n })
	e.client.Release()
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("RequestRefresh: %v", err)
		}
	}
	e.calls(2, 1)

	// RefreshNow, the owning program's, also joins; those asked while the
	// first call was under way make one more, which started after them.
	e.client.Hold()
	for range n {
		go func() { errs <- e.c.RefreshNow(context.Background(), "db") }()
	}
	eventually(t, "every RefreshNow to wait for a call", func() bool { return e.c.waiting.Load() == n })
	e.client.Release()
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("RefreshNow: %v", err)
		}
	}
	if got := e.client.Calls(opD); got > 4 {
		t.Fatalf("%d concurrent RefreshNow made %d DescribeSecret calls, want at most 2", n, got-2)
	}
}

// A forced refresh asked for within a second of the secret's last forced
// refresh makes no call: it reports the outcome of the last refresh. (The
// refresh of a read does not count: a change put a moment after a read
// shows at the first request.)
func TestDefect9_08_ForcedRefreshWithinTheWindowMakesNoCall(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	e.str("db")
	ctx := context.Background()
	if err := e.c.RequestRefresh(ctx, "db", RefreshRequest{}); err != nil {
		t.Fatal(err)
	}
	e.calls(2, 1)
	e.clock.Advance(500 * time.Millisecond)
	for _, req := range []RefreshRequest{{}, {CutBackoff: true}} {
		if err := e.c.RequestRefresh(ctx, "db", req); err != nil {
			t.Fatalf("RequestRefresh(%+v) within the window: %v", req, err)
		}
	}
	e.calls(2, 1)
	e.clock.Advance(500 * time.Millisecond)
	v2 := e.client.PutString("db", "s2")
	if err := e.c.RequestRefresh(ctx, "db", RefreshRequest{}); err != nil {
		t.Fatal(err)
	}
	e.calls(3, 2)
	if got := e.info("db").Stages["AWSCURRENT"]; got != v2 {
		t.Fatalf("after the window the refresh shows %q, want %q", got, v2)
	}
}

// While a secret backs off after errors, a forced refresh by anyone but the
// mount's owner makes no call and does not wait: it reports the error. The
// owner may cut the wait short (at most ForceRefreshMaxWait).
func TestDefect9_08_NonOwnerForcedRefreshInBackoffMakesNoCall(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ExceptionRetryDelayBase = time.Minute })
	e.client.PutString("db", "s1")
	e.str("db")
	e.client.FailAlways(opD, errThrottled())
	e.clock.Advance(hour)
	if got := e.str("db"); got != "s1" { // refresh fails; retry in a minute
		t.Fatalf("stale read = %q", got)
	}
	e.calls(2, 1)
	e.clock.Advance(10 * time.Second) // out of the window, still backing off

	done := make(chan error, 1)
	go func() { done <- e.c.RequestRefresh(context.Background(), "db", RefreshRequest{}) }()
	var err error
	returned := false
	eventually(t, "the request to return or wait", func() bool {
		select {
		case err = <-done:
			returned = true
			return true
		default:
			return e.clock.Waiters() > 0
		}
	})
	if !returned {
		e.clock.Advance(time.Minute) // let it go
		<-done
		t.Fatalf("a non-owner's forced refresh in backoff waits for the retry time to call (%d calls)", e.client.Calls(opD))
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("non-owner's forced refresh in backoff = %v, want the last error", err)
	}
	e.calls(2, 1)

	go func() { done <- e.c.RequestRefresh(context.Background(), "db", RefreshRequest{CutBackoff: true}) }()
	eventually(t, "the owner's request to wait on the clock", func() bool { return e.clock.Waiters() > 0 })
	e.clock.Advance(5 * time.Second)
	if err := <-done; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("owner's forced refresh = %v, want the failure", err)
	}
	e.calls(3, 1)
}
