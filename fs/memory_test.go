package fs

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/cache/cachetest"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	heap, _ := testutil.LiveMemory()
	return heap
}

// layoutFileNames are the files of each secret of bigDir: its stage and its
// four JSON keys.
var layoutFileNames = []string{"AWSCURRENT", "user", "password", "host", "port"}

// statEvery stats every file of bigDir's n secrets under dir in the mount,
// and returns their inode numbers by path, the directories' too.
func statEvery(t *testing.T, mnt, dir string, n int) map[string]uint64 {
	t.Helper()
	inos := make(map[string]uint64, n*(len(layoutFileNames)+1))
	var st syscall.Stat_t
	for i := range n {
		sec := filepath.Join(dir, fmt.Sprintf("s%05d", i))
		for _, p := range append([]string{sec}, layoutFileNames...) {
			if p != sec {
				p = filepath.Join(sec, p)
			}
			if err := syscall.Stat(filepath.Join(mnt, p), &st); err != nil {
				t.Fatalf("stat %s: %v", p, err)
			}
			inos[p] = st.Ino
		}
	}
	return inos
}

// forgetAll has the kernel forget every name of the mount (drop_caches,
// which needs root) and waits until go-fuse has forgotten them too.
func forgetAll(t *testing.T, srv *Server) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("dropping the kernel's dentries and inodes (drop_caches) needs root")
	}
	top := srv.root.dirAt("")
	testutil.Eventually(t, 30*time.Second, "the kernel to forget every name", func() bool {
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
			t.Fatalf("drop_caches: %v", err)
		}
		return len(top.Children()) == 0
	})
}

// TestIssue12_06_HeapPerLookedUpFileThroughAMount measures, through a real
// mount, the heap a looked-up file of the default layout costs (2 000
// secrets of 4 JSON keys, each file stat'ed: 10 000 files and 2 000
// directories): go-fuse's inode and tables (about 300 bytes a name, the
// directories' share included) and the fs's own node, inode number and
// registry. Before the slimming it was about 780 bytes (and 280 stayed
// once the kernel forgot every name); since, about 630, of which the fs's
// own part is about 300 (the file node 192 with the idle-name sweeper's
// stamp, its entry in the sweeper's queue 16, a sixth of a directory node
// and of a secret's registry entry, a key's span). The bound leaves a
// margin of a tenth over that. Once the kernel forgot every name and the
// sweeper let go of the nodes it had queued (when they are due, an idle
// period after their lookup), what stays is the little the registry's map
// keeps after its deletions (about 20 bytes a file): nothing per name ever
// looked up.
func TestIssue12_06_HeapPerLookedUpFileThroughAMount(t *testing.T) {
	const n = 2_000
	s, c := bigDir("team", n)
	clock := cachetest.NewClock(testEpoch)
	srv, mnt := mountServer(t, Options{Store: s, Catalog: c, Clock: clock})
	files := float64(n * len(layoutFileNames))

	before := liveHeap()
	statEvery(t, mnt, "team", n)
	perFile := float64(int64(liveHeap())-int64(before)) / files
	t.Logf("heap per looked-up file: %.0f bytes (%d secrets, %.0f files)", perFile, n, files)
	if perFile > 700 {
		t.Errorf("a looked-up file costs %.0f bytes of heap, want at most 700 (about 600 with go-fuse's share)", perFile)
	}

	forgetAll(t, srv)
	sweepAfter(t, srv, clock, perOpenForgetIdle)
	left := float64(int64(liveHeap())-int64(before)) / files
	t.Logf("heap per file once the kernel forgot them: %.0f bytes", left)
	if left > 60 {
		t.Errorf("%.0f bytes per file stay once the kernel forgot every name, want at most 60", left)
	}
}

// TestIssue12_06_InodeNumbersStableAndUnique: every name of the mount has
// its own inode number, which is the one it had after the kernel forgot it
// and looked it up again, and the one a directory listing gives.
func TestIssue12_06_InodeNumbersStableAndUnique(t *testing.T) {
	const n = 500
	s, c := bigDir("team", n)
	srv, mnt := mountServer(t, Options{Store: s, Catalog: c})
	first := statEvery(t, mnt, "team", n)
	seen := make(map[uint64]string, len(first))
	for p, ino := range first {
		if other, dup := seen[ino]; dup || ino <= 1 {
			t.Fatalf("%s and %s have inode number %d", p, other, ino)
		}
		seen[ino] = p
	}
	for name, ino := range direntInos(t, filepath.Join(mnt, "team", "s00042")) {
		if p := filepath.Join("team", "s00042", name); ino != first[p] {
			t.Errorf("%s: inode number %d in the listing, %d from stat", p, ino, first[p])
		}
	}

	forgetAll(t, srv)
	again := statEvery(t, mnt, "team", n)
	for p, ino := range first {
		if again[p] != ino {
			t.Fatalf("%s: inode number %d after the kernel forgot it, %d before", p, again[p], ino)
		}
	}
}

// direntInos lists a directory with getdents64 and returns the inode number
// of each entry (but . and ..) as the listing gives it.
func direntInos(t *testing.T, dir string) map[string]uint64 {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	out := map[string]uint64{}
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return out
		}
		// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
		for b := buf[:n]; len(b) > 0; {
			reclen := int(binary.NativeEndian.Uint16(b[16:18]))
			name := string(b[19:reclen])
			name = name[:strings.IndexByte(name, 0)]
			if name != "." && name != ".." {
				out[name] = binary.NativeEndian.Uint64(b[0:8])
			}
			b = b[reclen:]
		}
	}
}
