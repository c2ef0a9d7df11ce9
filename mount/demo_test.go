package mount

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/cache/cachetest"
	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// The demo rotates demo/db on its clock: exactly at every period, never
// before.
func TestDemoRotatesOnTheClock(t *testing.T) {
	emu := emulator.New()
	if err := seedDemo(emu); err != nil {
		t.Fatal(err)
	}
	clock := cachetest.NewClock(t0)
	var out testutil.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { rotateDemo(ctx, clock, emu, 20*time.Second, &out) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	rotations := func() int { return strings.Count(out.String(), "demo: rotated demo/db") }
	for i := 1; i <= 3; i++ {
		waitFor(t, "the rotation waiting on the clock", func() bool { return clock.Waiters() == 1 })
		clock.Advance(20*time.Second - time.Millisecond)
		if n := rotations(); n != i-1 {
			t.Fatalf("%d rotations before period %d ended, want %d", n, i, i-1)
		}
		clock.Advance(time.Millisecond)
		waitFor(t, fmt.Sprint("rotation ", i), func() bool { return rotations() == i })
	}
}
