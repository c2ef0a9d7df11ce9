package mount

import (
	"log/slog"
	"testing"
)

// TestIssue12_Memory_DaemonSetsItsGCTargetUnlessGOGCIsSet: the daemon lets
// its heap grow to 1.4 times what is live, not twice, unless GOGC is in its
// environment, which wins.
func TestIssue12_Memory_DaemonSetsItsGCTargetUnlessGOGCIsSet(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		want int // the percent set; -1 for none
	}{
		{"no GOGC", nil, daemonGCPercent},
		{"GOMEMLIMIT alone", map[string]string{"GOMEMLIMIT": "64MiB"}, daemonGCPercent},
		{"GOGC set", map[string]string{"GOGC": "100"}, -1},
		{"GOGC off", map[string]string{"GOGC": "off"}, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := -1
			tuneGC(gcCalls{
				lookupEnv:    func(k string) (string, bool) { v, ok := c.env[k]; return v, ok },
				setGCPercent: func(p int) int { got = p; return 100 },
			}, slog.New(slog.DiscardHandler))
			if got != c.want {
				t.Fatalf("GOGC set to %d, want %d", got, c.want)
			}
		})
	}
	if daemonGCPercent >= 100 {
		t.Fatalf("daemonGCPercent = %d: no lower than the runtime's default", daemonGCPercent)
	}
}
