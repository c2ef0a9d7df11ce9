package mount

import (
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// TestIssue10_03_MemoryLockedMetric: whether the daemon's memory is locked
// is on /metrics as secretsfs_memory_locked (1 locked, 0 not), beside the
// warning at start when mlockall fails, so that a unit or container that
// cannot lock memory is seen without reading its log.
func TestIssue10_03_MemoryLockedMetric(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lock    error
		noMlock bool
		want    string
		warning string
	}{
		{"locked", nil, false, "secretsfs_memory_locked 1\n", ""},
		{"mlockall fails", syscall.ENOMEM, false, "secretsfs_memory_locked 0\n", "could not lock memory"},
		{"--no-mlock", nil, true, "secretsfs_memory_locked 0\n", "--no-mlock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newEmu(t)
			f.create(t, "app/key", "k")
			cfg := emuConfig(t, f, t.TempDir())
			cfg.MetricsListen = "127.0.0.1:0"
			cfg.NoMlock = tc.noMlock
			srv := &fakeServer{}
			d := srv.deps(nil)
			d.hygiene = hygieneCalls{
				mlockall:       func() error { return tc.lock },
				disableDumping: func() error { return nil },
			}
			stdout, stderr, _ := runInBackground(t, cfg, d)
			waitFor(t, "the serving line", func() bool { return stdout.String() != "" })
			m := regexp.MustCompile(`msg="serving metrics".* address=(\S+)`).FindStringSubmatch(stderr.String())
			if m == nil {
				t.Fatalf("no metrics address in the log:\n%s", stderr)
			}
			req, err := http.NewRequest(http.MethodGet, "http://"+m[1]+"/metrics", nil)
			if err != nil {
				t.Fatal(err)
			}
			_, body := testutil.Do(t, req)
			if !strings.Contains(body, tc.want) {
				t.Errorf("/metrics lacks %q:\n%s", tc.want, body)
			}
			if tc.warning != "" && !strings.Contains(stderr.String(), tc.warning) {
				t.Errorf("the log lacks %q:\n%s", tc.warning, stderr)
			}
		})
	}
}
