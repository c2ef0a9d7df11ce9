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
	"github.com/secretsfs/secretsfs/mount/mapping"
	"github.com/secretsfs/secretsfs/test/fakecache"
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
		{"not permitted", hygieneCalls{mlockall: func(int) error { return syscall.EPERM }}, false, true, "CAP_IPC_LOCK", false},
	}
	for _, c := range cases {
		var locked, undumpable bool
		h := c.h
		if h.mlockall == nil {
			h.mlockall = func(int) error { return nil }
		}
		lock := h.mlockall
		h.mlockall = func(flags int) error { locked = true; return lock(flags) }
		h.disableDumping = func() error { undumpable = true; return nil }
		var buf bytes.Buffer
		got := applyHygiene(h, c.noMlock, slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
		if locked != c.wantLocked || !undumpable || !strings.Contains(buf.String(), c.wantLog) || got.memoryLocked != c.memLocked {
			t.Errorf("%s: locked %v (want %v), undumpable %v, log %q (want %q), reported locked %v (want %v)",
				c.name, locked, c.wantLocked, undumpable, buf.String(), c.wantLog, got.memoryLocked, c.memLocked)
		}
	}
}

// TestMaxStale: a value stale within --max-stale is served (marked stale),
// beyond it the read is EIO, and after recovery it is served again. The
// health half is telemetry's TestHealthMaxStale.
func TestMaxStale(t *testing.T) {
	c, client, clock := fakecache.New(t)
	client.PutString("db", "v1")
	st := store{c: c, maxStale: 10 * time.Minute, clock: clock}
	ctx := context.Background()
	if v, err := st.Value(ctx, "db", ""); err != nil || string(v.Data) != "v1" {
		t.Fatalf("read = %q, %v", v.Data, err)
	}
	client.FailAlways(cache.OpDescribeSecret, &smithy.GenericAPIError{Code: "ThrottlingException"})
	clock.Advance(5 * time.Minute)
	if v, err := st.Value(ctx, "db", ""); err != nil || !v.Stale {
		t.Fatalf("5 minutes stale: %v stale=%v, want the value", err, v.Stale)
	}
	clock.Advance(6 * time.Minute)
	if _, err := st.Value(ctx, "db", ""); !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("11 minutes stale: %v, want ErrUnavailable (EIO)", err)
	}
	client.FailAlways(cache.OpDescribeSecret, nil)
	clock.Advance(2 * time.Second)
	if v, err := st.Value(ctx, "db", ""); err != nil || v.Stale {
		t.Fatalf("after recovery: %v stale=%v", err, v.Stale)
	}
}
