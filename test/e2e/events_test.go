package e2e

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// Issue 13 end to end: what inotify watchers of secretsfs files see, through
// the built binary, real mounts and the emulator.

// eventsMapping maps one file, rendered from ev/app, beside the default
// layout (--expose-all).
const eventsMapping = `files:
  - path: mapped/app.ini
    template: |
      [app]
      token = {{ key "ev/app" "token" }}
`

func appINI(token string) string { return "[app]\ntoken = " + token + "\n" }

// fileWatch is a watcher of a file that a rotation changes, and what it saw.
type fileWatch struct {
	name   string
	w      *testutil.Watcher
	path   string // read on the events
	want   string // the content after the rotation
	modify time.Time
	closed time.Time // IN_CLOSE_WRITE
	closes int       // IN_CLOSE_WRITE events
	// What reading path, and its stat, gave right on the first IN_MODIFY
	// and on the first IN_CLOSE_WRITE.
	onModify, onClose string
}

// take records the events w has queued now; a first IN_MODIFY or
// IN_CLOSE_WRITE has the file read and stat'ed at once, as a program that
// reloads on the event does.
func (f *fileWatch) take() {
	for _, ev := range f.w.Pending() {
		if ev.Has(unix.IN_MODIFY) && f.modify.IsZero() {
			f.modify = time.Now()
			f.onModify = readAndStat(f.path)
		}
		if ev.Has(unix.IN_CLOSE_WRITE) {
			f.closes++
			if f.closed.IsZero() {
				f.closed = time.Now()
				f.onClose = readAndStat(f.path)
			}
		}
	}
}

// readAndStat reads a file and describes what it read and what stat says of
// its size: "<content> (size N)".
func readAndStat(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return "read: " + err.Error()
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		return "stat: " + err.Error()
	}
	return fmt.Sprintf("%q (size %d)", b, st.Size)
}

func wantRead(content string) string { return fmt.Sprintf("%q (size %d)", content, len(content)) }

// changeEvents returns the events among evs that a change raises.
func changeEvents(evs []testutil.InotifyEvent) []testutil.InotifyEvent {
	return slices.DeleteFunc(evs, func(ev testutil.InotifyEvent) bool { return ev.Mask&testutil.ChangeEvents == 0 })
}

// TestIssue13_15_WatchersSeeARotationWithinTheRefreshInterval is the issue's
// "Must show": after a PutSecretValue, watchers of the files it changes (a
// stage file and a JSON key file of the default layout, a mapped file, a
// bind mount of a single file) get IN_MODIFY and IN_CLOSE_WRITE within the
// refresh interval plus one second, and read the new bytes on the event; the
// secret's directory gets IN_CREATE and IN_DELETE for the files that appear
// and vanish; watchers of unchanged files get nothing; a file held open
// keeps what its mode promises; every write of another process, root's and
// another user's, is EROFS; the mount is ro. The rotation comes after the
// secret went unread for a refresh, as it does for a program that read its
// file once at start and waits for the event.
func TestIssue13_15_WatchersSeeARotationWithinTheRefreshInterval(t *testing.T) {
	requireRoot(t) // bind mounts, and writes as another user
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { testWatchersSeeARotation(t, m.name, m.flags) })
	}
}

func testWatchersSeeARotation(t *testing.T, mode string, flags []string) {
	const interval = time.Second
	const (
		dbOld = `{"password":"old","user":"app","gone":"soon"}`
		dbNew = `{"password":"a new, longer password","user":"app","added":"now"}`
	)
	w := newWorld(t)
	w.createString("ev/db", dbOld)
	w.createString("ev/app", `{"token":"t1"}`)
	w.createString("ev/other", "unchanged")
	cfg := filepath.Join(t.TempDir(), "secretsfs.yaml")
	if err := os.WriteFile(cfg, []byte(eventsMapping), 0o600); err != nil {
		t.Fatal(err)
	}
	// Modes that let another user try every write: only the read-only
	// mount refuses them.
	d := w.startDaemonAt(publicMountPoint(t), nil, append([]string{"--refresh-interval", interval.String(),
		"--config", cfg, "--expose-all", "--allow-other", "--file-mode", "0666", "--dir-mode", "0777"}, flags...)...)
	cur, key, same := d.path("ev/db/AWSCURRENT"), d.path("ev/db/password"), d.path("ev/db/user")
	other, mapped, dir := d.path("ev/other/AWSCURRENT"), d.path("mapped/app.ini"), d.path("ev/db")

	// A bind mount of the single file AWSCURRENT, as containers mount a
	// file, somewhere another user can reach.
	bindDir, err := os.MkdirTemp(publicDir, "bind-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bindDir) })
	if err := os.Chmod(bindDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bound := testutil.BindFile(t, cur, filepath.Join(bindDir, "current"))

	// The first load, then the watchers.
	for p, v := range map[string]string{cur: dbOld, key: "old", same: "app", other: "unchanged", mapped: appINI("t1"), bound: dbOld} {
		if got := mustRead(t, p); got != v {
			t.Fatalf("%s = %q, want %q", p, got, v)
		}
	}
	changed := []*fileWatch{
		{name: "stage file", path: cur, want: dbNew},
		{name: "key file", path: key, want: "a new, longer password"},
		{name: "mapped file", path: mapped, want: appINI("t2")},
		{name: "bind mount of the stage file", path: bound, want: dbNew},
	}
	for _, f := range changed {
		f.w = testutil.Watch(t, f.path, testutil.ChangeEvents)
	}
	dirW := testutil.Watch(t, dir, testutil.ChangeEvents)
	unchanged := map[string]*testutil.Watcher{
		"another secret's AWSCURRENT":    testutil.Watch(t, other, testutil.ChangeEvents),
		"a key whose value stays (user)": testutil.Watch(t, same, testutil.ChangeEvents),
	}
	held := holdOpen(t, cur)

	// The secret goes unread for a refresh: the one its first load
	// scheduled has been made.
	readAt := w.emu.SecretCalls(emulator.OpDescribeSecret, "ev/db")
	eventually(t, 10*interval, "a refresh of ev/db after its first load", func() bool {
		return w.emu.SecretCalls(emulator.OpDescribeSecret, "ev/db") > readAt
	})

	w.put("ev/db", dbNew)
	w.put("ev/app", `{"token":"t2"}`)
	T := time.Now()
	deadline := T.Add(interval + time.Second)

	// The directory's events, by name.
	wantDir := map[string]uint32{"AWSPREVIOUS": unix.IN_CREATE, "added": unix.IN_CREATE, "gone": unix.IN_DELETE}
	dirSeen := map[string]time.Time{}
	var dirOther []testutil.InotifyEvent
	all := func() bool {
		for _, f := range changed {
			if f.modify.IsZero() || f.closed.IsZero() {
				return false
			}
		}
		return len(dirSeen) == len(wantDir)
	}
	// Wait beyond the bound, to tell a late event from none.
	for end := T.Add(10 * time.Second); !all() && time.Now().Before(end); time.Sleep(time.Millisecond) {
		for _, f := range changed {
			f.take()
		}
		for _, ev := range dirW.Pending() {
			if m, ok := wantDir[ev.Name]; ok && ev.Has(m) {
				if _, seen := dirSeen[ev.Name]; !seen {
					dirSeen[ev.Name] = time.Now()
				}
				continue
			}
			if (ev.Name == "AWSCURRENT" || ev.Name == "password") && ev.Mask&^(unix.IN_MODIFY|unix.IN_CLOSE_WRITE) == 0 {
				continue // a directory's watcher sees its files' writes too
			}
			dirOther = append(dirOther, ev)
		}
	}
	for _, f := range changed {
		switch {
		case f.modify.IsZero() || f.closed.IsZero():
			t.Errorf("%s: no IN_MODIFY and IN_CLOSE_WRITE within 10 s of the PutSecretValue (IN_MODIFY at %v, IN_CLOSE_WRITE at %v)",
				f.name, sinceOrNone(f.modify, T), sinceOrNone(f.closed, T))
			continue
		case f.modify.After(deadline) || f.closed.After(deadline):
			t.Errorf("%s: IN_MODIFY %v and IN_CLOSE_WRITE %v after the PutSecretValue; want both within %v",
				f.name, f.modify.Sub(T), f.closed.Sub(T), deadline.Sub(T))
		}
		t.Logf("%s (%s): IN_MODIFY after %v, IN_CLOSE_WRITE after %v", f.name, mode, f.modify.Sub(T).Round(time.Millisecond), f.closed.Sub(T).Round(time.Millisecond))
		if want := wantRead(f.want); f.onModify != want || f.onClose != want {
			t.Errorf("%s: read on IN_MODIFY %s, on IN_CLOSE_WRITE %s; want %s", f.name, f.onModify, f.onClose, want)
		}
	}
	for name, m := range wantDir {
		at, ok := dirSeen[name]
		switch {
		case !ok:
			t.Errorf("the directory's watcher saw no %#x for %s within 10 s (other events: %v)", m, name, dirOther)
		case at.After(deadline):
			t.Errorf("the directory's watcher saw %#x for %s %v after the PutSecretValue; want it within %v", m, name, at.Sub(T), deadline.Sub(T))
		default:
			t.Logf("directory (%s): %#x %s after %v", mode, m, name, at.Sub(T).Round(time.Millisecond))
		}
	}
	if evs := changeEvents(dirOther); len(evs) > 0 {
		t.Errorf("the directory's watcher saw other change events: %v", evs)
	}

	// A file held open across the rotation by another process, read
	// once a new open reads the new value.
	if got := mustRead(t, cur); got != dbNew {
		t.Errorf("a new open of AWSCURRENT reads %q, want %q", got, dbNew)
	}
	got := held()
	if len(flags) == 0 {
		if got != dbOld {
			t.Errorf("per-open mode: a handle opened before the rotation read %q, want its snapshot %q", got, dbOld)
		}
	} else if got != dbNew {
		// README, Serving modes: no per-open snapshot in this mode; reads
		// come from the kernel's caches, which the daemon invalidates.
		t.Errorf("kernel-cache mode: a handle opened before the rotation read %q, want the new value %q", got, dbNew)
	}

	// Writes of other processes, root's and another user's.
	for _, as := range []uint32{0, 1000} {
		for _, target := range [][2]string{{key, dir}, {bound, "-"}} {
			for what, errno := range writesAs(t, as, target[0], target[1]) {
				if errno != syscall.EROFS {
					t.Errorf("uid %d: %s of %s: %v, want EROFS", as, what, target[0], errno)
				}
			}
		}
	}
	for _, p := range []string{d.mnt, bound} {
		if opts := testutil.MountOptions(p); !slices.Contains(opts, "ro") {
			t.Errorf("%s: mount options %v, want ro", p, opts)
		}
	}

	// One more refresh pass, observed: a refresh of ev/db since its
	// events, then ev/app rotated again and its mapped file's event
	// waited for (the events are raised in the order of the changes).
	dbAt := w.emu.SecretCalls(emulator.OpDescribeSecret, "ev/db")
	mustRead(t, cur) // in use, so refreshed again in per-open mode too
	eventually(t, 10*interval, "a refresh of ev/db after its rotation", func() bool {
		return w.emu.SecretCalls(emulator.OpDescribeSecret, "ev/db") > dbAt
	})
	w.put("ev/app", `{"token":"t3"}`)
	changed[2].w.WaitFor(10*time.Second, unix.IN_CLOSE_WRITE, "")
	if got, want := readAndStat(mapped), wantRead(appINI("t3")); got != want {
		t.Errorf("the mapped file after its second rotation: %s, want %s", got, want)
	}
	for name, uw := range unchanged {
		if evs := changeEvents(uw.Pending()); len(evs) > 0 {
			t.Errorf("%s: its watcher saw %v; want nothing", name, evs)
		}
	}
	// One burst per changed file per change (the mapped file's second
	// rotation is the one waited for above).
	for _, f := range []*fileWatch{changed[0], changed[1], changed[3]} {
		f.take()
		if f.closes != 1 {
			t.Errorf("%s: %d IN_CLOSE_WRITE events for one rotation, want 1", f.name, f.closes)
		}
	}
}

// sinceOrNone describes when an event came after start, or that it did not.
func sinceOrNone(at, start time.Time) string {
	if at.IsZero() {
		return "none"
	}
	return at.Sub(start).String()
}

// holdOpen opens path in another process (the "hold" child mode) and
// returns what reads that handle from its start, when called.
func holdOpen(t *testing.T, path string) (read func() string) {
	t.Helper()
	stdin, lines := testutil.StartPiped(t, childCmd("hold "+path))
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("the holding child: %q", lines.Text())
	}
	return func() string {
		t.Helper()
		io.WriteString(stdin, "go\n")
		if !lines.Scan() {
			t.Fatal("the holding child printed nothing")
		}
		data, ok := strings.CutPrefix(lines.Text(), "ok ")
		b, err := hex.DecodeString(data)
		if !ok || err != nil {
			t.Fatalf("the holding child: %q", lines.Text())
		}
		return string(b)
	}
}

// writesAs tries every kind of write on file (and, unless dir is "-", of
// names in dir) in a child process running as uid (gid the same), and
// returns each one's errno (0: it succeeded).
func writesAs(t *testing.T, uid uint32, file, dir string) map[string]syscall.Errno {
	t.Helper()
	cmd := childCmd("writes " + file + " " + dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("writer as %d: %v\n%s", uid, err, out)
	}
	got := map[string]syscall.Errno{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "write" {
			t.Fatalf("writer as %d: %q", uid, out)
		}
		n, err := strconv.Atoi(f[2])
		if err != nil {
			t.Fatalf("writer as %d: %q", uid, out)
		}
		got[f[1]] = syscall.Errno(n)
	}
	if len(got) < 5 {
		t.Fatalf("writer as %d tried only %v", uid, got)
	}
	return got
}

// TestIssue13_16_ARestartRaisesNoEvents: a daemon started on the mount
// point of one that stopped raises nothing for content that did not
// change, neither when the files are first read nor over its refreshes;
// a rotation then does raise its events (the watchers were live).
func TestIssue13_16_ARestartRaisesNoEvents(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			const value = `{"password":"one","user":"app"}`
			w := newWorld(t)
			w.createString("re/db", value)
			mnt := t.TempDir()
			flags := append([]string{"--refresh-interval", "1s"}, m.flags...)
			a := w.startDaemonAt(mnt, nil, flags...)
			files := map[string]string{"re/db/AWSCURRENT": value, "re/db/password": "one", "re/db/user": "app"}
			for p, v := range files {
				if got := mustRead(t, a.path(p)); got != v {
					t.Fatalf("%s = %q", p, got)
				}
			}
			a.Stop(t)

			b := w.startDaemonAt(mnt, nil, flags...)
			watchers := map[string]*testutil.Watcher{
				"file":      testutil.Watch(t, b.path("re/db/AWSCURRENT"), testutil.ChangeEvents),
				"key file":  testutil.Watch(t, b.path("re/db/password"), testutil.ChangeEvents),
				"directory": testutil.Watch(t, b.path("re/db"), testutil.ChangeEvents),
			}
			testutil.ListDir(t, b.path("re/db"))
			for p, v := range files {
				if got := mustRead(t, b.path(p)); got != v {
					t.Fatalf("%s = %q after the restart", p, got)
				}
			}
			// Two refreshes of the secret, unread: what is watched is kept
			// refreshed in both modes.
			first := w.emu.SecretCalls(emulator.OpDescribeSecret, "re/db")
			eventually(t, 10*time.Second, "two refreshes of re/db", func() bool {
				return w.emu.SecretCalls(emulator.OpDescribeSecret, "re/db") >= first+2
			})
			for name, wt := range watchers {
				if evs := changeEvents(wt.Pending()); len(evs) > 0 {
					t.Errorf("%s: the restarted daemon raised %v; want nothing", name, evs)
				}
			}

			w.put("re/db", `{"password":"two","user":"app"}`)
			waitWritten(watchers["key file"], 5*time.Second)
			waitWritten(watchers["file"], 5*time.Second)
		})
	}
}

// TestIssue13_18_AWatcherOfADirectoryAloneSeesARotation: a program that
// watches a secret's directory, and neither lists it nor holds any of its
// files, sees a rotation as on tmpfs, within the refresh interval and a
// second, in both modes: AWSPREVIOUS created (the first rotation),
// AWSCURRENT and the key whose value changed written, the key whose value
// stayed untouched. The kernel holding the directory keeps its secret
// refreshed, unread.
func TestIssue13_18_AWatcherOfADirectoryAloneSeesARotation(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			const interval = time.Second
			w := newWorld(t)
			w.createString("dw/db", `{"password":"one","user":"app"}`)
			d := w.startDaemon(append([]string{"--refresh-interval", interval.String()}, m.flags...)...)
			dir := d.path("dw/db")
			dirW := testutil.Watch(t, dir, testutil.ChangeEvents)
			// Loaded and then refreshed in the background, unread.
			eventually(t, 10*interval, "two calls for dw/db, unread", func() bool {
				return w.emu.SecretCalls(emulator.OpDescribeSecret, "dw/db") >= 2
			})

			w.put("dw/db", `{"password":"two","user":"app"}`)
			bound := interval + time.Second
			start := time.Now()
			want := map[string]uint32{"AWSPREVIOUS": unix.IN_CREATE, "AWSCURRENT": unix.IN_CLOSE_WRITE, "password": unix.IN_CLOSE_WRITE}
			seen := map[string]uint32{}
			all := func() bool {
				for name, wm := range want {
					if seen[name]&wm == 0 {
						return false
					}
				}
				return true
			}
			for !all() {
				ev, ok := dirW.Next(time.Until(start.Add(bound)))
				if !ok {
					t.Fatalf("within %v the directory's watcher saw %v, want %v", bound, seen, want)
				}
				seen[ev.Name] |= ev.Mask
			}
			t.Logf("the directory's events within %v of the rotation (bound %v): %v", time.Since(start).Round(time.Millisecond), bound, seen)
			if got := mustRead(t, filepath.Join(dir, "AWSPREVIOUS")); got != `{"password":"one","user":"app"}` {
				t.Errorf("AWSPREVIOUS = %q on its event", got)
			}
			if got := mustRead(t, filepath.Join(dir, "password")); got != "two" {
				t.Errorf("password = %q on its event", got)
			}
			for _, ev := range dirW.Pending() {
				seen[ev.Name] |= ev.Mask
			}
			if seen["user"]&testutil.ChangeEvents != 0 {
				t.Errorf("the key whose value stayed raised %#x", seen["user"])
			}
		})
	}
}

// TestIssue13_17_NonRootDaemonRaisesEvents: a daemon run by a user other
// than root mounts with fusermount3, read-write (README, Running as root or
// non-root); a watcher of that user sees a rotation's IN_MODIFY and
// IN_CLOSE_WRITE and reads the new bytes on them; the user's own writes are
// EROFS (the filesystem refuses them; in kernel-cache mode, where the
// kernel does not ask the daemon about opens, an open for writing succeeds
// and its write is EROFS); SIGTERM leaves nothing mounted.
func TestIssue13_17_NonRootDaemonRaisesEvents(t *testing.T) {
	requireRoot(t) // to run the daemon as another user
	const user = 1000
	why := ""
	var st unix.Stat_t
	if _, err := exec.LookPath("fusermount3"); err != nil {
		why = "no fusermount3 (Debian package fuse3)"
	} else if err := unix.Stat("/dev/fuse", &st); err != nil {
		why = err.Error()
	} else if !canReadWrite(st, user, user) {
		// fusermount3 opens /dev/fuse as the user who runs it.
		why = fmt.Sprintf("uid %d cannot open /dev/fuse (mode %o, owner %d:%d; ACLs not considered; udev makes it 0666, as .ci/run does)", user, st.Mode&0o777, st.Uid, st.Gid)
	}
	if why != "" {
		if os.Getenv("SECRETSFS_TEST_REQUIRE_FUSE") != "" {
			t.Fatalf("FUSE is required (SECRETSFS_TEST_REQUIRE_FUSE is set) but a user cannot mount: %s", why)
		}
		t.Skipf("a user cannot mount: %s", why)
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { testNonRootDaemonRaisesEvents(t, user, m.flags) })
	}
}

// canReadWrite reports whether the mode bits of st let uid (in group gid
// alone) read and write it.
func canReadWrite(st unix.Stat_t, uid, gid uint32) bool {
	switch {
	case st.Uid == uid:
		return st.Mode&0o600 == 0o600
	case st.Gid == gid:
		return st.Mode&0o060 == 0o060
	}
	return st.Mode&0o006 == 0o006
}

func testNonRootDaemonRaisesEvents(t *testing.T, user uint32, flags []string) {
	w := newWorld(t)
	w.createString("nr/db", `{"password":"old"}`)
	mnt := publicMountPoint(t)
	if err := os.Chown(mnt, int(user), int(user)); err != nil {
		t.Fatal(err)
	}
	id := strconv.Itoa(int(user))
	argv := append([]string{"setpriv", "--reuid", id, "--regid", id, "--clear-groups",
		binary, "mount", "--endpoint-url", w.srv.URL(), "--log-level", "debug", "--refresh-interval", "1s"}, flags...)
	argv = append(argv, mnt)
	serving := func(d *testutil.Daemon) bool { return strings.Contains(d.Stdout.String(), "serving") }
	d := testutil.StartDaemon(t, "secretsfs as uid 1000", mnt, argv, testutil.FakeAWSEnv(), serving)
	key := filepath.Join(mnt, "nr/db/password")
	if opts := testutil.MountOptions(mnt); !slices.Contains(opts, "rw") {
		t.Errorf("mount options %v; want rw, as the README says of a non-root mount", opts)
	}
	watch := childCmd("watch 10000 " + key)
	watch.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: user, Gid: user}}
	stdout, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		watch.Process.Kill()
		watch.Wait()
	})
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "ready" {
		t.Fatalf("the watching child: %q", lines.Text())
	}
	// Read just before the rotation: in per-open mode a secret is
	// refreshed in the background only while read (test 15 is about one
	// that is not).
	if got := readAs(t, user, user, key); got != 0 {
		t.Fatalf("uid %d reading %s: %v", user, key, got)
	}
	const newPW = "a new, longer password"
	w.put("nr/db", `{"password":"`+newPW+`"}`)
	T := time.Now()
	var mask uint32
	var read string
	for lines.Scan() {
		l := lines.Text()
		if m, ok := strings.CutPrefix(l, "event "); ok {
			n, _ := strconv.ParseUint(m, 0, 32)
			mask |= uint32(n)
			continue
		}
		read = l
		break
	}
	took := time.Since(T)
	if mask&(unix.IN_MODIFY|unix.IN_CLOSE_WRITE) != unix.IN_MODIFY|unix.IN_CLOSE_WRITE {
		t.Fatalf("the watcher of uid %d saw events %#x and then %q; want IN_MODIFY and IN_CLOSE_WRITE\nstderr:\n%s", user, mask, read, d.Stderr)
	}
	t.Logf("non-root: IN_CLOSE_WRITE (and the read) within %v", took.Round(time.Millisecond))
	if want := fmt.Sprintf("read %d %x", len(newPW), newPW); read != want {
		t.Errorf("the watcher read on IN_CLOSE_WRITE: %q, want %q", read, want)
	}
	for what, errno := range writesAs(t, user, key, filepath.Join(mnt, "nr/db")) {
		if errno != syscall.EROFS {
			t.Errorf("uid %d: %s: %v, want EROFS", user, what, errno)
		}
	}
	d.Stop(t)
	data, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), mnt) {
		t.Errorf("/proc/mounts still names %s after SIGTERM:\n%s", mnt, data)
	}
}
