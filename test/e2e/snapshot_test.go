package e2e

import (
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"
)

// mapFile maps path in a child process (kind "mmap-shared" or
// "mmap-private") and returns what the mapping held.
func mapFile(t *testing.T, kind, path string) string {
	t.Helper()
	out, err := childCmd(kind + " " + path).Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", kind, path, err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 || f[0] != "ok" {
		t.Fatalf("%s %s: %q", kind, path, out)
	}
	b, err := hex.DecodeString(f[1])
	if err != nil {
		t.Fatalf("%s %s: %q: %v", kind, path, out, err)
	}
	return string(b)
}

// TestDefect9_01_MmapOfAPerOpenFile: in per-open mode, where every handle
// reads its own snapshot directly, a program can still map a secret file
// (shared or private) and sees the whole value, before and after a
// rotation, while another process holds the file open from before it; the
// held handle keeps its version.
func TestDefect9_01_MmapOfAPerOpenFile(t *testing.T) {
	w := newWorld(t)
	old := strings.Repeat("[db]\nuser = app\npassword = O1\n", 5)
	w.createString("mm/db", old)
	d := w.startDaemon("--refresh-interval", "1s")
	p := d.path("mm/db/AWSCURRENT")
	kinds := []string{"mmap-shared", "mmap-private"}
	for _, kind := range kinds {
		if got := mapFile(t, kind, p); got != old {
			t.Fatalf("%s before the rotation: %q, want %q", kind, got, old)
		}
	}
	held, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	buf := make([]byte, 4096)
	if n, _ := held.ReadAt(buf, 0); string(buf[:n]) != old {
		t.Fatalf("held handle: %q", buf[:n])
	}

	newer := strings.Repeat("[db]\nuser = app\npassword = N1-N1-N1-N1\n", 5)
	w.put("mm/db", newer)
	eventually(t, 10*time.Second, "the new value", func() bool {
		s, _ := read(p)
		return s == newer
	})
	for _, kind := range kinds {
		if got := mapFile(t, kind, p); got != newer {
			t.Errorf("%s after the rotation: %q, want %q", kind, got, newer)
		}
	}
	if n, _ := held.ReadAt(buf, 0); string(buf[:n]) != old {
		t.Errorf("held handle after the rotation: %q, want %q", buf[:n], old)
	}
}
