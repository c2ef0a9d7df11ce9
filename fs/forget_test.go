package fs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// registeredFiles counts the file nodes the mount keeps for change
// notification (a test hook).
func (r *root) registeredFiles() int {
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	nodes := map[*fileNode]bool{}
	for _, fs := range r.bySecret {
		for _, f := range fs {
			nodes[f] = true
		}
	}
	return len(nodes)
}

// TestDefect9_11_FileNodesAreForgottenWithTheKernel: rotations make the
// kernel look files up again (a key file's name is invalidated on every
// change of the default stage) and forget the inodes it dropped; the mount
// keeps only the file nodes the kernel holds, not one more per rotation or
// lookup, and none once the kernel has forgotten them all. In both serving
// modes, with a mapped file beside the default layout.
func TestDefect9_11_FileNodesAreForgottenWithTheKernel(t *testing.T) {
	for _, kernelCache := range []bool{false, true} {
		t.Run(map[bool]string{false: "per-open", true: "kernel-cache"}[kernelCache], func(t *testing.T) {
			s := newFakeStore()
			s.put("db", `{"password":"p0"}`)
			srv, mnt := mountServer(t, Options{Store: s, Catalog: &fakeCatalog{refs: refs("db")}, KernelCache: kernelCache,
				Files: []MappedFile{{Path: "app/db.ini", SecretIDs: []string{"db"}, Render: upper(s, "db")}}})
			files := []string{"db/AWSCURRENT", "db/AWSPREVIOUS", "db/password", "app/db.ini"}
			// A file held open keeps its inode while its name is looked up
			// again (go-fuse answers with the node it has).
			held, err := os.Open(filepath.Join(mnt, "db/password"))
			if err != nil {
				t.Fatal(err)
			}
			const rotations = 40
			for i := 1; i <= rotations; i++ {
				want := fmt.Sprintf("p%d", i)
				s.put("db", `{"password":"`+want+`"}`)
				eventually(t, "the rotated key", func() bool { return readFile(t, filepath.Join(mnt, "db/password")) == want })
				for _, f := range files {
					if _, err := os.Stat(filepath.Join(mnt, f)); err != nil {
						t.Fatal(err)
					}
				}
			}
			held.Close()
			// The writer raises the rotations' events after them, each a
			// write that looks its file up: done before the count.
			eventually(t, "the writer to raise every event", srv.root.writer.q.idle)
			// The kernel holds (at most) the four files; the forgets of
			// the inodes it dropped arrive asynchronously.
			last := -1
			eventually(t, "the registry to hold only what the kernel holds", func() bool {
				n := srv.root.registeredFiles()
				if n != last {
					t.Logf("%d file nodes registered after %d rotations", n, rotations)
					last = n
				}
				return n <= len(files)
			})

			if os.Geteuid() != 0 {
				t.Skip("dropping the kernel's dentries and inodes (drop_caches) needs root")
			}
			testutil.Eventually(t, 30*time.Second, "no file node once the kernel forgot them", func() bool {
				if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
					t.Fatalf("drop_caches: %v", err)
				}
				return srv.root.registeredFiles() == 0
			})
			// And what is looked up again is served and registered again.
			if got := readFile(t, filepath.Join(mnt, "db/password")); got != fmt.Sprintf("p%d", rotations) {
				t.Fatalf("after the forget: %q", got)
			}
			if n := srv.root.registeredFiles(); n != 1 {
				t.Fatalf("%d file nodes registered after one lookup", n)
			}
		})
	}
}
