package fs

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// TestDefect9_03_KernelCacheNeverServesAnUnreadableSecretAsEmpty: in
// kernel-cache mode, where no OPEN reaches the daemon, a stage file whose
// value cannot be read (GetSecretValue refused while DescribeSecret works)
// fails its lookup with the errno, so stat and every read fail with EACCES
// instead of finding an empty file; other files are unaffected.
func TestDefect9_03_KernelCacheNeverServesAnUnreadableSecretAsEmpty(t *testing.T) {
	s := newFakeStore()
	s.put("db", "value")
	s.put("denied", "x")
	s.setValueErr("denied", fmt.Errorf("GetSecretValue: %w", iofs.ErrPermission))
	mnt := mountFS(t, Options{Store: s, Catalog: &fakeCatalog{refs: refs("db", "denied")}, KernelCache: true})
	dir := filepath.Join(mnt, "denied")
	p := filepath.Join(dir, "AWSCURRENT")

	// Its stages can be listed (a listing also looks the files up).
	if got := testutil.ListDir(t, dir); !slices.Equal(got, []string{"AWSCURRENT"}) {
		t.Fatalf("ls denied = %v", got)
	}
	if st, err := os.Stat(p); !errors.Is(err, syscall.EACCES) {
		t.Errorf("stat = size %v, %v; want EACCES", st, err)
	}
	for i := 0; i < 5; i++ {
		if b, err := os.ReadFile(p); !errors.Is(err, syscall.EACCES) {
			t.Fatalf("read %d = %q, %v; want EACCES, never an empty file", i, b, err)
		}
	}
	if got := readFile(t, filepath.Join(mnt, "db/AWSCURRENT")); got != "value" {
		t.Fatalf("another secret's file: %q", got)
	}

	// Once readable, it reads at once: a refused lookup is not cached.
	s.setValueErr("denied", nil)
	if got := readFile(t, p); got != "x" {
		t.Fatalf("after access was granted: %q", got)
	}
}
