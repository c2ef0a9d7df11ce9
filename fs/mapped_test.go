package fs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// upper renders a secret's default stage in upper case, as a stand-in for
// the daemon's formats and templates.
func upper(s *fakeStore, ids ...string) func(ctx context.Context) (Value, error) {
	return func(ctx context.Context) (Value, error) {
		var out Value
		var parts []string
		for i, id := range ids {
			v, err := s.Value(ctx, id, "")
			if err != nil {
				return Value{}, err
			}
			if i == 0 {
				out = v
			}
			parts = append(parts, strings.ToUpper(string(v.Data)))
		}
		out.Data = []byte(strings.Join(parts, "+"))
		return out, nil
	}
}

func mappedOptions(s *fakeStore, c *fakeCatalog, kernelCache bool) Options {
	return Options{Store: s, Catalog: c, KernelCache: kernelCache, UID: 1, GID: 2, Files: []MappedFile{
		{Path: "app/conf/db.ini", Mode: 0o440, UID: 1000, GID: 1001, SecretIDs: []string{"db", "api"}, Render: upper(s, "db", "api")},
		{Path: "top", SecretIDs: []string{"api"}, Render: upper(s, "api")},
		{Path: "a", SecretIDs: []string{"api"}, Render: upper(s, "api")}, // hides the secret a's directory
		{Path: "broken", SecretIDs: []string{"db"}, Render: func(context.Context) (Value, error) {
			return Value{}, errors.New("template: line 3: no key x")
		}},
		{Path: "gone", SecretIDs: []string{"nope"}, Render: upper(s, "nope")},
	}}
}

func TestMappedFiles(t *testing.T) {
	for _, kc := range []bool{false, true} {
		t.Run(map[bool]string{false: "per-open", true: "kernel-cache"}[kc], func(t *testing.T) {
			s := newFakeStore()
			s.put("db", "db1")
			s.put("api", "api1")
			s.put("a", "x")
			s.put("b", "y")
			c := &fakeCatalog{refs: refs("a", "b")}
			mnt := mountFS(t, mappedOptions(s, c, kc))

			if got := testutil.ListDir(t, mnt); !slices.Equal(got, []string{"a", "app/", "b/", "broken", "gone", "top"}) {
				t.Fatalf("ls = %v", got)
			}
			if got := testutil.ListDir(t, filepath.Join(mnt, "app/conf")); !slices.Equal(got, []string{"db.ini"}) {
				t.Fatalf("ls app/conf = %v", got)
			}
			p := filepath.Join(mnt, "app/conf/db.ini")
			if got := readFile(t, p); got != "DB1+API1" {
				t.Fatalf("db.ini = %q", got)
			}
			if got := readFile(t, filepath.Join(mnt, "a")); got != "API1" {
				t.Fatalf("a = %q", got)
			}
			if got := readFile(t, filepath.Join(mnt, "b/AWSCURRENT")); got != "y" {
				t.Fatalf("the default layout beside: %q", got)
			}
			var st syscall.Stat_t
			if err := syscall.Stat(p, &st); err != nil {
				t.Fatal(err)
			}
			if st.Mode != syscall.S_IFREG|0o440 || st.Uid != 1000 || st.Gid != 1001 || st.Size != 8 {
				t.Fatalf("stat: mode %o uid %d gid %d size %d", st.Mode, st.Uid, st.Gid, st.Size)
			}
			// A mapped file's owner is its own, 0 included; directories
			// are the mount's.
			if err := syscall.Stat(filepath.Join(mnt, "top"), &st); err != nil || st.Mode != syscall.S_IFREG|0o400 || st.Uid != 0 || st.Gid != 0 {
				t.Fatalf("top: %v mode %o owner %d:%d", err, st.Mode, st.Uid, st.Gid)
			}
			for _, dir := range []string{"", "app"} {
				if err := syscall.Stat(filepath.Join(mnt, dir), &st); err != nil || st.Mode != syscall.S_IFDIR|0o500 || st.Uid != 1 || st.Gid != 2 {
					t.Fatalf("dir %q: %v mode %o owner %d:%d", dir, err, st.Mode, st.Uid, st.Gid)
				}
			}
			buf := make([]byte, 256)
			n, err := unix.Getxattr(p, xattrARN, buf)
			if err != nil || !strings.HasSuffix(string(buf[:n]), ":secret:db") {
				t.Fatalf("arn xattr %q, %v", buf[:n], err)
			}

			// A change of either secret re-renders, through the same inode.
			s.put("api", "api-two")
			eventually(t, "the re-rendered file", func() bool { return readFile(t, p) == "DB1+API-TWO" })
			var st2 syscall.Stat_t
			if err := syscall.Stat(p, &st2); err != nil || st2.Ino != st.Ino && st2.Size != 11 {
				t.Fatalf("after the change: %v ino %d (was %d) size %d", err, st2.Ino, st.Ino, st2.Size)
			}
			s.put("db", "db-three")
			eventually(t, "the re-rendered file", func() bool { return readFile(t, p) == "DB-THREE+API-TWO" })

			// Failures stay with their file.
			if _, err := os.ReadFile(filepath.Join(mnt, "broken")); !errors.Is(err, syscall.EIO) {
				t.Fatalf("broken: %v, want EIO", err)
			}
			if _, err := os.ReadFile(filepath.Join(mnt, "gone")); !errors.Is(err, syscall.ENOENT) {
				t.Fatalf("gone: %v, want ENOENT", err)
			}
			if got := readFile(t, filepath.Join(mnt, "top")); got != "API-TWO" {
				t.Fatalf("top = %q", got)
			}
			// Every secret a mapped file uses is kept refreshed.
			s.mu.Lock()
			pins := s.pins["db"] + s.pins["api"] + s.pins["nope"]
			s.mu.Unlock()
			if pins < 3 {
				t.Fatalf("pins %v", s.pins)
			}
		})
	}
}

func TestMappedHandleKeepsItsSnapshot(t *testing.T) {
	s := newFakeStore()
	s.put("db", "one")
	s.put("api", "x")
	mnt := mountFS(t, mappedOptions(s, &fakeCatalog{}, false))
	p := filepath.Join(mnt, "app/conf/db.ini")
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s.put("db", "two, longer")
	eventually(t, "the new content", func() bool { return readFile(t, p) == "TWO, LONGER+X" })
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil || st.Mode&0o777 != 0o440 {
		t.Fatalf("fstat: %v mode %o", err, st.Mode)
	}
	buf := make([]byte, 100)
	n, _ := f.ReadAt(buf, 0)
	if string(buf[:n]) != "ONE+X" {
		t.Fatalf("the handle opened before the change read %q", buf[:n])
	}
}

func TestMappedTreeRefusesBadPaths(t *testing.T) {
	for _, files := range [][]MappedFile{
		{{Path: "../x"}},
		{{Path: "/x"}},
		{{Path: "a"}, {Path: "a"}},
		{{Path: "a"}, {Path: "a/b"}},
		{{Path: "a/b"}, {Path: "a"}},
	} {
		if _, err := newMappedTree(files); err == nil {
			t.Errorf("%v: no error", files)
		}
	}
}

// TestDefect9_19_MappedFileFailuresAreLoggedOncePerCause: a mapped file
// that fails, with ENOENT, EACCES or EIO, is logged with its path, the
// errno and the reason (which names the mapping file's line), once for each
// change of cause however often it is read, and its recovery once too.
func TestDefect9_19_MappedFileFailuresAreLoggedOncePerCause(t *testing.T) {
	for _, kc := range []bool{false, true} {
		t.Run(map[bool]string{false: "per-open", true: "kernel-cache"}[kc], func(t *testing.T) {
			s := newFakeStore()
			s.put("db", "db1")
			var mu sync.Mutex
			cause := error(nil)
			setCause := func(err error) {
				mu.Lock()
				defer mu.Unlock()
				cause = err
			}
			render := upper(s, "db")
			var logs testutil.SyncBuffer
			opts := Options{Store: s, Catalog: &fakeCatalog{}, KernelCache: kc,
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				Files: []MappedFile{{Path: "app/db.ini", SecretIDs: []string{"db"}, Render: func(ctx context.Context) (Value, error) {
					mu.Lock()
					err := cause
					mu.Unlock()
					if err != nil {
						return Value{}, err
					}
					return render(ctx)
				}}}}
			mnt := mountFS(t, opts)
			p := filepath.Join(mnt, "app/db.ini")
			lines := func(substr string) int {
				n := 0
				for l := range strings.Lines(logs.String()) {
					if strings.Contains(l, substr) {
						n++
					}
				}
				return n
			}
			for i, c := range []struct {
				err   error
				errno syscall.Errno
				name  string
			}{
				{fmt.Errorf("m.yaml:3: files[0]: secret %q: %w", "db", iofs.ErrNotExist), syscall.ENOENT, "ENOENT"},
				{fmt.Errorf("m.yaml:3: files[0]: secret %q: %w", "db", iofs.ErrPermission), syscall.EACCES, "EACCES"},
				{errors.New("m.yaml:3: files[0]: m.yaml:5:3: executing ... error calling key: secret \"db\" has no key x"), syscall.EIO, "EIO"},
				{fmt.Errorf("m.yaml:3: files[0]: secret %q: %w", "db", iofs.ErrNotExist), syscall.ENOENT, "ENOENT"},
			} {
				// A change of the secret drops the kernel's caches, which
				// in kernel-cache mode would answer for the file otherwise.
				setCause(c.err)
				s.put("db", fmt.Sprintf("db%d", i))
				want := fmt.Sprintf(`path=app/db.ini errno=%s error=`, c.name)
				eventually(t, fmt.Sprintf("the %s failure of a mapped file logged", c.name), func() bool {
					_, err := os.ReadFile(p)
					return errors.Is(err, c.errno) && lines(want) == 1+boolInt(i == 3)
				})
				for range 5 {
					if _, err := os.ReadFile(p); !errors.Is(err, c.errno) {
						t.Fatalf("read: %v, want %v", err, c.errno)
					}
					var st syscall.Stat_t
					syscall.Stat(p, &st)
				}
				if n := lines(want); n != 1+boolInt(i == 3) {
					t.Fatalf("%s logged %d times:\n%s", c.name, n, logs.String())
				}
				if !strings.Contains(logs.String(), "m.yaml:3: files[0]") {
					t.Fatalf("the log does not name the mapping file's line:\n%s", logs.String())
				}
				if i == 2 {
					if n := lines("serving EIO"); n != 0 {
						t.Fatalf("the EIO is logged twice:\n%s", logs.String())
					}
					setCause(nil) // it serves again
					s.put("db", "db-back")
					eventually(t, "the recovery logged", func() bool {
						b, err := os.ReadFile(p)
						return err == nil && string(b) == "DB-BACK" && lines("mapped file serves again") == 1
					})
				}
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
