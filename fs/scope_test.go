package fs

import (
	"errors"
	iofs "io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// A secret the catalog stops showing, whether Find found it or a listing
// had it, is gone from its path at once, also below a directory that stays
// (as the parent of another secret), and also for a process that holds its
// directory open.
func TestDefect9_04_SecretsLeaveWithTheCatalog(t *testing.T) {
	for _, kc := range []bool{false, true} {
		t.Run(map[bool]string{false: "per-open", true: "kernel-cache"}[kc], func(t *testing.T) {
			s := newFakeStore()
			s.put("a", "a value")
			s.put("a/b", "b value")
			s.put("late/one", "late value")
			late := SecretRef{Name: "late/one", ID: "late/one"}
			c := &fakeCatalog{refs: refs("a", "a/b"), extra: map[string]SecretRef{"late": late, "late/one": late}}
			mnt := mountFS(t, Options{Store: s, Catalog: c, KernelCache: kc})
			for p, want := range map[string]string{"late/one/AWSCURRENT": "late value", "a/AWSCURRENT": "a value"} {
				if got := readFile(t, filepath.Join(mnt, p)); got != want {
					t.Fatalf("%s = %q", p, got)
				}
			}
			dir, err := unix.Open(filepath.Join(mnt, "late/one"), unix.O_RDONLY|unix.O_DIRECTORY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(dir)

			c.mu.Lock()
			c.extra = nil
			c.mu.Unlock()
			c.set(refs("a/b"))
			gone := func(p string) bool {
				_, err := os.Stat(filepath.Join(mnt, p))
				return errors.Is(err, iofs.ErrNotExist)
			}
			eventually(t, "late/one and a's files gone", func() bool {
				return gone("late/one/AWSCURRENT") && gone("late") && gone("a/AWSCURRENT")
			})
			if got := readFile(t, filepath.Join(mnt, "a/b/AWSCURRENT")); got != "b value" {
				t.Fatalf("a/b = %q", got)
			}
			if fd, err := unix.Openat(dir, "AWSCURRENT", unix.O_RDONLY, 0); err != syscall.ENOENT {
				if err == nil {
					unix.Close(fd)
				}
				t.Fatalf("open AWSCURRENT in the held directory: %v, want ENOENT", err)
			}
		})
	}
}
