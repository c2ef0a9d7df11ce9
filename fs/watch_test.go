package fs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/cache/cachetest"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// eventWait bounds how long a watcher waits for the events of a change the
// store has already reported.
const eventWait = 5 * time.Second

func modeName(kernelCache bool) string {
	if kernelCache {
		return "kernel-cache"
	}
	return "per-open"
}

// A watcher of a file sees IN_MODIFY and IN_CLOSE_WRITE when the store
// reports that its content changed, reads the new bytes on the event, and
// stat agrees; a watcher of the directory sees IN_CREATE for the files
// that appear and IN_DELETE for those that vanish; a watcher of a file
// whose content did not change sees nothing.
func TestIssue13_07_ChangedFilesRaiseInotifyEvents(t *testing.T) {
	for _, kernelCache := range []bool{false, true} {
		t.Run(modeName(kernelCache), func(t *testing.T) {
			s := newFakeStore()
			s.put("db", `{"user":"app","password":"short"}`)
			s.put("other", "x")
			mnt := mountFS(t, Options{Store: s, Catalog: &fakeCatalog{refs: refs("db", "other")}, KernelCache: kernelCache})
			cur := filepath.Join(mnt, "db/AWSCURRENT")
			pw := filepath.Join(mnt, "db/password")
			user := filepath.Join(mnt, "db/user")
			sentinel := filepath.Join(mnt, "other/AWSCURRENT")
			for _, p := range []string{cur, pw, user, sentinel} {
				readFile(t, p)
			}
			inoBefore := inode(t, cur)
			wCur := testutil.Watch(t, cur, testutil.ChangeEvents)
			wPw := testutil.Watch(t, pw, testutil.ChangeEvents)
			wUser := testutil.Watch(t, user, testutil.ChangeEvents)
			wDir := testutil.Watch(t, filepath.Join(mnt, "db"), testutil.ChangeEvents)
			wSentinel := testutil.Watch(t, sentinel, testutil.ChangeEvents)

			// A rotation: the password changes, a key appears, the user
			// stays; AWSPREVIOUS appears (the first rotation).
			newCur := `{"user":"app","password":"a much longer password","token":"t"}`
			s.put("db", newCur)
			expectWrite(t, wCur, cur, newCur)
			expectWrite(t, wPw, pw, "a much longer password")
			if ino := inode(t, cur); ino != inoBefore {
				t.Fatalf("the write changed the file's inode number from %d to %d", inoBefore, ino)
			}
			waitNames(t, wDir, unix.IN_CREATE, "AWSPREVIOUS", "token")
			if got := readFile(t, filepath.Join(mnt, "db/token")); got != "t" {
				t.Fatalf("db/token = %q", got)
			}

			// Changes are written in order: once a later change's events
			// arrived, every event of this one has.
			s.put("other", "y")
			expectWrite(t, wSentinel, sentinel, "y")
			if evs := wUser.Pending(); len(evs) != 0 {
				t.Errorf("the unchanged db/user got events %v", evs)
			}
			for _, ev := range wDir.Pending() {
				if ev.Name != "AWSCURRENT" && ev.Name != "password" && ev.Name != "AWSPREVIOUS" {
					t.Errorf("directory event %#x for %q, which did not change", ev.Mask, ev.Name)
				}
			}
			for _, w := range []*testutil.Watcher{wCur, wPw} {
				if evs := w.Pending(); len(evs) != 0 {
					t.Errorf("more events than one burst: %v", evs)
				}
			}

			// A key vanishes: IN_DELETE in the directory.
			s.put("db", `{"user":"app","password":"a much longer password"}`)
			wDir.WaitFor(eventWait, unix.IN_DELETE, "token")
			if _, err := os.Stat(filepath.Join(mnt, "db/token")); !os.IsNotExist(err) {
				t.Fatalf("stat of the vanished key: %v", err)
			}
			// AWSCURRENT's bytes changed again (the key left it); the
			// password's did not.
			expectWrite(t, wCur, cur, `{"user":"app","password":"a much longer password"}`)
			s.put("other", "z")
			expectWrite(t, wSentinel, sentinel, "z")
			for name, w := range map[string]*testutil.Watcher{"password": wPw, "user": wUser} {
				if evs := w.Pending(); len(evs) != 0 {
					t.Errorf("the unchanged db/%s got events %v", name, evs)
				}
			}
		})
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// waitNames waits until a directory's watcher has seen an event with mask
// for each name, in any order.
func waitNames(t *testing.T, w *testutil.Watcher, mask uint32, names ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var seen []testutil.InotifyEvent
	deadline := time.Now().Add(eventWait)
	for len(want) > 0 {
		ev, ok := w.Next(time.Until(deadline))
		if !ok {
			t.Fatalf("no event %#x for %v within %v (saw %v)", mask, want, eventWait, seen)
		}
		seen = append(seen, ev)
		if ev.Has(mask) {
			delete(want, ev.Name)
		}
	}
}

// expectWrite waits for IN_MODIFY and then IN_CLOSE_WRITE on a watched
// file, and checks that a read and a stat on the event see want.
func expectWrite(t *testing.T, w *testutil.Watcher, path, want string) {
	t.Helper()
	evs := w.WaitFor(eventWait, unix.IN_CLOSE_WRITE, "")
	modified := false
	for _, ev := range evs {
		modified = modified || ev.Has(unix.IN_MODIFY)
	}
	if !modified {
		t.Fatalf("%s: IN_CLOSE_WRITE without IN_MODIFY before it: %v", path, evs)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil || st.Size != int64(len(want)) {
		t.Fatalf("%s: stat on the event: size %d, %v; want %d", path, st.Size, err, len(want))
	}
	if got := readFile(t, path); got != want {
		t.Fatalf("%s: read on the event %q, want %q", path, got, want)
	}
}

// No event at mount, and none for a rotation that leaves a file's bytes
// as they were.
func TestIssue13_08_NoEventsForUnchangedContent(t *testing.T) {
	for _, kernelCache := range []bool{false, true} {
		t.Run(modeName(kernelCache), func(t *testing.T) {
			s := newFakeStore()
			s.put("db", "same")
			s.put("db", "same") // AWSPREVIOUS exists already
			s.put("other", "x")
			mnt := mountFS(t, Options{Store: s, Catalog: &fakeCatalog{refs: refs("db", "other")}, KernelCache: kernelCache})
			cur := filepath.Join(mnt, "db/AWSCURRENT")
			prev := filepath.Join(mnt, "db/AWSPREVIOUS")
			sentinel := filepath.Join(mnt, "other/AWSCURRENT")
			for _, p := range []string{cur, prev, sentinel} {
				readFile(t, p)
			}
			wCur := testutil.Watch(t, cur, testutil.ChangeEvents)
			wPrev := testutil.Watch(t, prev, testutil.ChangeEvents)
			wDir := testutil.Watch(t, filepath.Join(mnt, "db"), testutil.ChangeEvents)
			wSentinel := testutil.Watch(t, sentinel, testutil.ChangeEvents)
			s.put("db", "same")
			s.put("other", "y")
			expectWrite(t, wSentinel, sentinel, "y")
			for name, w := range map[string]*testutil.Watcher{"AWSCURRENT": wCur, "AWSPREVIOUS": wPrev, "the directory": wDir} {
				if evs := w.Pending(); len(evs) != 0 {
					t.Errorf("%s got events %v for a rotation that changed no byte", name, evs)
				}
			}
		})
	}
}

// Writes of the test process (root, and a thread of the daemon's own
// process that has no self-write pending) and of another process are
// refused with EROFS, and change nothing.
func TestIssue13_09_WritesOfOthersAreEROFS(t *testing.T) {
	for _, kernelCache := range []bool{false, true} {
		t.Run(modeName(kernelCache), func(t *testing.T) {
			s := newFakeStore()
			s.put("db", `{"user":"app"}`)
			mnt := mountFS(t, Options{Store: s, Catalog: &fakeCatalog{refs: refs("db")}, KernelCache: kernelCache})
			file := filepath.Join(mnt, "db/AWSCURRENT")
			readFile(t, file)
			ops := map[string]func() error{
				"write":        func() error { return os.WriteFile(file, []byte(`{"user":"app"}`), 0) },
				"open+write":   func() error { return openWrite(file, os.O_WRONLY, `{"user":"app"}`) },
				"truncate":     func() error { return os.Truncate(file, 0) },
				"mknod":        func() error { return unix.Mknod(filepath.Join(mnt, "db/AWSPENDING"), unix.S_IFREG|0o400, 0) },
				"unlink":       func() error { return os.Remove(filepath.Join(mnt, "db/user")) },
				"unlink stage": func() error { return os.Remove(file) },
				"mkdir":        func() error { return os.Mkdir(filepath.Join(mnt, "db/dir"), 0o700) },
				"mkdir at top": func() error { return os.Mkdir(filepath.Join(mnt, "dir"), 0o700) },
				"rmdir":        func() error { return syscall.Rmdir(filepath.Join(mnt, "db")) },
			}
			for what, op := range ops {
				if err := op(); !errors.Is(err, syscall.EROFS) {
					t.Errorf("%s: %v, want EROFS", what, err)
				}
			}
			out, err := exec.Command("sh", "-c", `printf x > "$1"`, "sh", file).CombinedOutput()
			if err == nil || !strings.Contains(string(out), "Read-only file system") {
				t.Errorf("another process's write: %v, %q; want EROFS", err, out)
			}
			if got := readFile(t, file); got != `{"user":"app"}` {
				t.Errorf("after the attempts AWSCURRENT reads %q", got)
			}
			if got := readFile(t, filepath.Join(mnt, "db/user")); got != "app" {
				t.Errorf("after the attempts db/user reads %q", got)
			}
		})
	}
}

// openWrite opens a file with flag and writes data through the handle.
func openWrite(p string, flag int, data string) error {
	f, err := os.OpenFile(p, flag, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// The writer's pending write is accepted only for exactly its bytes at
// their offsets, and its truncation only to nothing or to the new size
// with nothing else set.
func TestIssue13_10_SelfWriteAcceptsOnlyItsExactBytes(t *testing.T) {
	op := &selfOp{kind: opWrite, data: []byte("new value")}
	for _, tc := range []struct {
		data string
		off  int64
		ok   bool
	}{
		{"new value", 0, true},
		{"new ", 0, true},
		{"value", 4, true},
		{"", 9, true},
		{"new valuex", 0, false},
		{"old value", 0, false},
		{"value", 3, false},
		{"e", 9, false},
		{"n", -1, false},
	} {
		if got := op.matchWrite([]byte(tc.data), tc.off); got != tc.ok {
			t.Errorf("write %q at %d: accepted %v, want %v", tc.data, tc.off, got, tc.ok)
		}
	}
	for _, tc := range []struct {
		valid uint32
		size  uint64
		ok    bool
	}{
		{fuse.FATTR_SIZE | fuse.FATTR_MTIME | fuse.FATTR_MTIME_NOW | fuse.FATTR_CTIME, 0, true},
		{fuse.FATTR_SIZE | fuse.FATTR_FH, 9, true},
		{fuse.FATTR_SIZE, 3, false},
		{fuse.FATTR_MTIME, 0, false},
		{fuse.FATTR_SIZE | fuse.FATTR_MODE, 0, false},
		{fuse.FATTR_SIZE | fuse.FATTR_UID, 0, false},
		{fuse.FATTR_SIZE | fuse.FATTR_ATIME, 0, false},
	} {
		in := &fuse.SetAttrIn{SetAttrInCommon: fuse.SetAttrInCommon{Valid: tc.valid, Size: tc.size}}
		if got := op.matchSetattr(in); got != tc.ok {
			t.Errorf("setattr valid %#x size %d: accepted %v, want %v", tc.valid, tc.size, got, tc.ok)
		}
	}
}

// A mapped file rendered anew raises IN_MODIFY and IN_CLOSE_WRITE, as a
// default-layout file does; one whose rendering did not change gets
// nothing. A watcher of a bind mount of a single file (the way containers
// mount a file) sees the events too: inotify watches the inode.
func TestIssue13_11_MappedFilesAndBindMountsOfAFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	for _, kernelCache := range []bool{false, true} {
		t.Run(modeName(kernelCache), func(t *testing.T) {
			s := newFakeStore()
			s.put("db", "db1")
			s.put("api", "api1")
			s.put("other", "x")
			opts := Options{Store: s, Catalog: &fakeCatalog{refs: refs("other")}, KernelCache: kernelCache, Files: []MappedFile{
				{Path: "app/db.ini", SecretIDs: []string{"db"}, Render: upper(s, "db")},
				{Path: "app/api.ini", SecretIDs: []string{"api"}, Render: upper(s, "api")},
			}}
			mnt := mountFS(t, opts)
			dbIni := filepath.Join(mnt, "app/db.ini")
			apiIni := filepath.Join(mnt, "app/api.ini")
			sentinel := filepath.Join(mnt, "other/AWSCURRENT")
			for _, p := range []string{dbIni, apiIni, sentinel} {
				readFile(t, p)
			}
			bound := testutil.BindFile(t, dbIni, filepath.Join(t.TempDir(), "db.ini"))
			wDb := testutil.Watch(t, dbIni, testutil.ChangeEvents)
			wBound := testutil.Watch(t, bound, testutil.ChangeEvents)
			wAPI := testutil.Watch(t, apiIni, testutil.ChangeEvents)
			wSentinel := testutil.Watch(t, sentinel, testutil.ChangeEvents)

			s.put("db", "db2")
			expectWrite(t, wDb, dbIni, "DB2")
			expectWrite(t, wBound, bound, "DB2")
			s.put("api", "api1") // a new version with the same bytes
			s.put("other", "y")
			expectWrite(t, wSentinel, sentinel, "y")
			if evs := wAPI.Pending(); len(evs) != 0 {
				t.Errorf("the mapped file whose rendering did not change got events %v", evs)
			}
			for _, w := range []*testutil.Watcher{wDb, wBound} {
				if evs := w.Pending(); len(evs) != 0 {
					t.Errorf("more events than one burst: %v", evs)
				}
			}
		})
	}
}

// A directory that appears in the tree (a secret the listing shows now)
// raises IN_CREATE with IN_ISDIR in its parent, for the topmost new
// directory only, and can be listed and read on the event; one that leaves
// it raises IN_DELETE with IN_ISDIR, deepest first, and a watcher of the
// directory itself sees it go. A process whose working directory is in the
// directory that leaves does not stop the event, and reads nothing there
// afterwards. A directory made for mapped files is there before any
// listing: a secret that appears in it raises the event there. Nothing at
// mount, nothing for a listing that did not change, and nothing for a
// watcher of an unrelated directory.
func TestIssue13_12_DirectoriesThatAppearOrLeaveRaiseEvents(t *testing.T) {
	for _, kernelCache := range []bool{false, true} {
		t.Run(modeName(kernelCache), func(t *testing.T) {
			s := newFakeStore()
			for _, id := range []string{"team/x", "team/y", "new/deep/s", "app/z", "other/o", "sentinel"} {
				s.put(id, id+" value")
			}
			listed := refs("team/x", "other/o", "sentinel")
			c := &fakeCatalog{refs: listed}
			mnt := mountFS(t, Options{Store: s, Catalog: c, KernelCache: kernelCache, Files: []MappedFile{
				{Path: "app/db.ini", SecretIDs: []string{"other/o"}, Render: upper(s, "other/o")},
			}})
			sentinel := filepath.Join(mnt, "sentinel/AWSCURRENT")
			readFile(t, sentinel)
			wTop := testutil.Watch(t, mnt, testutil.ChangeEvents)
			wApp := testutil.Watch(t, filepath.Join(mnt, "app"), testutil.ChangeEvents)
			wTeam := testutil.Watch(t, filepath.Join(mnt, "team"), testutil.ChangeEvents)
			wOther := testutil.Watch(t, filepath.Join(mnt, "other"), testutil.ChangeEvents)
			wSentinel := testutil.Watch(t, sentinel, testutil.ChangeEvents)
			// Changes are raised in order: once the sentinel's write is
			// seen, every event raised before it has been.
			n := 0
			barrier := func() {
				t.Helper()
				n++
				v := fmt.Sprintf("sentinel %d", n)
				s.put("sentinel", v)
				expectWrite(t, wSentinel, sentinel, v)
			}
			quiet := func(when string, ws map[string]*testutil.Watcher) {
				t.Helper()
				for name, w := range ws {
					if evs := w.Pending(); len(evs) != 0 {
						t.Errorf("%s: the watcher of %s got %v", when, name, evs)
					}
				}
			}

			c.set(listed)
			barrier()
			quiet("mount and an unchanged listing", map[string]*testutil.Watcher{"the top": wTop, "team": wTeam, "app": wApp, "other": wOther})

			// team/y appears where team is held; new/deep/s where nothing
			// of it was: one event, for "new"; app/z in the mapped
			// directory.
			c.set(refs("team/x", "team/y", "new/deep/s", "app/z", "other/o", "sentinel"))
			onlyEvent(t, wApp, unix.IN_CREATE|unix.IN_ISDIR, "z")
			onlyEvent(t, wTeam, unix.IN_CREATE|unix.IN_ISDIR, "y")
			if got := testutil.ListDir(t, filepath.Join(mnt, "team/y")); !slices.Equal(got, []string{"AWSCURRENT"}) {
				t.Fatalf("team/y lists %v on the event", got)
			}
			if got := readFile(t, filepath.Join(mnt, "team/y/AWSCURRENT")); got != "team/y value" {
				t.Fatalf("team/y/AWSCURRENT on the event = %q", got)
			}
			onlyEvent(t, wTop, unix.IN_CREATE|unix.IN_ISDIR, "new")
			if got := testutil.ListDir(t, filepath.Join(mnt, "new")); !slices.Equal(got, []string{"deep/"}) {
				t.Fatalf("new lists %v on the event", got)
			}
			if got := readFile(t, filepath.Join(mnt, "new/deep/s/AWSCURRENT")); got != "new/deep/s value" {
				t.Fatalf("new/deep/s/AWSCURRENT on the event = %q", got)
			}
			barrier()
			quiet("after the appearances", map[string]*testutil.Watcher{"the top": wTop, "team": wTeam, "app": wApp, "other": wOther})

			// They leave, while a watcher watches team/y itself and
			// new, and a shell's working directory is new/deep.
			wY := testutil.Watch(t, filepath.Join(mnt, "team/y"), testutil.ChangeEvents)
			wNew := testutil.Watch(t, filepath.Join(mnt, "new"), testutil.ChangeEvents)
			sh := shellIn(t, filepath.Join(mnt, "new/deep"), `cat s/AWSCURRENT; echo "cat=$?"; l=$(ls -A); echo "ls=$? [$l]"`)
			c.set(listed)
			onlyEvent(t, wApp, unix.IN_DELETE|unix.IN_ISDIR, "z")
			onlyEvent(t, wTeam, unix.IN_DELETE|unix.IN_ISDIR, "y")
			onlyEvent(t, wY, unix.IN_DELETE_SELF, "")
			onlyEvent(t, wY, unix.IN_IGNORED, "")
			onlyEvent(t, wNew, unix.IN_DELETE|unix.IN_ISDIR, "deep")
			onlyEvent(t, wTop, unix.IN_DELETE|unix.IN_ISDIR, "new")
			for _, p := range []string{"team/y", "new"} {
				if _, err := os.Stat(filepath.Join(mnt, p)); !errors.Is(err, syscall.ENOENT) {
					t.Errorf("stat %s after the event: %v, want ENOENT", p, err)
				}
			}
			// The watcher of new learns that new went only once nothing
			// holds it: the shell's working directory is below it.
			if evs := wNew.Pending(); len(evs) != 0 {
				t.Errorf("the watcher of new got %v while the shell is in new/deep", evs)
			}
			// The shell opens nothing there (ENOENT) and lists it empty: the
			// kernel answers ENOENT to a listing of a removed directory,
			// which readdir(3) takes for its end.
			if out := sh.run(); !strings.Contains(out, "No such file or directory\ncat=1\n") || !strings.Contains(out, "ls=0 []") {
				t.Errorf("the shell in new/deep, after the event:\n%s\nwant cat to fail with ENOENT and ls to list nothing", out)
			}
			onlyEvent(t, wNew, unix.IN_DELETE_SELF, "")
			onlyEvent(t, wNew, unix.IN_IGNORED, "")
			barrier()
			quiet("after the removals", map[string]*testutil.Watcher{"the top": wTop, "team": wTeam, "app": wApp, "other": wOther, "team/y": wY})
		})
	}
}

// onlyEvent waits for a watcher's next event and checks that it is exactly
// mask for name.
func onlyEvent(t *testing.T, w *testutil.Watcher, mask uint32, name string) {
	t.Helper()
	ev, ok := w.Next(eventWait)
	if !ok {
		t.Fatalf("no event %#x %q within %v", mask, name, eventWait)
	}
	if ev.Mask != mask || ev.Name != name {
		t.Fatalf("event %#x %q, want %#x %q", ev.Mask, ev.Name, mask, name)
	}
}

// shell is a shell started in a directory, waiting to run a script there.
type shell struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *testutil.SyncBuffer
	done  chan struct{} // closed once it exited
}

// shellIn starts a shell whose working directory is dir; run has it run
// script there. It is killed, by pid, when the test ends if it still runs.
// The shell changes directory itself: a chdir into the mount between fork
// and exec (exec.Cmd.Dir) would deadlock the test, which serves the mount
// (go-fuse's api.go, "Deadlocks").
func shellIn(t *testing.T, dir, script string) *shell {
	t.Helper()
	sh := &shell{t: t, cmd: exec.Command("sh", "-c", `cd "$1" && echo ready && read go && `+script, "sh", dir), out: &testutil.SyncBuffer{}, done: make(chan struct{})}
	sh.cmd.Stdout, sh.cmd.Stderr = sh.out, sh.out
	var err error
	if sh.stdin, err = sh.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := sh.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sh.cmd.Wait()
		close(sh.done)
	}()
	t.Cleanup(func() {
		select {
		case <-sh.done:
		default:
			sh.cmd.Process.Kill()
			<-sh.done
		}
	})
	eventually(t, "the shell starts", func() bool { return strings.Contains(sh.out.String(), "ready") })
	return sh
}

// run has the shell run its script and returns what it printed, once it
// exited.
func (sh *shell) run() string {
	sh.t.Helper()
	if _, err := sh.stdin.Write([]byte("go\n")); err != nil {
		sh.t.Fatal(err)
	}
	sh.stdin.Close()
	select {
	case <-sh.done:
	case <-time.After(10 * time.Second):
		sh.t.Fatalf("the shell did not exit; it printed %q", sh.out.String())
	}
	return strings.TrimPrefix(sh.out.String(), "ready\n")
}

// TestIssue13_19_WhatTheKernelHoldsIsKeptRefreshed: where the mount raises
// change events, a watcher need not read to see a rotation, so in per-open
// mode too the secret of a file or a directory the kernel holds is pinned
// (kept refreshed in the background), a watched directory's with none of
// its files looked up too; a watched directory keeps it pinned once its
// files are forgotten, and once the watch is gone and the kernel forgot the
// directory too, the pin is released.
func TestIssue13_19_WhatTheKernelHoldsIsKeptRefreshed(t *testing.T) {
	const idle = 10 * time.Second
	const sec, dirOnly = "app/s000", "app/s001"
	s, c, all := idleTree(2)
	files := map[string]string{}
	for p, v := range all {
		if strings.HasPrefix(p, sec+"/") {
			files[p] = v
		}
	}
	clock := cachetest.NewClock(testEpoch)
	srv, mnt := mountServer(t, Options{Store: s, Catalog: c, Clock: clock, ForgetIdle: idle})
	if !srv.root.events.Load() {
		t.Fatal("a mount as root with the new mount API raises no change events")
	}
	statAll(t, mnt, files)
	if p := s.pinCount(sec); p != 1 {
		t.Fatalf("after a stat of its files (per-open mode): %s pinned %d times, want 1", sec, p)
	}

	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	wd, err := unix.InotifyAddWatch(fd, filepath.Join(mnt, sec), testutil.ChangeEvents)
	if err != nil {
		t.Fatal(err)
	}
	// A directory watched, none of its files looked up: pinned too.
	wd2, err := unix.InotifyAddWatch(fd, filepath.Join(mnt, dirOnly), testutil.ChangeEvents)
	if err != nil {
		t.Fatal(err)
	}
	if p := s.pinCount(dirOnly); p != 1 {
		t.Fatalf("its directory watched, no file looked up: %s pinned %d times, want 1", dirOnly, p)
	}
	sweepAfter(t, srv, clock, 2*idle)
	eventually(t, "the kernel to forget the files", func() bool {
		files, _ := kernelTree(srv)
		return files == 0 && srv.root.registeredFiles() == 0
	})
	if p := s.pinCount(sec); p != 1 {
		t.Fatalf("its files forgotten, its directory watched: %s pinned %d times, want 1", sec, p)
	}

	for _, w := range []int{wd, wd2} {
		if _, err := unix.InotifyRmWatch(fd, uint32(w)); err != nil {
			t.Fatal(err)
		}
	}
	sweepAfter(t, srv, clock, 2*idle)
	eventually(t, "the pins to go with the directories", func() bool {
		return s.pinCount(sec) == 0 && s.pinCount(dirOnly) == 0
	})
	if _, dirs := kernelTree(srv); dirs != 0 {
		t.Fatalf("go-fuse holds %d directories, want 0", dirs)
	}
}
