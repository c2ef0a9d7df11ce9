package fs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/test/testutil"
)

func layoutStore() (*fakeStore, *fakeCatalog) {
	s := newFakeStore()
	s.put("a", `{"username":"app","port":5432,"obj":{"x": [1, 2]},"AWSCURRENT":"hidden by the stage","b":"hidden by the child","n":null,"..":"bad","":"bad"}`)
	s.put("a/b", "plain text")
	s.put("bin", "\x00\x01\xff")
	vid := s.put("tagged", "blue value")
	s.label("tagged", "BLUE", vid)
	return s, &fakeCatalog{refs: refs("a", "a/b", "bin", "tagged", "bad//name")}
}

func TestLayout(t *testing.T) {
	s, c := layoutStore()
	mnt := mountFS(t, Options{Store: s, Catalog: c, UID: 1234, GID: 5678})

	for dir, want := range map[string][]string{
		"":       {"a/", "bin/", "tagged/"},
		"a":      {"AWSCURRENT", "b/", "n", "obj", "port", "username"},
		"a/b":    {"AWSCURRENT"},
		"bin":    {"AWSCURRENT"},
		"tagged": {"AWSCURRENT", "BLUE"},
	} {
		if got := testutil.ListDir(t, filepath.Join(mnt, dir)); !slices.Equal(got, want) {
			t.Errorf("ls %q = %v, want %v", dir, got, want)
		}
	}
	for file, want := range map[string]string{
		"a/username":     "app",
		"a/port":         "5432",
		"a/obj":          `{"x":[1,2]}`,
		"a/n":            "null",
		"a/AWSCURRENT":   `{"username":"app","port":5432,"obj":{"x": [1, 2]},"AWSCURRENT":"hidden by the stage","b":"hidden by the child","n":null,"..":"bad","":"bad"}`,
		"a/b/AWSCURRENT": "plain text",
		"bin/AWSCURRENT": "\x00\x01\xff",
		"tagged/BLUE":    "blue value",
	} {
		got, err := os.ReadFile(filepath.Join(mnt, file))
		if err != nil || string(got) != want {
			t.Errorf("cat %s = %q, %v; want %q", file, got, err, want)
		}
		st, err := os.Stat(filepath.Join(mnt, file))
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		if st.Size() != int64(len(want)) || st.Mode() != 0o400 || sys.Uid != 1234 || sys.Gid != 5678 ||
			st.ModTime().Unix() != 1767323045 {
			t.Errorf("stat %s: size %d mode %v owner %d:%d mtime %v", file, st.Size(), st.Mode(), sys.Uid, sys.Gid, st.ModTime())
		}
	}
	st, err := os.Stat(filepath.Join(mnt, "a"))
	if err != nil || st.Mode() != iofs.ModeDir|0o500 {
		t.Errorf("stat a: %v %v", st.Mode(), err)
	}
	for _, missing := range []string{"nope", "a/AWSPENDING", "a/nokey", "bad", "a/b/c"} {
		if _, err := os.Stat(filepath.Join(mnt, missing)); !errors.Is(err, iofs.ErrNotExist) {
			t.Errorf("stat %s: %v, want ENOENT", missing, err)
		}
	}
}

func TestFindAddsSecretUnknownToTheListing(t *testing.T) {
	s, c := layoutStore()
	s.put("late/one", "late value")
	c.extra = map[string]SecretRef{"late": {Name: "late/one", ID: "late/one"}, "late/one": {Name: "late/one", ID: "late/one"}}
	mnt := mountFS(t, Options{Store: s, Catalog: c})
	got, err := os.ReadFile(filepath.Join(mnt, "late/one/AWSCURRENT"))
	if err != nil || string(got) != "late value" {
		t.Fatalf("read = %q, %v", got, err)
	}
}

func TestXattrs(t *testing.T) {
	s, c := layoutStore()
	mnt := mountFS(t, Options{Store: s, Catalog: c})
	p := filepath.Join(mnt, "a/username")
	want := map[string]string{
		xattrVersionID: "a-v1",
		xattrStages:    "AWSCURRENT",
		xattrARN:       "arn:aws:secretsmanager:us-east-1:1:secret:a",
		xattrFetchedAt: "2026-01-02T03:04:06Z",
		xattrStale:     "false",
	}
	buf := make([]byte, 256)
	for name, w := range want {
		n, err := unix.Getxattr(p, name, buf)
		if err != nil || string(buf[:n]) != w {
			t.Errorf("getxattr %s = %q, %v; want %q", name, buf[:max(n, 0)], err, w)
		}
	}
	if listed := testutil.ListXattr(t, p); len(listed) != 5 {
		t.Errorf("listxattr = %v", listed)
	}
	if _, err := unix.Getxattr(p, "user.other", buf); !errors.Is(err, unix.ENODATA) {
		t.Errorf("unknown xattr: %v", err)
	}
}

func TestErrnoPerFile(t *testing.T) {
	s, c := layoutStore()
	s.put("denied", "x")
	s.put("down", "x")
	c.refs = append(c.refs, refs("denied", "down")...)
	mnt := mountFS(t, Options{Store: s, Catalog: c})
	// Cache the entries first, then fail.
	os.Stat(filepath.Join(mnt, "denied/AWSCURRENT"))
	s.setErr("denied", fmt.Errorf("GetSecretValue: %w", iofs.ErrPermission))
	s.setErr("down", errUnavailable)
	cases := map[string]error{
		"denied/AWSCURRENT": syscall.EACCES,
		"down/AWSCURRENT":   syscall.EIO,
		"nope/AWSCURRENT":   syscall.ENOENT,
	}
	for file, want := range cases {
		_, err := os.ReadFile(filepath.Join(mnt, file))
		if !errors.Is(err, want) {
			t.Errorf("read %s: %v, want %v", file, err, want)
		}
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "a/username")); err != nil || string(got) != "app" {
		t.Errorf("another secret's file: %q, %v", got, err)
	}
	for _, flag := range []int{os.O_WRONLY, os.O_RDWR, os.O_RDONLY | os.O_TRUNC} {
		if _, err := os.OpenFile(filepath.Join(mnt, "a/username"), flag, 0); !errors.Is(err, syscall.EROFS) {
			t.Errorf("open flag %#x: %v, want EROFS", flag, err)
		}
	}
	if err := os.WriteFile(filepath.Join(mnt, "newfile"), nil, 0o600); !errors.Is(err, syscall.EROFS) {
		t.Errorf("create: %v, want EROFS", err)
	}
	if err := os.Remove(filepath.Join(mnt, "a/username")); !errors.Is(err, syscall.EROFS) {
		t.Errorf("unlink: %v, want EROFS", err)
	}
}

func TestToErrno(t *testing.T) {
	r := newRoot(Options{})
	live := context.Background()
	interrupted, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		ctx  context.Context
		err  error
		want syscall.Errno
	}{
		{live, nil, 0},
		{live, fmt.Errorf("x: %w", iofs.ErrNotExist), syscall.ENOENT},
		{live, syscall.ENOENT, syscall.ENOENT},
		{live, fmt.Errorf("x: %w", iofs.ErrPermission), syscall.EACCES},
		{interrupted, fmt.Errorf("read: %w", context.Canceled), syscall.EINTR},
		// A call's own timeout is the service's failure, not the caller's.
		{live, fmt.Errorf("x: %w", context.DeadlineExceeded), syscall.EIO},
		{live, context.Canceled, syscall.EIO},
		{live, errUnavailable, syscall.EIO},
		{interrupted, errUnavailable, syscall.EIO},
	}
	for _, tc := range cases {
		if got := r.toErrno(tc.ctx, tc.err); got != tc.want {
			t.Errorf("toErrno(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestMountNeedsAClock: a mount without a clock is refused, naming the
// field, before anything is mounted.
func TestMountNeedsAClock(t *testing.T) {
	s, c := layoutStore()
	srv, err := Mount(t.TempDir(), Options{Store: s, Catalog: c})
	if err == nil {
		srv.Unmount()
		t.Fatal("mounted without a clock")
	}
	if !strings.Contains(err.Error(), "Options.Clock") {
		t.Fatalf("error %q does not name Options.Clock", err)
	}
}
