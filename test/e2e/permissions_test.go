package e2e

import (
	"os"
	"path/filepath"
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

// A mapping entry owned by root keeps that owner on a mount whose default
// owner is another user: the kernel then refuses that user a 0400 file.
func TestDefect9_02_MappedFileOwnedByRootStaysRoots(t *testing.T) {
	requireRoot(t)
	w := newWorld(t)
	w.createString("perm/key", "value")
	cfg := filepath.Join(t.TempDir(), "m.yaml")
	mapping := "files:\n" +
		"  - path: root-only\n    secret: perm/key\n    uid: 0\n    gid: 0\n    mode: \"0400\"\n" +
		"  - path: users\n    secret: perm/key\n"
	if err := os.WriteFile(cfg, []byte(mapping), 0o600); err != nil {
		t.Fatal(err)
	}
	d := w.startDaemonAt(publicMountPoint(t), nil, "--config", cfg, "--allow-other", "--uid", "1000", "--gid", "1000")

	for p, want := range map[string]struct{ mode, uid, gid uint32 }{
		"":          {syscall.S_IFDIR | 0o500, 1000, 1000},
		"root-only": {syscall.S_IFREG | 0o400, 0, 0},
		"users":     {syscall.S_IFREG | 0o400, 1000, 1000},
	} {
		var st syscall.Stat_t
		if err := syscall.Stat(d.path(p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != want.mode || st.Uid != want.uid || st.Gid != want.gid {
			t.Errorf("stat %q: mode %o owner %d:%d, want %o %d:%d", p, st.Mode, st.Uid, st.Gid, want.mode, want.uid, want.gid)
		}
	}
	if got := readAs(t, 1000, 1000, d.path("root-only")); got != syscall.EACCES {
		t.Errorf("uid 1000 reading root's 0400 file got %v, want EACCES", got)
	}
	if got := readAs(t, 1000, 1000, d.path("users")); got != 0 {
		t.Errorf("uid 1000 reading its own file got %v", got)
	}
	if got := readAs(t, 0, 0, d.path("root-only")); got != 0 {
		t.Errorf("root reading its file got %v", got)
	}
}
