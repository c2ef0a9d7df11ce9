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

// An umount from outside (as for a mount made from /etc/fstab) ends Run,
// which returns nil without trying to unmount again.
func TestRunExitsWhenUnmountedOutside(t *testing.T) {
	testutil.RequireFUSE(t)
	f := newEmu(t)
	f.create(t, "app/db", "v")
	dir := t.TempDir()
	cfg := emuConfig(t, f, dir)
	d := systemDeps()
	d.hup = make(chan os.Signal)
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, stdout, stderr, d) }()
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
