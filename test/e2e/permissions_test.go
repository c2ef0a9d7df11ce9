package e2e

import (
	"os"
	"syscall"
	"testing"
)

const nobody = 65534

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("switching to another uid needs root")
	}
}

func TestAllowOtherEnforcesFileMode(t *testing.T) {
	requireRoot(t)
	w := newWorld(t)
	w.createString("perm/key", "value")
	d := w.startDaemonAt(publicMountPoint(t), nil, "--allow-other", "--dir-mode", "0555", "--file-mode", "0400")
	p := d.path("perm/key/AWSCURRENT")
	if got := readAs(t, 0, 0, p); got != 0 {
		t.Fatalf("the owner (root) got %v", got)
	}
	if got := readAs(t, nobody, nobody, p); got != syscall.EACCES {
		t.Fatalf("another uid reading a 0400 file got %v, want EACCES", got)
	}
}

func TestAllowOtherWithReadableMode(t *testing.T) {
	requireRoot(t)
	w := newWorld(t)
	w.createString("perm/key", "value")
	d := w.startDaemonAt(publicMountPoint(t), nil, "--allow-other", "--dir-mode", "0555", "--file-mode", "0444")
	if got := readAs(t, nobody, nobody, d.path("perm/key/AWSCURRENT")); got != 0 {
		t.Fatalf("another uid reading a 0444 file got %v", got)
	}
}

func TestWithoutAllowOtherOthersCannotEnter(t *testing.T) {
	requireRoot(t)
	w := newWorld(t)
	w.createString("perm/key", "value")
	d := w.startDaemonAt(publicMountPoint(t), nil, "--dir-mode", "0555", "--file-mode", "0444")
	if got := readAs(t, nobody, nobody, d.path("perm/key/AWSCURRENT")); got != syscall.EACCES {
		t.Fatalf("another uid without --allow-other got %v, want EACCES", got)
	}
	if got := readAs(t, 0, 0, d.path("perm/key/AWSCURRENT")); got != 0 {
		t.Fatalf("the mounting user got %v", got)
	}
}
