package e2e

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/test/testutil"
)

var modes = []struct {
	name  string
	flags []string
}{
	{"per-open", nil},
	{"kernel-cache", []string{"--kernel-cache"}},
}

func TestRotation(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { testRotation(t, m.flags, nil) })
	}
}

// TestRotationGOMAXPROCS1 runs the daemon and this test on one processor,
// where a notification sent from the wrong place would deadlock.
func TestRotationGOMAXPROCS1(t *testing.T) {
	old := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(old)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { testRotation(t, m.flags, []string{"GOMAXPROCS=1"}) })
	}
}

func testRotation(t *testing.T, flags, env []string) {
	w := newWorld(t)
	w.createString("rot/db", `{"password":"old"}`)
	d := w.startDaemonAt(t.TempDir(), env, append([]string{"--refresh-interval", "1s"}, flags...)...)
	key, cur := d.path("rot/db/password"), d.path("rot/db/AWSCURRENT")
	if got := mustRead(t, key); got != "old" {
		t.Fatalf("password = %q", got)
	}
	var st0 syscall.Stat_t
	if err := syscall.Stat(key, &st0); err != nil {
		t.Fatal(err)
	}
	held, err := os.Open(cur)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()

	const newPW = "a new, much longer password"
	w.put("rot/db", `{"password":"`+newPW+`"}`)
	start := time.Now()
	eventually(t, 10*time.Second, "the new password through the same path", func() bool {
		s, _ := read(key)
		return s == newPW
	})
	// The refresh interval is 1 s; allow for scheduling on a busy machine.
	if took := time.Since(start); took > 2500*time.Millisecond {
		t.Errorf("the rotation took %v to show; the refresh interval is 1 s", took)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(key, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != int64(len(newPW)) || st.Ino != st0.Ino {
		t.Errorf("after the change: size %d (want %d), inode %d (was %d)", st.Size, len(newPW), st.Ino, st0.Ino)
	}
	if got := mustRead(t, cur); got != `{"password":"`+newPW+`"}` {
		t.Errorf("AWSCURRENT = %q", got)
	}
	if got := mustRead(t, d.path("rot/db/AWSPREVIOUS")); got != `{"password":"old"}` {
		t.Errorf("AWSPREVIOUS = %q", got)
	}
	if len(flags) == 0 {
		// Per-open mode: the handle opened before the rotation keeps its
		// snapshot.
		b, err := io.ReadAll(held)
		if err != nil || string(b) != `{"password":"old"}` {
			t.Errorf("held handle read %q, %v", b, err)
		}
	}
}

func TestBindMountOfOneFileSeesRotation(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	w := newWorld(t)
	w.createString("bind/db", `{"password":"before"}`)
	d := w.startDaemon("--refresh-interval", "1s")
	target := testutil.BindFile(t, d.path("bind/db/password"), filepath.Join(t.TempDir(), "password"))
	if got := mustRead(t, target); got != "before" {
		t.Fatalf("through the bind mount: %q", got)
	}
	w.put("bind/db", `{"password":"after"}`)
	eventually(t, 10*time.Second, "the rotation through the bind mount", func() bool {
		s, _ := read(target)
		return s == "after"
	})
}

func TestSIGHUPRefreshesAtOnce(t *testing.T) {
	w := newWorld(t)
	w.createString("hup/key", "one")
	d := w.startDaemon() // the default refresh interval: an hour
	if got := mustRead(t, d.path("hup/key/AWSCURRENT")); got != "one" {
		t.Fatalf("read = %q", got)
	}
	w.put("hup/key", "two")
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the value after SIGHUP", func() bool {
		s, _ := read(d.path("hup/key/AWSCURRENT"))
		return s == "two"
	})
}
