package e2e

import (
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/test/emulator"
)

// TestIssue12_Listing_RotationSeenWithoutDescribe: in listing mode the
// listing is the change detector and values come in batches: a cold walk of
// the mount and a rotation afterwards cost no DescribeSecret at all.
func TestIssue12_Listing_RotationSeenWithoutDescribe(t *testing.T) {
	w := newWorld(t)
	const n = 30
	for i := range n {
		w.createString(fmt.Sprintf("e2e/s%02d", i), fmt.Sprintf(`{"user":"u%02d","password":"p%02d"}`, i, i))
	}
	d := w.startDaemon("--list-interval", "10s")
	// A cold walk: `find` lists every secret's directory (JSON keys).
	if out, err := exec.Command("find", d.mnt, "-type", "f").CombinedOutput(); err != nil {
		t.Fatalf("find: %v\n%s", err, out)
	}
	for i := range n {
		if got := mustRead(t, d.path(fmt.Sprintf("e2e/s%02d/password", i))); got != fmt.Sprintf("p%02d", i) {
			t.Fatalf("s%02d password = %q", i, got)
		}
	}
	calls := w.emu.CallCounts()
	if calls[emulator.OpDescribeSecret] != 0 {
		t.Fatalf("a cold walk made DescribeSecret calls: %v", calls)
	}
	if b, g := calls[emulator.OpBatchGetSecretValue], calls[emulator.OpGetSecretValue]; b == 0 || b+g > n/2 {
		t.Fatalf("a cold walk of %d secrets made %d BatchGetSecretValue and %d GetSecretValue calls; want batches", n, b, g)
	}
	w.emu.ResetCalls()

	w.put("e2e/s07", `{"user":"u07","password":"rotated"}`)
	start := time.Now()
	eventually(t, 30*time.Second, "the rotation through the listing", func() bool {
		s, _ := read(d.path("e2e/s07/password"))
		return s == "rotated"
	})
	t.Logf("the rotation showed after %v", time.Since(start).Round(100*time.Millisecond))
	if got := mustRead(t, d.path("e2e/s07/AWSPREVIOUS")); got != `{"user":"u07","password":"p07"}` {
		t.Fatalf("AWSPREVIOUS = %q", got)
	}
	calls = w.emu.CallCounts()
	if calls[emulator.OpDescribeSecret] != 0 {
		t.Fatalf("the rotation was seen through DescribeSecret: %v", calls)
	}
	if v := calls[emulator.OpGetSecretValue] + calls[emulator.OpBatchGetSecretValue]; v != 1 {
		t.Fatalf("the rotation cost %d value calls, want 1: %v", v, calls)
	}
}
