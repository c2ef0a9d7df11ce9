package fs

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/cache/cachetest"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// requireRoot skips a test of the layout only a mount made as root has.
func requireRoot(t *testing.T) {
	t.Helper()
	testutil.RequireFUSE(t)
	if os.Geteuid() != 0 {
		t.Skip("the read-write view is made only as root")
	}
}

// procMountsFields returns the /proc/mounts line of the mount on dir, split
// into source, mount point, type and options.
func procMountsFields(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[1] == dir {
			return f
		}
	}
	t.Fatalf("%s is not in /proc/mounts", dir)
	return nil
}

// readRW reads a file through the server's read-write view.
func readRW(t *testing.T, srv *Server, rel string) ([]byte, error) {
	t.Helper()
	var data []byte
	err := srv.root.withRWDir(func(dir int) error {
		fd, err := unix.Openat(dir, rel, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		buf := make([]byte, 4096)
		n, err := unix.Read(fd, buf)
		if n > 0 {
			data = buf[:n]
		}
		return err
	})
	return data, err
}

// waitEnds fails the test unless srv.Wait returns within 10 s.
func waitEnds(t *testing.T, srv *Server, after string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		srv.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the server still serves 10 s after %s", after)
	}
}

// Issue 13, mount layout: as root the user's mount point is a read-only
// clone of a read-write mount that only the daemon reaches (by a directory
// descriptor), so /proc/mounts shows one mount, ro, with today's source,
// type and options; every write on it is refused by the kernel, root's too;
// the read-write view shows the same files.
func TestIssue13_01_RootMountPointIsReadOnlyCloneOfAHiddenReadWriteView(t *testing.T) {
	requireRoot(t)
	for _, kernelCache := range []bool{false, true} {
		name := "per-open"
		if kernelCache {
			name = "kernel-cache"
		}
		t.Run(name, func(t *testing.T) {
			s, c := layoutStore()
			srv, mnt := mountServer(t, Options{Store: s, Catalog: c, KernelCache: kernelCache, AllowOther: true, FsName: "i13-layout", Refresher: &fakeRefresher{}})

			f := procMountsFields(t, mnt)
			opts := strings.Split(f[3], ",")
			if f[0] != "i13-layout" || f[2] != "fuse.secretsfs" {
				t.Errorf("/proc/mounts: source %q, type %q; want i13-layout, fuse.secretsfs", f[0], f[2])
			}
			for _, want := range []string{"ro", "nosuid", "nodev", "user_id=0", "group_id=0", "allow_other", "default_permissions", "max_read=" + strconv.Itoa(maxRead)} {
				if !slices.Contains(opts, want) {
					t.Errorf("/proc/mounts options %v lack %s", opts, want)
				}
			}
			if n := testutil.MountsOfFS(mnt); n != 1 {
				t.Errorf("mountinfo lists %d mounts of the filesystem, want 1 (the read-write view is hidden)", n)
			}

			for what, op := range writeOps(mnt) {
				if err := op(); !errors.Is(err, syscall.EROFS) {
					t.Errorf("%s on the mount point: %v, want EROFS", what, err)
				}
			}

			want, err := os.ReadFile(filepath.Join(mnt, "a/username"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := readRW(t, srv, "a/username")
			if err != nil || string(got) != string(want) {
				t.Fatalf("a/username through the read-write view: %q, %v; the mount point reads %q", got, err, want)
			}
			// One filesystem behind both.
			var viaMnt, viaRW unix.Stat_t
			if err := unix.Stat(mnt, &viaMnt); err != nil {
				t.Fatal(err)
			}
			if err := srv.root.withRWDir(func(dir int) error {
				return unix.Fstatat(dir, "", &viaRW, unix.AT_EMPTY_PATH)
			}); err != nil {
				t.Fatal(err)
			}
			if viaMnt.Dev != viaRW.Dev || viaMnt.Ino != viaRW.Ino {
				t.Fatalf("the read-write view's root is device %d inode %d, the mount point's %d %d", viaRW.Dev, viaRW.Ino, viaMnt.Dev, viaMnt.Ino)
			}
		})
	}
}

// Issue 13, lifecycle: the read-write view keeps the filesystem alive after
// the mount point goes, so an umount from outside (umount, umount of an
// fstab entry) must still end the server: it closes the view.
func TestIssue13_02_UmountFromOutsideEndsTheServer(t *testing.T) {
	requireRoot(t)
	s, c := layoutStore()
	srv, mnt := mountServer(t, Options{Store: s, Catalog: c, Refresher: &fakeRefresher{}})
	if _, err := os.ReadFile(filepath.Join(mnt, "a/username")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	waitEnds(t, srv, "an umount of the mount point")
	if typ := testutil.MountType(mnt); typ != "" {
		t.Fatalf("%s is still mounted (%s)", mnt, typ)
	}
	if err := srv.root.withRWDir(func(int) error { return nil }); !errors.Is(err, errNoRWView) {
		t.Fatalf("the read-write view after the umount: %v, want it closed", err)
	}
}

// Issue 13, lifecycle: Unmount (SIGTERM) unmounts the mount point and ends
// the server; while a file is open on the mount point it fails (EBUSY) and
// the mount keeps serving, as before.
func TestIssue13_03_UnmountEndsTheServer(t *testing.T) {
	requireRoot(t)
	s, c := layoutStore()
	srv, mnt := mountServer(t, Options{Store: s, Catalog: c, Refresher: &fakeRefresher{}})
	f, err := os.Open(filepath.Join(mnt, "a/username"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() }) // before the unmount, should the test fail
	if err := srv.Unmount(); !errors.Is(err, syscall.EBUSY) {
		t.Fatalf("Unmount with a file open: %v, want EBUSY", err)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "a/username")); err != nil || string(got) != "app" {
		t.Fatalf("after the refused Unmount: %q, %v", got, err)
	}
	if _, err := readRW(t, srv, "a/username"); err != nil {
		t.Fatalf("the read-write view after the refused Unmount: %v", err)
	}
	f.Close()
	if err := srv.Unmount(); err != nil {
		t.Fatalf("Unmount: %v", err)
	}
	waitEnds(t, srv, "Unmount")
	if typ := testutil.MountType(mnt); typ != "" {
		t.Fatalf("%s is still mounted (%s)", mnt, typ)
	}
	if err := srv.root.withRWDir(func(int) error { return nil }); !errors.Is(err, errNoRWView) {
		t.Fatalf("the read-write view after Unmount: %v, want it closed", err)
	}
}

// Issue 13: where the new mount API is refused (an old kernel, a seccomp
// filter), root mounts read-only with mount(2) as before, without a
// read-write view.
func TestIssue13_04_WithoutTheNewMountAPIRootMountsReadOnlyAsBefore(t *testing.T) {
	requireRoot(t)
	s, c := layoutStore()
	dir := t.TempDir()
	refused := func(string, int) (int, error) { return -1, unix.ENOSYS }
	srv, err := mount(dir, Options{Store: s, Catalog: c, Clock: cachetest.NewClock(testEpoch), Refresher: &fakeRefresher{}}, refused)
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("Unmount: %v", err)
		}
	})
	if got, err := os.ReadFile(filepath.Join(dir, "a/username")); err != nil || string(got) != "app" {
		t.Fatalf("read: %q, %v", got, err)
	}
	if opts := testutil.MountOptions(dir); !slices.Contains(opts, "ro") {
		t.Errorf("options %v, want ro", opts)
	}
	for what, op := range writeOps(dir) {
		if err := op(); !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: %v, want EROFS", what, err)
		}
	}
	if err := srv.root.withRWDir(func(int) error { return nil }); !errors.Is(err, errNoRWView) {
		t.Fatalf("the read-write view: %v, want none", err)
	}
}

// Issue 14, memory per volume: mounts sharing a MountTable (a CSI driver's
// volumes) are watched by one goroutine, and each still sees its own
// umount from outside: that one ends, the others serve and unmount as
// before, and with nothing left to watch the table's goroutine ends.
func TestIssue14_33_MountsSharingAMountTableEachSeeTheirOwnUmount(t *testing.T) {
	requireRoot(t)
	table := NewMountTable(nil)
	var srvs []*Server
	var mnts []string
	for range 3 {
		s, c := layoutStore()
		srv, mnt := mountServer(t, Options{Store: s, Catalog: c, Refresher: &fakeRefresher{}, MountTable: table})
		srvs, mnts = append(srvs, srv), append(mnts, mnt)
	}
	if n := tableWatches(table); n != 3 {
		t.Fatalf("the table watches %d mounts, want 3", n)
	}
	if err := syscall.Unmount(mnts[1], 0); err != nil {
		t.Fatal(err)
	}
	waitEnds(t, srvs[1], "an umount of its mount point")
	for _, i := range []int{0, 2} {
		if got, err := os.ReadFile(filepath.Join(mnts[i], "a/username")); err != nil || string(got) != "app" {
			t.Fatalf("mount %d after another's umount: %q, %v", i, got, err)
		}
		if _, err := readRW(t, srvs[i], "a/username"); err != nil {
			t.Fatalf("mount %d's read-write view after another's umount: %v", i, err)
		}
	}
	for _, i := range []int{0, 2} {
		if err := srvs[i].Unmount(); err != nil {
			t.Fatalf("Unmount %d: %v", i, err)
		}
		waitEnds(t, srvs[i], "Unmount")
	}
	eventually(t, "the table's watch ends with nothing to watch", func() bool {
		table.mu.Lock()
		defer table.mu.Unlock()
		return table.wake < 0
	})
}

// tableWatches is how many mounts t watches.
func tableWatches(t *MountTable) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.watched)
}
