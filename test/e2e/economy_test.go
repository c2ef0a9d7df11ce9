package e2e

import (
	"testing"

	"github.com/secretsfs/secretsfs/test/emulator"
)

func TestCachedReadsCostNoCalls(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			w := newWorld(t)
			w.createString("eco/key", "value")
			d := w.startDaemon(append([]string{"--secret", "eco/key"}, m.flags...)...)
			p := d.path("eco/key/AWSCURRENT")
			mustRead(t, p)
			if n := w.emu.Calls(emulator.OpGetSecretValue); n != 1 {
				t.Fatalf("first read: %d GetSecretValue calls", n)
			}
			// Explicit mode learns the name's stages from one ListSecrets
			// with a name filter, not from DescribeSecret.
			if l, d := w.emu.Calls(emulator.OpListSecrets), w.emu.Calls(emulator.OpDescribeSecret); l != 1 || d != 0 {
				t.Fatalf("explicit mode: %d ListSecrets and %d DescribeSecret calls; want 1 and 0", l, d)
			}
			w.emu.ResetCalls()
			for i := 0; i < 200; i++ {
				if got := mustRead(t, p); got != "value" {
					t.Fatalf("read %d = %q", i, got)
				}
			}
			if calls := w.emu.CallCounts(); total(calls) != 0 {
				t.Fatalf("200 cached reads made calls: %v", calls)
			}
		})
	}
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
