package e2e

import (
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/test/emulator"
)

func xattr(t *testing.T, p, name string) string {
	t.Helper()
	buf := make([]byte, 256)
	n, err := unix.Getxattr(p, name, buf)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(buf[:n])
}

func TestOutage(t *testing.T) {
	outages := []struct {
		name       string
		start, end func(w *world)
	}{
		{"every call fails",
			func(w *world) {
				w.emu.InjectFault(emulator.AllOperations, emulator.Fault{ErrorType: "InternalServiceError"})
			},
			func(w *world) { w.emu.ClearFaults() }},
		{"connections refused",
			func(w *world) {
				if err := w.srv.SetRefusing(true); err != nil {
					w.t.Fatal(err)
				}
			},
			func(w *world) {
				if err := w.srv.SetRefusing(false); err != nil {
					w.t.Fatal(err)
				}
			}},
	}
	for _, o := range outages {
		t.Run(o.name, func(t *testing.T) {
			w := newWorld(t)
			w.createString("out/cached", "v1")
			w.createString("out/uncached", "u1")
			// Listing mode: explicit mode would prefetch out/uncached at
			// start, and nothing would be uncached.
			d := w.startDaemon("--refresh-interval", "1s", "--retry-delay-max", "2s", "--prefix", "out/")
			cached, uncached := d.path("out/cached/AWSCURRENT"), d.path("out/uncached/AWSCURRENT")
			if got := mustRead(t, cached); got != "v1" {
				t.Fatalf("read = %q", got)
			}
			o.start(w)
			eventually(t, 10*time.Second, "the cached file to be marked stale", func() bool {
				mustRead(t, cached) // keep it in use
				return xattr(t, cached, "user.secretsfs.stale") == "true"
			})
			if got := mustRead(t, cached); got != "v1" {
				t.Fatalf("during the outage the cached file reads %q", got)
			}
			if _, err := read(uncached); errnoOf(err) != syscall.EIO {
				t.Fatalf("an uncached secret during the outage: %v, want EIO", err)
			}
			o.end(w)
			w.put("out/cached", "v2")
			eventually(t, 15*time.Second, "the new value after recovery", func() bool {
				s, _ := read(cached)
				return s == "v2"
			})
			if got := xattr(t, cached, "user.secretsfs.stale"); got != "false" {
				t.Errorf("after recovery stale = %q", got)
			}
			eventually(t, 10*time.Second, "the uncached secret after recovery", func() bool {
				s, _ := read(uncached)
				return s == "u1"
			})
		})
	}
}

// TestThrottlingStormFollowsBackoff reads two secrets in a tight loop while
// every call is throttled: the calls must follow the retry backoff.
func TestThrottlingStormFollowsBackoff(t *testing.T) {
	w := newWorld(t)
	w.createString("storm/a", "a")
	w.createString("storm/b", "b")
	d := w.startDaemon("--refresh-interval", "1s", "--retry-delay-base", "1s", "--retry-delay-max", "60s",
		"--secret", "storm/a", "--secret", "storm/b")
	mustRead(t, d.path("storm/a/AWSCURRENT"))
	mustRead(t, d.path("storm/b/AWSCURRENT"))
	w.emu.InjectFault(emulator.AllOperations, emulator.Fault{ErrorType: "ThrottlingException"})
	w.emu.ResetCalls()
	reads := 0
	for start := time.Now(); time.Since(start) < 6*time.Second; reads++ {
		for _, id := range []string{"storm/a", "storm/b"} {
			if got := mustRead(t, d.path(id+"/AWSCURRENT")); got != id[len("storm/"):] {
				t.Fatalf("stale read of %s = %q", id, got)
			}
		}
	}
	calls := total(w.emu.CallCounts())
	// Per secret in 6 s: expiry within 1 s, then retries 1, 2 and 4 s
	// apart: at most 4 refreshes, each at most 3 attempts by the SDK's
	// retryer. A storm would be one call per read.
	const bound = 2 * 4 * 3
	if calls == 0 || calls > bound {
		t.Fatalf("%d calls during %d reads of each secret; want 1..%d", calls, reads, bound)
	}
	t.Logf("%d calls during %d reads of each secret", calls, reads)
}
