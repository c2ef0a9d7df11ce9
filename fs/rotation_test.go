package fs

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/secretsfs/secretsfs/test/testutil"
)

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

func testRotation(t *testing.T, kernelCache bool) {
	s := newFakeStore()
	s.put("db", `{"password":"short"}`)
	c := &fakeCatalog{refs: refs("db")}
	mnt := mountFS(t, Options{Store: s, Catalog: c, KernelCache: kernelCache})
	cur := filepath.Join(mnt, "db/AWSCURRENT")
	key := filepath.Join(mnt, "db/password")

	var stBefore syscall.Stat_t
	if err := syscall.Stat(key, &stBefore); err != nil {
		t.Fatal(err)
	}
	if readFile(t, key) != "short" || readFile(t, key) != "short" {
		t.Fatal("first reads")
	}
	held, err := os.Open(cur)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	s.put("db", `{"password":"a much longer password"}`)

	eventually(t, "the new value through the same path", func() bool {
		return readFile(t, key) == "a much longer password"
	})
	var st syscall.Stat_t
	if err := syscall.Stat(key, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != int64(len("a much longer password")) {
		t.Fatalf("stat size %d after the change", st.Size)
	}
	if st.Ino != stBefore.Ino {
		t.Fatalf("inode changed from %d to %d", stBefore.Ino, st.Ino)
	}
	if got := readFile(t, cur); got != `{"password":"a much longer password"}` {
		t.Fatalf("AWSCURRENT = %q", got)
	}
	if got := readFile(t, filepath.Join(mnt, "db/AWSPREVIOUS")); got != `{"password":"short"}` {
		t.Fatalf("AWSPREVIOUS = %q", got)
	}
	if !kernelCache {
		// The handle opened before the change keeps its snapshot.
		b, err := io.ReadAll(held)
		if err != nil || string(b) != `{"password":"short"}` {
			t.Fatalf("held handle read %q, %v", b, err)
		}
	}
}

func TestRotationPerOpen(t *testing.T)     { testRotation(t, false) }
func TestRotationKernelCache(t *testing.T) { testRotation(t, true) }

func TestKernelCacheServesWithoutReachingTheStore(t *testing.T) {
	s := newFakeStore()
	s.put("db", "value")
	mnt := mountFS(t, Options{Store: s, Catalog: &fakeCatalog{refs: refs("db")}, KernelCache: true})
	p := filepath.Join(mnt, "db/AWSCURRENT")
	readFile(t, p)
	s.mu.Lock()
	before := s.reads
	pins := s.pins["db"]
	s.mu.Unlock()
	for i := 0; i < 50; i++ {
		if readFile(t, p) != "value" {
			t.Fatal("wrong value")
		}
	}
	s.mu.Lock()
	after := s.reads
	s.mu.Unlock()
	if after-before > 5 {
		t.Fatalf("50 reads reached the store %d times; the kernel should serve them", after-before)
	}
	if pins != 1 {
		t.Fatalf("secret pinned %d times, want 1", pins)
	}
}

func TestNewStageAppears(t *testing.T) {
	s := newFakeStore()
	vid := s.put("db", "v")
	mnt := mountFS(t, Options{Store: s, Catalog: &fakeCatalog{refs: refs("db")}})
	if got := testutil.ListDir(t, filepath.Join(mnt, "db")); !slices.Equal(got, []string{"AWSCURRENT"}) {
		t.Fatalf("ls = %v", got)
	}
	s.label("db", "AWSPENDING", vid)
	if got := readFile(t, filepath.Join(mnt, "db/AWSPENDING")); got != "v" {
		t.Fatalf("AWSPENDING = %q", got)
	}
}

func TestListingChangesShowInBothModes(t *testing.T) {
	for _, kernelCache := range []bool{false, true} {
		s := newFakeStore()
		s.put("keep", "k")
		s.put("gone/soon", "g")
		s.put("new/one", "n")
		c := &fakeCatalog{refs: refs("keep", "gone/soon")}
		mnt := mountFS(t, Options{Store: s, Catalog: c, KernelCache: kernelCache})
		if got := readFile(t, filepath.Join(mnt, "gone/soon/AWSCURRENT")); got != "g" {
			t.Fatalf("read = %q", got)
		}
		c.set(refs("keep", "new/one"))
		eventually(t, "a removed secret to disappear", func() bool {
			_, err := os.Stat(filepath.Join(mnt, "gone"))
			return os.IsNotExist(err)
		})
		if got := readFile(t, filepath.Join(mnt, "new/one/AWSCURRENT")); got != "n" {
			t.Fatalf("new secret = %q", got)
		}
		if got := testutil.ListDir(t, mnt); !slices.Equal(got, []string{"keep/", "new/"}) {
			t.Fatalf("ls = %v", got)
		}
	}
}
