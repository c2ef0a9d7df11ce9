package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// A container's bind of a mount is a copy of it in the container's own
// mount namespace, which keeps the filesystem, and so its FUSE connection,
// alive after the daemon unmounts its mount point. Stopping must not wait
// for those copies to go: the daemon ends the connection, and the copies
// answer ENOTCONN.

// TestIssue14_36_StopWhileAContainerHoldsTheMount: `secretsfs mount`
// stopped with SIGTERM while a container holds a bind of its mount exits
// (testutil.Daemon.Stop fails the test after 20 s) instead of waiting for
// the container to go.
func TestIssue14_36_StopWhileAContainerHoldsTheMount(t *testing.T) {
	w := newWorld(t)
	w.createString("app/db", "v1")
	d := w.startDaemon()
	ctr := filepath.Join(t.TempDir(), "secrets")
	c := startContainer(t, d.mnt, ctr)
	file := filepath.Join(ctr, "app/db/AWSCURRENT")
	if got, err := c.read(file); err != nil || got != "v1" {
		t.Fatalf("the container reads %q, %v", got, err)
	}
	d.Stop(t)
	if err := d.ExitErr(); err != nil {
		t.Fatalf("the daemon exited with %v\n%s", err, d.Stderr)
	}
	if mounted(d.mnt) {
		t.Fatal("the mount point is still mounted")
	}
	if _, err := c.read(file); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("the container reads after the daemon stopped: %v, want ENOTCONN", err)
	}
}

// TestIssue14_37_UnpublishWhileAContainerHoldsTheVolume: an unpublish
// while some mount namespace still holds a bind of the volume (a container
// process that has not gone yet) answers, leaves nothing mounted on the
// node, and the bind answers ENOTCONN.
func TestIssue14_37_UnpublishWhileAContainerHoldsTheVolume(t *testing.T) {
	n := newK8sNode(t)
	n.create("app/db", "v1")
	p := newPod("shop", "app", "web-1", k8sRoleApp)
	req := n.request(p, map[string]string{"mapping": testutil.MappingDoc("db", "app/db")}, time.Now().Add(time.Hour))
	n.publish(req)
	ctr := filepath.Join(t.TempDir(), "secrets")
	c := startContainer(t, req.TargetPath, ctr)
	if got, err := c.read(filepath.Join(ctr, "db")); err != nil || got != "v1" {
		t.Fatalf("the container reads %q, %v", got, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := n.node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: req.VolumeId, TargetPath: req.TargetPath}); err != nil {
		t.Fatalf("NodeUnpublishVolume: %v\ndriver stderr:\n%s", err, n.driver.Stderr)
	}
	delete(n.published, req.TargetPath)
	if m := n.mountsUnder(); len(m) != 0 {
		t.Fatalf("/proc/mounts below kubelet's directory after unpublish: %q", m)
	}
	if _, err := c.read(filepath.Join(ctr, "db")); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("the container reads after unpublish: %v, want ENOTCONN", err)
	}
}

// TestIssue14_38_HandoverServesTheContainersOfAPreviousDaemon: with
// --handover (the node-wide DaemonSet), a container that bound the mount
// point while a daemon served it (HostToContainer propagation) reads the
// next daemon's mount as soon as it serves, after a kill -9 or a SIGTERM
// of the one before, and follows rotations through it.
func TestIssue14_38_HandoverServesTheContainersOfAPreviousDaemon(t *testing.T) {
	w := newWorld(t)
	w.createString("app/db", "v1")
	mnt := filepath.Join(sharedDir(t), "secrets") // the DaemonSet's hostPath
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // what the daemons left: one stale mount each
		for i := 0; i < 8 && mounted(mnt); i++ {
			if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", mnt, err)
			}
		}
	})
	start := func() *testutil.Daemon {
		t.Helper()
		argv := []string{binary, "mount", "--endpoint-url", w.srv.URL(), "--refresh-interval", "1s", "--handover", mnt}
		serving := func(d *testutil.Daemon) bool { return strings.Contains(d.Stdout.String(), "serving") }
		return testutil.StartDaemon(t, "secretsfs --handover", "", argv, testutil.FakeAWSEnv(), serving)
	}
	d := start()
	ctr := filepath.Join(t.TempDir(), "secrets")
	c := startContainer(t, mnt, ctr)
	file := filepath.Join(ctr, "app/db/AWSCURRENT")
	if got, err := c.read(file); err != nil || got != "v1" {
		t.Fatalf("the container reads %q, %v", got, err)
	}
	// The last kill -9 comes right after a rotation, while the daemon may
	// still be raising its change events through its own mount.
	kill9 := func() { d.Kill9() }
	for i, stop := range []func(){kill9, func() { d.Stop(t) }, kill9} {
		stop()
		if !mounted(mnt) {
			t.Fatalf("restart %d: the stopped daemon left no mount on the mount point", i)
		}
		if _, err := c.read(file); !errors.Is(err, syscall.ENOTCONN) {
			t.Fatalf("restart %d: the container reads with no daemon: %v, want ENOTCONN", i, err)
		}
		d = start()
		want := fmt.Sprint("v", i+1)
		if got, err := c.read(file); err != nil || got != want {
			t.Fatalf("restart %d: the container reads %q, %v; want %q\n%s", i, got, err, want, d.Stderr)
		}
		next := fmt.Sprint("v", i+2)
		w.put("app/db", next)
		eventually(t, 20*time.Second, "the container sees a rotation through the new daemon's mount", func() bool {
			got, err := c.read(file)
			return err == nil && got == next
		})
	}
}
