package mount

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
	"github.com/secretsfs/secretsfs/mount/mapping"
	"github.com/secretsfs/secretsfs/test/testutil"
)

func TestFeaturesValidateNamesTheFlag(t *testing.T) {
	cases := []struct {
		f           Features
		kernelCache bool
		want        string // "" for valid
	}{
		{Features{}, false, ""},
		{Features{MetricsListen: "127.0.0.1:9464", AuditLog: "-", MaxStale: time.Hour}, false, ""},
		{Features{MetricsListen: "[::1]:0"}, false, ""},
		{Features{MetricsListen: "localhost:9464"}, false, ""},
		{Features{MetricsListen: "0.0.0.0:9464", MetricsAllowRemote: true}, false, ""},
		{Features{MetricsListen: "0.0.0.0:9464"}, false, "--metrics-allow-remote"},
		{Features{MetricsListen: "nonsense"}, false, "--metrics-listen"},
		{Features{AuditLog: "/tmp/a"}, true, "--audit-log: needs the per-open serving mode"},
		{Features{MaxStale: -time.Second}, false, "--max-stale"},
		{Features{OnChange: &mapping.OnChange{Signal: "HUP"}}, false, "--on-change-pidfile"},
		{Features{OnChange: &mapping.OnChange{Signal: "NOPE", PIDFile: "/p"}}, false, "not a signal"},
		{Features{OnChange: &mapping.OnChange{Command: []string{"x"}, Signal: "HUP", PIDFile: "/p"}}, false, "not both"},
		{Features{OnChange: &mapping.OnChange{Command: []string{"true"}}}, false, ""},
	}
	for _, c := range cases {
		errs := c.f.validate(c.kernelCache)
		got := errors.Join(errs...)
		switch {
		case c.want == "" && got != nil:
			t.Errorf("%+v: %v, want valid", c.f, got)
		case c.want != "" && (got == nil || !strings.Contains(got.Error(), c.want)):
			t.Errorf("%+v: %v, want an error containing %q", c.f, got, c.want)
		}
	}
}

func TestApplyHygiene(t *testing.T) {
	cases := []struct {
		name       string
		h          hygieneCalls
		noMlock    bool
		wantLocked bool // mlockall was called
		wantLog    string
		memLocked  bool // and succeeded
	}{
		{"locks", hygieneCalls{}, false, true, "", true},
		{"--no-mlock", hygieneCalls{}, true, false, "--no-mlock", false},
		{"race detector", hygieneCalls{raceDetector: true}, false, false, "race detector", false},
		{"not permitted", hygieneCalls{mlockall: func() error { return syscall.EPERM }}, false, true, "CAP_IPC_LOCK", false},
	}
	for _, c := range cases {
		var locked, undumpable bool
		h := c.h
		if h.mlockall == nil {
			h.mlockall = func() error { return nil }
		}
		lock := h.mlockall
		h.mlockall = func() error { locked = true; return lock() }
		h.disableDumping = func() error { undumpable = true; return nil }
		var buf bytes.Buffer
		got := applyHygiene(h, c.noMlock, slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
		if locked != c.wantLocked || !undumpable || !strings.Contains(buf.String(), c.wantLog) || got.memoryLocked != c.memLocked {
			t.Errorf("%s: locked %v (want %v), undumpable %v, log %q (want %q), reported locked %v (want %v)",
				c.name, locked, c.wantLocked, undumpable, buf.String(), c.wantLog, got.memoryLocked, c.memLocked)
		}
	}
}

// fakeClockCache builds a cache over a fake client and clock, with
// background refresh off unless a tweak turns it on.
func fakeClockCache(t *testing.T, tweaks ...func(*cache.Config)) (*cache.Cache, *cachetest.Client, *cachetest.Clock) {
	t.Helper()
	client := cachetest.NewClient()
	clock := cachetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	cfg := cache.DefaultConfig()
	cfg.RefreshAhead = 0
	cfg.Clock = clock
	cfg.SecretRefreshInterval = time.Minute
	cfg.ExceptionRetryDelayMax = time.Second
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	c, err := cache.New(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, client, clock
}

func TestMaxStaleAndHealth(t *testing.T) {
	c, client, clock := fakeClockCache(t)
	client.PutString("db", "v1")
	st := store{c: c, maxStale: 10 * time.Minute, clock: clock}
	h := &health{c: c, maxStale: 10 * time.Minute, now: clock.Now}
	h.mounted.Store(true)
	ctx := context.Background()
	if v, err := st.Value(ctx, "db", ""); err != nil || string(v.Data) != "v1" {
		t.Fatalf("read = %q, %v", v.Data, err)
	}
	st.Value(ctx, "missing", "")
	if r := h.check(); !r.Healthy || r.Secrets != 2 {
		t.Fatalf("health = %+v, want healthy with 2 secrets checked (a missing one counts as fine)", r)
	}
	client.FailAlways(cache.OpDescribeSecret, &smithy.GenericAPIError{Code: "ThrottlingException"})
	clock.Advance(5 * time.Minute)
	if v, err := st.Value(ctx, "db", ""); err != nil || !v.Stale {
		t.Fatalf("5 minutes stale: %v stale=%v, want the value", err, v.Stale)
	}
	if r := h.check(); !r.Healthy {
		t.Fatalf("health while stale within --max-stale = %+v", r)
	}
	clock.Advance(6 * time.Minute)
	if _, err := st.Value(ctx, "db", ""); !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("11 minutes stale: %v, want ErrUnavailable (EIO)", err)
	}
	if r := h.check(); r.Healthy || len(r.Unservable) != 1 || r.Unservable[0].SecretID != "db" {
		t.Fatalf("health beyond --max-stale = %+v", r)
	}
	client.FailAlways(cache.OpDescribeSecret, nil)
	clock.Advance(2 * time.Second)
	if v, err := st.Value(ctx, "db", ""); err != nil || v.Stale {
		t.Fatalf("after recovery: %v stale=%v", err, v.Stale)
	}
	if r := h.check(); !r.Healthy {
		t.Fatalf("health after recovery = %+v", r)
	}
	h.mounted.Store(false)
	if h.check().Healthy {
		t.Fatal("healthy while not mounted")
	}
}

// One transient error on a name that was only looked up (described, never
// read) must not fail /healthz; a secret that was read and failed is retried
// in the background with the backoff, so health comes back without a
// reader.
func TestDefect9_07_TransientErrorOnALookedUpNameKeepsHealthy(t *testing.T) {
	c, client, clock := fakeClockCache(t, func(cfg *cache.Config) {
		cfg.RefreshAhead = time.Minute
		cfg.ExceptionRetryDelayMax = time.Hour
	})
	h := &health{c: c, now: clock.Now}
	h.mounted.Store(true)
	ctx := context.Background()
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException"}

	client.PutString("new/secret", "v1")
	client.FailNext(cache.OpDescribeSecret, 1, throttled)
	if _, err := describeThroughCache(c)(ctx, "new/secret"); err == nil {
		t.Fatal("the lookup did not fail; the test proves nothing")
	}
	if _, err := describeThroughCache(c)(ctx, "typo/secret"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("lookup of a typo = %v, want not found", err)
	}
	if r := h.check(); !r.Healthy || r.Secrets != 0 {
		t.Fatalf("health after failed lookups = %+v, want healthy with nothing read", r)
	}

	// A read secret that fails counts, until a background retry succeeds.
	client.PutString("db", "v1")
	client.FailNext(cache.OpDescribeSecret, 2, throttled)
	st := store{c: c, clock: clock}
	if _, err := st.Value(ctx, "db", ""); err == nil {
		t.Fatal("the read did not fail; the test proves nothing")
	}
	if r := h.check(); r.Healthy || len(r.Unservable) != 1 || r.Unservable[0].SecretID != "db" {
		t.Fatalf("health after a failed read = %+v, want db unservable", r)
	}
	for _, wait := range []time.Duration{time.Second, 2 * time.Second} {
		testutil.Eventually(t, 10*time.Second, "a background retry to be scheduled", func() bool { return clock.Waiters() > 0 })
		clock.Advance(wait)
	}
	testutil.Eventually(t, 10*time.Second, "health to come back without a reader", func() bool { return h.check().Healthy })
	if r := h.check(); r.Secrets != 1 {
		t.Fatalf("health = %+v, want only the read secret checked", r)
	}
}
