package mount

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// realDaemonSetup is what a daemon needs to mount app/db for real (FUSE)
// on a new directory.
func realDaemonSetup(t *testing.T) (dir string, cfg Config, d runDeps) {
	t.Helper()
	testutil.RequireFUSE(t)
	f := newEmu(t)
	f.create(t, "app/db", "v")
	dir = t.TempDir()
	cfg = emuConfig(t, f, dir)
	d = systemDeps()
	d.hup = make(chan os.Signal)
	return dir, cfg, d
}

// An umount from outside (as for a mount made from /etc/fstab) ends Run,
// which returns nil without trying to unmount again.
func TestRunExitsWhenUnmountedOutside(t *testing.T) {
	dir, cfg, d := realDaemonSetup(t)
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, Env{Stdout: stdout, Stderr: stderr}, d) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if testutil.MountType(dir) != "" {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	waitFor(t, "the serving line", func() bool { return stdout.String() != "" })

	if os.Geteuid() == 0 {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Fatal(err)
		}
	} else if out, err := exec.Command("fusermount3", "-u", dir).CombinedOutput(); err != nil {
		t.Fatalf("fusermount3 -u: %v: %s", err, out)
	}
	select {
	case err := <-done:
		done <- err // for the cleanup
		if err != nil {
			t.Fatalf("run() = %v after an outside umount, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after the mount was unmounted from outside")
	}
	if !strings.Contains(stderr.String(), "unmounted from outside") {
		t.Fatalf("the exit is not logged: %s", stderr.String())
	}
	if strings.Contains(stderr.String(), "unmount failed") || strings.Contains(stderr.String(), "detach") {
		t.Fatalf("run tried to unmount again: %s", stderr.String())
	}
}

// Issue 10, item 4: a second daemon on a mount point the first one serves
// is refused before it connects to AWS or mounts anything; the first keeps
// serving, alone.
func TestIssue10_04_SecondDaemonOnALiveMountIsRefused(t *testing.T) {
	dir, cfg, d := realDaemonSetup(t)
	stdout, _, stop := runInBackground(t, cfg, d)
	t.Cleanup(func() {
		stop()
		if testutil.MountType(dir) != "" {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	waitFor(t, "the serving line", func() bool { return stdout.String() != "" })

	second := &syncBuffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second) // so that a second daemon that serves ends
	defer cancel()
	err := run(ctx, cfg, Env{Stdout: second, Stderr: &syncBuffer{}}, d)
	if err == nil || !strings.Contains(err.Error(), "is already mounted: a running secretsfs serves it") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("the second run = %v, want a refusal naming %s", err, dir)
	}
	if second.String() != "" {
		t.Fatalf("the second daemon served: %q", second.String())
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), " "+dir+" "); n != 1 {
		t.Fatalf("%d mounts on %s, want 1", n, dir)
	}
	if got, err := os.ReadFile(dir + "/app/db/AWSCURRENT"); err != nil || string(got) != "v" {
		t.Fatalf("the first mount: %q, %v", got, err)
	}
}
