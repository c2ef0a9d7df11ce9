package fs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// writeOps are every kind of change a program can attempt on the mount.
func writeOps(mnt string) map[string]func() error {
	file := filepath.Join(mnt, "a/username")
	return map[string]func() error{
		// In kernel-cache mode on a read-write mount no OPEN reaches the
		// daemon: the open succeeds and the write through it fails.
		"open O_WRONLY": func() error { return openWrite(file, os.O_WRONLY, "x") },
		"open O_RDWR":   func() error { return openWrite(file, os.O_RDWR, "x") },
		"open O_TRUNC":  func() error { return openClose(file, os.O_RDONLY|os.O_TRUNC) },
		"open O_APPEND": func() error { return openWrite(file, os.O_WRONLY|os.O_APPEND, "x") },
		"create":        func() error { return os.WriteFile(filepath.Join(mnt, "a/new"), nil, 0o600) },
		"create at top": func() error { return os.WriteFile(filepath.Join(mnt, "new"), nil, 0o600) },
		"mkdir":         func() error { return os.Mkdir(filepath.Join(mnt, "a/dir"), 0o700) },
		"mknod":         func() error { return unix.Mknod(filepath.Join(mnt, "a/fifo"), unix.S_IFIFO|0o600, 0) },
		"unlink":        func() error { return os.Remove(file) },
		"rmdir":         func() error { return syscall.Rmdir(filepath.Join(mnt, "a/b")) },
		"rename":        func() error { return os.Rename(file, filepath.Join(mnt, "a/other")) },
		"link":          func() error { return os.Link(file, filepath.Join(mnt, "a/hard")) },
		"symlink":       func() error { return os.Symlink("username", filepath.Join(mnt, "a/soft")) },
		"chmod":         func() error { return os.Chmod(file, 0o644) },
		"chown":         func() error { return os.Chown(file, 1, 1) },
		"truncate":      func() error { return os.Truncate(file, 0) },
		"utimes":        func() error { return unix.UtimesNano(file, []unix.Timespec{{Sec: 1}, {Sec: 1}}) },
		"setxattr":      func() error { return unix.Setxattr(file, "user.other", []byte("x"), 0) },
		"setxattr of a secretsfs attribute": func() error {
			return unix.Setxattr(file, "user.secretsfs.version_id", []byte("x"), 0)
		},
		"removexattr":   func() error { return unix.Removexattr(file, "user.secretsfs.version_id") },
		"access W_OK":   func() error { return unix.Access(file, unix.W_OK) },
		"chmod the dir": func() error { return os.Chmod(filepath.Join(mnt, "a"), 0o755) },
	}
}

func openClose(p string, flag int) error {
	f, err := os.OpenFile(p, flag, 0)
	if err == nil {
		f.Close()
	}
	return err
}

func TestEveryWriteIsEROFSInBothModes(t *testing.T) {
	for _, kernelCache := range []bool{false, true} {
		name := "per-open"
		if kernelCache {
			name = "kernel-cache"
		}
		t.Run(name, func(t *testing.T) {
			s, c := layoutStore()
			mnt := mountFS(t, Options{Store: s, Catalog: c, KernelCache: kernelCache, Refresher: &fakeRefresher{}})
			if _, err := os.ReadFile(filepath.Join(mnt, "a/username")); err != nil {
				t.Fatal(err)
			}
			for what, op := range writeOps(mnt) {
				if err := op(); !errors.Is(err, syscall.EROFS) {
					t.Errorf("%s: %v, want EROFS", what, err)
				}
			}
			if got, err := os.ReadFile(filepath.Join(mnt, "a/username")); err != nil || string(got) != "app" {
				t.Errorf("after the attempts the file reads %q, %v", got, err)
			}
		})
	}
}

// fakeRefresher counts forced refreshes and runs a function on each.
type fakeRefresher struct {
	mu    sync.Mutex
	ids   []string    // guarded by mu
	froms []Requester // guarded by mu
	err   error       // guarded by mu
	onRun func(id string)
}

func (f *fakeRefresher) RequestRefresh(ctx context.Context, id string, from Requester) error {
	f.mu.Lock()
	f.ids = append(f.ids, id)
	f.froms = append(f.froms, from)
	err, fn := f.err, f.onRun
	f.mu.Unlock()
	if fn != nil && err == nil {
		fn(id)
	}
	return err
}

func (f *fakeRefresher) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ids...)
}

func TestRefreshAttributeRefreshesTheFilesSecret(t *testing.T) {
	for _, kernelCache := range []bool{false, true} {
		name := "per-open"
		if kernelCache {
			name = "kernel-cache"
		}
		t.Run(name, func(t *testing.T) {
			s, c := layoutStore()
			ref := &fakeRefresher{}
			mnt := mountFS(t, Options{Store: s, Catalog: c, KernelCache: kernelCache, Refresher: ref})
			file := filepath.Join(mnt, "tagged/AWSCURRENT")
			if got, _ := os.ReadFile(file); string(got) != "blue value" {
				t.Fatalf("read = %q", got)
			}
			// The "rotation" happens when the daemon is asked to refresh;
			// the store tells no subscriber, so only the refresh itself can
			// make the new value show.
			var vidMu sync.Mutex
			var vid string
			ref.mu.Lock()
			ref.onRun = func(id string) {
				vidMu.Lock()
				defer vidMu.Unlock()
				if vid == "" {
					s.mu.Lock()
					subs := s.subs
					s.subs = nil
					s.mu.Unlock()
					vid = s.put(id, "green value")
					s.mu.Lock()
					s.subs = subs
					s.mu.Unlock()
				}
			}
			ref.mu.Unlock()

			// Reading the attribute works for any reader.
			buf := make([]byte, 128)
			n, err := unix.Getxattr(file, "user.secretsfs.refresh", buf)
			vidMu.Lock()
			want := vid
			vidMu.Unlock()
			if err != nil || string(buf[:n]) != want {
				t.Fatalf("getxattr refresh = %q, %v; want the new version %q", buf[:n], err, want)
			}
			if got, _ := os.ReadFile(file); string(got) != "green value" {
				t.Fatalf("after the refresh the file reads %q", got)
			}
			// The mount is read-only: only reading the attribute works.
			calls := len(ref.calls())
			if err := unix.Setxattr(file, "user.secretsfs.refresh", []byte("1"), 0); !errors.Is(err, syscall.EROFS) {
				t.Fatalf("setxattr refresh: %v, want EROFS", err)
			}
			if got := len(ref.calls()); got != calls {
				t.Fatalf("setxattr made %d refreshes, want none", got-calls)
			}
			for _, id := range ref.calls() {
				if id != "tagged" {
					t.Fatalf("refreshed %q, want only the file's secret", id)
				}
			}
			// The test runs as root: the mount's owner.
			ref.mu.Lock()
			froms := append([]Requester(nil), ref.froms...)
			ref.mu.Unlock()
			for _, from := range froms {
				if !from.Owner {
					t.Fatalf("root's refresh asked as %+v, want the owner", from)
				}
			}
			// Not listed, so that getfattr -d does not refresh.
			if slices.Contains(testutil.ListXattr(t, file), "user.secretsfs.refresh") {
				t.Fatal("the refresh attribute is listed")
			}
			// A failed refresh is the caller's error.
			ref.mu.Lock()
			ref.err = errUnavailable
			ref.mu.Unlock()
			if _, err := unix.Getxattr(file, "user.secretsfs.refresh", buf); !errors.Is(err, syscall.EIO) {
				t.Fatalf("failed refresh: %v, want EIO", err)
			}
		})
	}
}

// Every write to the per-open mount is refused, as to the kernel-cache
// one: by the kernel before it reaches the daemon where the mount is "ro",
// else by the daemon (a mount it writes its change events through,
// selfwrite.go); reading user.secretsfs.refresh (getfattr) still
// refreshes; setting it (setfattr) is a write like any other.
func TestDefect9_16_PerOpenMountIsReadOnlyForTheKernel(t *testing.T) {
	s, c := layoutStore()
	o := &recordingObserver{ops: map[opKey]int{}}
	ref := &fakeRefresher{}
	srv, mnt := mountServer(t, Options{Store: s, Catalog: c, Observer: o, Refresher: ref})
	ro := slices.Contains(testutil.MountOptions(mnt), "ro")
	if os.Geteuid() == 0 && !ro {
		t.Errorf("per-open mount options %v, want ro as root", testutil.MountOptions(mnt))
	}
	// In the root layout the filesystem itself is writable (its read-write
	// view, rootmount.go): access(W_OK) asks the daemon before the kernel
	// looks at the mount point's ro flag, and the daemon answers EROFS
	// (observe.go).
	rwView := srv.root.withRWDir(func(int) error { return nil }) == nil
	file := filepath.Join(mnt, "a/username")
	if got, err := os.ReadFile(file); err != nil || string(got) != "app" {
		t.Fatalf("read = %q, %v", got, err)
	}
	ops := writeOps(mnt)
	ops["setxattr of the refresh attribute"] = func() error { return unix.Setxattr(file, xattrRefresh, []byte("1"), 0) }
	for what, op := range ops {
		if err := op(); !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: %v, want EROFS", what, err)
		}
	}
	o.mu.Lock()
	for k, n := range o.ops {
		if ro && k.errno == syscall.EROFS && !(rwView && k.op == "access") {
			t.Errorf("%d %s requests reached the daemon (answered EROFS there); the kernel should refuse them", n, k.op)
		}
	}
	o.mu.Unlock()
	if n := len(ref.calls()); n != 0 {
		t.Fatalf("setxattr of the refresh attribute refreshed %d times", n)
	}
	buf := make([]byte, 128)
	if n, err := unix.Getxattr(file, xattrRefresh, buf); err != nil || n == 0 {
		t.Fatalf("getxattr refresh = %q, %v", buf[:n], err)
	}
	if got := ref.calls(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("getxattr refresh refreshed %v, want a once", got)
	}
}

// Only the user who mounted and root count as the mount's owner for a
// forced refresh; any other reader does not.
func TestDefect9_08_OnlyTheOwnerAndRootCutABackoffShort(t *testing.T) {
	as := func(uid uint32) context.Context {
		return fuse.NewContext(context.Background(), &fuse.Caller{Owner: fuse.Owner{Uid: uid, Gid: uid}})
	}
	for _, tc := range []struct {
		ctx   context.Context
		owner bool
	}{
		{as(0), true},
		{as(1234), true}, // the mounting user
		{as(1000), false},
		{as(65534), false},
		{context.Background(), false}, // no caller known
	} {
		if got := requester(tc.ctx, 1234); got.Owner != tc.owner {
			c, _ := fuse.FromContext(tc.ctx)
			t.Errorf("caller %+v: %+v, want owner %v", c, got, tc.owner)
		}
	}
}
