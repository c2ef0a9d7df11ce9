package e2e

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/testutil"
)

func TestKill9ThenMountAgain(t *testing.T) {
	w := newWorld(t)
	w.createString("life/key", "value")
	mnt := t.TempDir()
	d := w.startDaemonAt(mnt, nil)
	if got := mustRead(t, d.path("life/key/AWSCURRENT")); got != "value" {
		t.Fatalf("read = %q", got)
	}
	d.Kill9()
	if _, err := os.Stat(mnt); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("stat of a dead daemon's mount: %v, want ENOTCONN", err)
	}
	d2 := w.startDaemonAt(mnt, nil)
	if got := mustRead(t, d2.path("life/key/AWSCURRENT")); got != "value" {
		t.Fatalf("read after remount = %q", got)
	}
	// d2's cleanup checks that SIGTERM unmounts and exits 0.
}

func TestSIGTERMUnmountsAndExitsZero(t *testing.T) {
	w := newWorld(t)
	w.createString("life/key", "value")
	d := w.startDaemon()
	mustRead(t, d.path("life/key/AWSCURRENT"))
	if err := d.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-d.Exited()
	if err := d.ExitErr(); err != nil {
		t.Fatalf("exit: %v\n%s", err, d.Stderr)
	}
	if mounted(d.mnt) {
		t.Fatal("still mounted")
	}
	data, _ := os.ReadFile("/proc/mounts")
	if strings.Contains(string(data), d.mnt) {
		t.Fatalf("/proc/mounts still names %s", d.mnt)
	}
	if n := strings.Count(strings.TrimSpace(d.Stdout.String()), "\n"); n != 0 {
		t.Errorf("stdout has %d lines, want the one serving line:\n%s", n+1, d.Stdout)
	}
}

// TestMountsAsSecretsfsInProcMounts checks the mount's source, type and
// options: as root read-only (ro) in both modes, a read-only clone of the
// read-write view the daemon writes its change events through
// (fs/rootmount.go, fs/selfwrite.go), so that the kernel refuses every
// write before it reaches the daemon; as non-root read-write, since the
// daemon writes its change events through it, and it refuses every other
// write itself (TestErrnoTable).
func TestMountsAsSecretsfsInProcMounts(t *testing.T) {
	for _, flags := range [][]string{nil, {"--kernel-cache"}} {
		w := newWorld(t)
		d := w.startDaemon(flags...)
		data, err := os.ReadFile("/proc/mounts")
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && f[1] == d.mnt {
				found = true
				opts := "," + f[3] + ","
				want := "rw"
				if os.Geteuid() == 0 {
					want = "ro"
				}
				if f[0] != "secretsfs" || f[2] != "fuse.secretsfs" || !strings.Contains(opts, ","+want+",") || !strings.Contains(opts, ",nosuid,") || !strings.Contains(opts, ",nodev,") {
					t.Errorf("flags %v: /proc/mounts line %q (want %s)", flags, line, want)
				}
			}
		}
		if !found {
			t.Errorf("%s not in /proc/mounts", d.mnt)
		}
	}
}

// TestDefect9_06_ClosedOutputPipeDoesNotKillTheDaemon: the fstab helper hands
// the daemon mount(8)'s output; once whoever read it is gone, the daemon's
// next log line must fail quietly instead of killing it with SIGPIPE, which
// would leave the mount answering ENOTCONN.
func TestDefect9_06_ClosedOutputPipeDoesNotKillTheDaemon(t *testing.T) {
	w := newWorld(t)
	w.createString("pipe/key", "value")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	var out testutil.SyncBuffer
	copied := make(chan struct{})
	go func() {
		io.Copy(&out, pr)
		close(copied)
	}()
	mnt := t.TempDir()
	argv := []string{binary, "mount", "--endpoint-url", w.srv.URL(), "--log-level", "debug", mnt}
	d := testutil.StartDaemonOutput(t, "secretsfs", mnt, argv, testutil.FakeAWSEnv(), pw,
		func(*testutil.Daemon) bool { return strings.Contains(out.String(), "serving") })
	pw.Close()
	file := filepath.Join(mnt, "pipe/key/AWSCURRENT")
	if got := mustRead(t, file); got != "value" {
		t.Fatalf("read = %q", got)
	}
	pr.Close() // the reader goes away
	<-copied

	// SIGHUP logs a line, then refreshes every cached secret: once the
	// emulator sees the refresh, the daemon has written to the closed pipe.
	before := w.emu.Calls(emulator.OpDescribeSecret)
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the forced refresh, or the daemon's end", func() bool {
		select {
		case <-d.Exited():
			return true
		default:
			return w.emu.Calls(emulator.OpDescribeSecret) > before
		}
	})
	select {
	case <-d.Exited():
		_, statErr := os.Stat(mnt)
		t.Fatalf("the daemon ended when its output pipe had no reader: %v (the mount now answers %v)", d.ExitErr(), statErr)
	default:
	}
	if got := mustRead(t, file); got != "value" {
		t.Fatalf("read after the log lines went nowhere = %q", got)
	}
	// The cleanup checks that SIGTERM still unmounts and exits 0.
}

// Issue 13, lifecycle: the daemon's read-write view dies with it; after
// kill -9 only the mount point stays, stale, and the next daemon clears it
// and serves, one mount again.
func TestIssue13_05_Kill9LeavesOnlyTheStaleMountPoint(t *testing.T) {
	w := newWorld(t)
	w.createString("life13/key", "value")
	mnt := t.TempDir()
	d := w.startDaemonAt(mnt, nil)
	if got := mustRead(t, d.path("life13/key/AWSCURRENT")); got != "value" {
		t.Fatalf("read = %q", got)
	}
	if n := testutil.MountsOfFS(mnt); n != 1 {
		t.Fatalf("%d mounts of the filesystem, want 1", n)
	}
	d.Kill9()
	if _, err := os.Stat(mnt); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("stat of a dead daemon's mount: %v, want ENOTCONN", err)
	}
	if n := testutil.MountsOfFS(mnt); n != 1 {
		t.Fatalf("after kill -9: %d mounts of the filesystem, want the stale mount point alone", n)
	}
	d2 := w.startDaemonAt(mnt, nil)
	if got := mustRead(t, d2.path("life13/key/AWSCURRENT")); got != "value" {
		t.Fatalf("read after remount = %q", got)
	}
	if n := testutil.MountsOfFS(mnt); n != 1 {
		t.Fatalf("after the remount: %d mounts of the filesystem, want 1", n)
	}
	if opts := testutil.MountOptions(mnt); !slices.Contains(opts, "ro") {
		t.Fatalf("after the remount: options %v, want ro", opts)
	}
}

// Issue 13, lifecycle: an umount of the mount point from outside (as for an
// fstab entry) ends the daemon, which exits 0 and leaves nothing mounted,
// although its read-write view could have kept the filesystem alive.
func TestIssue13_06_UmountFromOutsideEndsTheDaemon(t *testing.T) {
	w := newWorld(t)
	w.createString("life13/key", "value")
	d := w.startDaemon()
	mustRead(t, d.path("life13/key/AWSCURRENT"))
	if err := syscall.Unmount(d.mnt, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.Exited():
	case <-time.After(10 * time.Second):
		t.Fatalf("the daemon still runs 10 s after its mount point was unmounted\nstderr:\n%s", d.Stderr)
	}
	if err := d.ExitErr(); err != nil {
		t.Fatalf("exit: %v\n%s", err, d.Stderr)
	}
	if !strings.Contains(d.Stderr.String(), "unmounted from outside") {
		t.Errorf("the exit is not logged:\n%s", d.Stderr)
	}
	if mounted(d.mnt) {
		t.Fatal("still mounted")
	}
}
