package cache

import (
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
