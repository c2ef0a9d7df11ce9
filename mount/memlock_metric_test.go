package mount

import (
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

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
				mlockall:       func(int) error { return tc.lock },
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

// TestIssue12_Flat_MlockallLocksOnlyWhatIsUsed: memory is locked with
// MCL_ONFAULT, so that pages are locked as they are used rather than every
// page the Go runtime has reserved (which made --no-mlock change the
// resident size); a kernel older than 4.4, which refuses the flag
// (EINVAL), gets the lock without it.
func TestIssue12_Flat_MlockallLocksOnlyWhatIsUsed(t *testing.T) {
	want := unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT
	for _, tc := range []struct {
		name      string
		onFaultOK bool
		calls     []int
	}{
		{"MCL_ONFAULT", true, []int{want}},
		{"kernel without MCL_ONFAULT", false, []int{want, unix.MCL_CURRENT | unix.MCL_FUTURE}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls []int
			h := hygieneCalls{
				mlockall: func(flags int) error {
					calls = append(calls, flags)
					if flags&unix.MCL_ONFAULT != 0 && !tc.onFaultOK {
						return syscall.EINVAL
					}
					return nil
				},
				disableDumping: func() error { return nil },
			}
			got := applyHygiene(h, false, slog.New(slog.DiscardHandler))
			if !slices.Equal(calls, tc.calls) || !got.memoryLocked {
				t.Fatalf("mlockall called with %#x, locked %v; want %#x, locked", calls, got.memoryLocked, tc.calls)
			}
		})
	}
}
