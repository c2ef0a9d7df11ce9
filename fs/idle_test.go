package fs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/secretsfs/secretsfs/cache/cachetest"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// idleTree is a store and a catalog of n JSON secrets "app/sNNN" of 4 keys,
// each with its own values, and the content of every file of them by path
// (a directory and 5 files per secret).
func idleTree(n int) (*fakeStore, *fakeCatalog, map[string]string) {
	s := newFakeStore()
	files := map[string]string{}
	var names []string
	for i := range n {
		name := fmt.Sprintf("app/s%03d", i)
		names = append(names, name)
		value := fmt.Sprintf(`{"user":"u%d","password":"p%d","host":"h%d","port":%d}`, i, i, i, 5000+i)
		s.put(name, value)
		files[name+"/AWSCURRENT"] = value
		files[name+"/user"] = fmt.Sprintf("u%d", i)
		files[name+"/password"] = fmt.Sprintf("p%d", i)
		files[name+"/host"] = fmt.Sprintf("h%d", i)
		files[name+"/port"] = fmt.Sprintf("%d", 5000+i)
	}
	return s, &fakeCatalog{refs: refs(names...)}, files
}

// statIno stats a path and returns its inode number.
func statIno(t *testing.T, p string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	return st.Ino
}

// statAll stats every file and returns their inode numbers by path.
func statAll(t *testing.T, mnt string, files map[string]string) map[string]uint64 {
	t.Helper()
	inos := map[string]uint64{}
	for p := range files {
		inos[p] = statIno(t, filepath.Join(mnt, p))
	}
	return inos
}

// walked is a mount of an idleTree with a fake clock after a walk of the
// tree: every file stat'ed, their inode numbers by path.
type walked struct {
	srv   *Server
	mnt   string
	clock *cachetest.Clock
	files map[string]string
	inos  map[string]uint64
}

// walk mounts an idleTree of n secrets with opts and a fake clock, and
// stats every file.
func walk(t *testing.T, n int, opts Options) walked {
	t.Helper()
	w := walked{clock: cachetest.NewClock(testEpoch)}
	opts.Store, opts.Catalog, w.files = idleTree(n)
	opts.Clock = w.clock
	w.srv, w.mnt = mountServer(t, opts)
	w.inos = statAll(t, w.mnt, w.files)
	return w
}

// kernelTree counts the nodes go-fuse holds below the root, which are the
// ones the kernel holds: files and directories.
func kernelTree(srv *Server) (files, dirs int) {
	var walk func(n *gofs.Inode)
	walk = func(n *gofs.Inode) {
		for _, ch := range n.Children() {
			if ch.IsDir() {
				dirs++
				walk(ch)
			} else {
				files++
			}
		}
	}
	walk(srv.root.dirAt("").EmbeddedInode())
	return files, dirs
}

// nodeAt is the node go-fuse holds at a path, nil if none.
func nodeAt(srv *Server, p string) *gofs.Inode {
	n := srv.root.dirAt("").EmbeddedInode()
	for _, name := range strings.Split(p, "/") {
		if n = n.GetChild(name); n == nil {
			return nil
		}
	}
	return n
}

// sweepAfter advances the mount's clock by d and waits until the sweeper
// has dealt with every name due by then.
func sweepAfter(t *testing.T, srv *Server, clock *cachetest.Clock, d time.Duration) {
	t.Helper()
	clock.Advance(d)
	eventually(t, "the sweeper to deal with every name due", func() bool { return srv.root.sweep.caughtUp(clock.Now()) })
}

// forgotten waits until neither the mount nor go-fuse keeps a node of any
// name but the files in keep (FORGET comes asynchronously).
func forgotten(t *testing.T, srv *Server, keep int) {
	t.Helper()
	last := ""
	eventually(t, "the kernel to forget the idle names", func() bool {
		files, dirs := kernelTree(srv)
		reg := srv.root.registeredFiles()
		if now := fmt.Sprint(reg, files, dirs); now != last {
			t.Logf("%d file nodes registered; go-fuse holds %d files and %d directories", reg, files, dirs)
			last = now
		}
		return reg == keep && files == keep && (keep > 0 || dirs == 0)
	})
}

var modes = map[bool]string{false: "per-open", true: "kernel-cache"}

// TestIssue12_Memory_IdleNamesAreForgotten: once nobody has used the names
// a walk of the tree looked up for the idle period, the kernel is asked to
// forget them, and it does: the mount and go-fuse keep no node for them
// (memory follows the names in use, not every name ever looked up). Looked
// up again they read the same bytes under the same inode numbers.
func TestIssue12_Memory_IdleNamesAreForgotten(t *testing.T) {
	const n, idle = 50, 10 * time.Second
	for _, kernelCache := range []bool{false, true} {
		t.Run(modes[kernelCache], func(t *testing.T) {
			w := walk(t, n, Options{KernelCache: kernelCache, ForgetIdle: idle})
			srv, mnt, clock, files, inos := w.srv, w.mnt, w.clock, w.files, w.inos
			if reg, kf, kd := srv.root.registeredFiles(), 0, 0; reg != 5*n {
				t.Fatalf("%d file nodes registered after a stat of %d files", reg, 5*n)
			} else if kf, kd = kernelTree(srv); kf != 5*n || kd != n+1 {
				t.Fatalf("go-fuse holds %d files and %d directories, want %d and %d", kf, kd, 5*n, n+1)
			}

			sweepAfter(t, srv, clock, idle/2)
			if reg := srv.root.registeredFiles(); reg != 5*n {
				t.Fatalf("%d of %d file nodes left before the idle period passed", reg, 5*n)
			}
			sweepAfter(t, srv, clock, 2*idle)
			forgotten(t, srv, 0)

			for p, want := range files {
				if got := readFile(t, filepath.Join(mnt, p)); got != want {
					t.Errorf("%s reads %q after the kernel forgot it, want %q", p, got, want)
				}
				if ino := statIno(t, filepath.Join(mnt, p)); ino != inos[p] {
					t.Errorf("%s has inode %d after the kernel forgot it, %d before", p, ino, inos[p])
				}
			}
		})
	}
}

// TestIssue12_Memory_OpenFileKeepsItsNodeAcrossAnIdlePeriod: the kernel
// keeps the inode of an open file when its name is dropped; the handle
// still reads, and the name looked up again gets the same node (go-fuse's
// and the mount's), which the kernel forgets once the file is closed and
// idle.
func TestIssue12_Memory_OpenFileKeepsItsNodeAcrossAnIdlePeriod(t *testing.T) {
	const n, idle = 10, 10 * time.Second
	for _, kernelCache := range []bool{false, true} {
		t.Run(modes[kernelCache], func(t *testing.T) {
			w := walk(t, n, Options{KernelCache: kernelCache, ForgetIdle: idle})
			srv, mnt, clock, files, inos := w.srv, w.mnt, w.clock, w.files, w.inos
			const p = "app/s003/password"
			held, err := os.Open(filepath.Join(mnt, p))
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()
			node := nodeAt(srv, p)

			sweepAfter(t, srv, clock, 2*idle)
			forgotten(t, srv, 1)
			buf := make([]byte, 64)
			if k, err := held.ReadAt(buf, 0); string(buf[:k]) != files[p] {
				t.Fatalf("the open file reads %q (%v) after its name was dropped, want %q", buf[:k], err, files[p])
			}
			if ino := statIno(t, filepath.Join(mnt, p)); ino != inos[p] {
				t.Fatalf("inode %d after the name was dropped, %d before", ino, inos[p])
			}
			if got := nodeAt(srv, p); got != node {
				t.Fatal("the name looked up again got a new node while the kernel held the old one")
			}
			if got := readFile(t, filepath.Join(mnt, p)); got != files[p] {
				t.Fatalf("%s reads %q, want %q", p, got, files[p])
			}

			held.Close()
			sweepAfter(t, srv, clock, 2*idle)
			forgotten(t, srv, 0)
		})
	}
}

// TestIssue12_Memory_NameInUseIsNotForgotten: a file read every half idle
// period (each open reaches the daemon in per-open mode, while the kernel
// still trusts the directories above it) keeps its node, and so its
// directories, while every other name is forgotten.
func TestIssue12_Memory_NameInUseIsNotForgotten(t *testing.T) {
	const n, idle = 5, 10 * time.Second
	w := walk(t, n, Options{ForgetIdle: idle})
	srv, mnt, clock, files := w.srv, w.mnt, w.clock, w.files
	const p = "app/s002/password"
	node := nodeAt(srv, p)
	for range 8 {
		sweepAfter(t, srv, clock, idle/2)
		if got := readFile(t, filepath.Join(mnt, p)); got != files[p] {
			t.Fatalf("%s reads %q, want %q", p, got, files[p])
		}
		if nodeAt(srv, p) != node {
			t.Fatalf("%s was forgotten although read every %v (idle period %v)", p, idle/2, idle)
		}
	}
	forgotten(t, srv, 1)
}

// TestIssue12_Memory_KernelCacheModeWaitsLonger: by default a name is
// dropped after 3 s without use in per-open mode, where the kernel asks
// again about a name at its first use after a second; in kernel-cache mode
// the kernel trusts a name for a minute without asking, so a name is kept
// well beyond that.
func TestIssue12_Memory_KernelCacheModeWaitsLonger(t *testing.T) {
	for _, tc := range []struct {
		kernelCache  bool
		keptAt, gone time.Duration
	}{
		{false, 2 * time.Second, 30 * time.Second},
		{true, 90 * time.Second, 6 * time.Minute},
	} {
		t.Run(modes[tc.kernelCache], func(t *testing.T) {
			const n = 5
			w := walk(t, n, Options{KernelCache: tc.kernelCache})
			srv, clock := w.srv, w.clock
			sweepAfter(t, srv, clock, tc.keptAt)
			if reg, inval := srv.root.registeredFiles(), srv.root.sweep.invalidated.Load(); reg != 5*n || inval != 0 {
				t.Fatalf("after %v without use: %d of %d file nodes left, %d names dropped", tc.keptAt, reg, 5*n, inval)
			}
			sweepAfter(t, srv, clock, tc.gone-tc.keptAt)
			forgotten(t, srv, 0)
		})
	}
}

// TestIssue12_Memory_SweepCostsAConstantPerLookup: the sweeper visits a
// name once per idle period in which it was used, not every name at every
// wake-up: over 30 wake-ups across 3 idle periods its queue operations stay
// within two per request that used a name, with 10 times more names alike.
func TestIssue12_Memory_SweepCostsAConstantPerLookup(t *testing.T) {
	const idle = 10 * time.Second
	perUse := map[int]float64{}
	for _, n := range []int{20, 200} {
		o := &recordingObserver{ops: map[opKey]int{}}
		w := walk(t, n, Options{ForgetIdle: idle, Observer: o})
		srv, clock, files := w.srv, w.clock, w.files
		for range 30 {
			sweepAfter(t, srv, clock, idle/10)
		}
		forgotten(t, srv, 0)
		uses := o.count("lookup", 0) + o.count("getattr", 0) + o.count("open", 0)
		ops := srv.root.sweep.queueOps.Load()
		perUse[n] = float64(ops) / float64(uses)
		t.Logf("%d names: %d requests used them, %d queue operations of the sweeper, %d names dropped",
			len(files)+n+1, uses, ops, srv.root.sweep.invalidated.Load())
		if ops > int64(2*uses) {
			t.Errorf("%d names: %d queue operations for %d requests", len(files)+n+1, ops, uses)
		}
	}
	t.Logf("queue operations per request: %.2f with 20 secrets, %.2f with 200", perUse[20], perUse[200])
}

// TestIssue12_Memory_SweeperEndsWithTheMount: unmounted by someone else
// (umount), the mount stops its sweeper: it has no name to drop any more.
func TestIssue12_Memory_SweeperEndsWithTheMount(t *testing.T) {
	testutil.RequireFUSE(t)
	dir := t.TempDir()
	s, c, files := idleTree(1)
	srv, err := Mount(dir, Options{Store: s, Catalog: c, Clock: cachetest.NewClock(testEpoch)})
	if err != nil {
		t.Fatal(err)
	}
	statAll(t, dir, files)
	if err := syscall.Unmount(dir, 0); err != nil {
		srv.Unmount()
		t.Fatalf("umount: %v", err)
	}
	srv.Wait()
	eventually(t, "the sweeper to stop", func() bool {
		select {
		case <-srv.root.sweep.done:
			return true
		default:
			return false
		}
	})
	srv.root.sweep.wg.Wait()
}

// TestIssue12_Memory_KernelCachePinEndsWithTheLastForgottenFile: in
// kernel-cache mode a looked-up file pins its secret (reads do not reach
// the daemon, so the cache must refresh it by itself); once the kernel has
// forgotten the last file of the secret, nothing reads it through the
// mount any more and the pin is released, and a later lookup pins it
// again. A secret a mapped file depends on stays pinned for the life of
// the mount.
func TestIssue12_Memory_KernelCachePinEndsWithTheLastForgottenFile(t *testing.T) {
	const idle = 10 * time.Second
	const sec, mappedSec = "app/s000", "app/s001"
	s, c, files := idleTree(2)
	clock := cachetest.NewClock(testEpoch)
	srv, mnt := mountServer(t, Options{Store: s, Catalog: c, Clock: clock, KernelCache: true, ForgetIdle: idle,
		Files: []MappedFile{{Path: "app.ini", SecretIDs: []string{mappedSec}, Render: upper(s, mappedSec)}}})
	statAll(t, mnt, files)
	statIno(t, filepath.Join(mnt, "app.ini"))
	if p, m := s.pinCount(sec), s.pinCount(mappedSec); p != 1 || m != 1 {
		t.Fatalf("after a stat of every file: %s pinned %d times, %s %d, want 1 and 1", sec, p, mappedSec, m)
	}

	held, err := os.Open(filepath.Join(mnt, sec, "user"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	sweepAfter(t, srv, clock, 2*idle)
	forgotten(t, srv, 1)
	if p := s.pinCount(sec); p != 1 {
		t.Fatalf("%s pinned %d times while the kernel holds one of its files, want 1", sec, p)
	}

	held.Close()
	sweepAfter(t, srv, clock, 2*idle)
	forgotten(t, srv, 0)
	if p, m := s.pinCount(sec), s.pinCount(mappedSec); p != 0 || m != 1 {
		t.Fatalf("once the kernel forgot every file: %s pinned %d times, want 0; %s (a mapped file's) %d, want 1",
			sec, p, mappedSec, m)
	}

	if got, want := readFile(t, filepath.Join(mnt, sec, "password")), files[sec+"/password"]; got != want {
		t.Fatalf("%s/password reads %q, want %q", sec, got, want)
	}
	if p := s.pinCount(sec); p != 1 {
		t.Fatalf("%s pinned %d times after a lookup of one of its files again, want 1", sec, p)
	}
}
