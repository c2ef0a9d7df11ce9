package fs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// TestDefect9_01_RotationWithHeldHandleNeverTruncates: while one handle
// opened before a rotation stays open, every other open reads the whole old
// or the whole new value (never the new one cut to the old length, nor a
// mix), the held handle keeps reading its own version whole, and stat shows
// the size the next open reads; for files of the default layout and mapped
// files, for a value that grows and one that shrinks.
func TestDefect9_01_RotationWithHeldHandleNeverTruncates(t *testing.T) {
	// Old and new differ in their first bytes, so that a cut is seen.
	short, long := "O1", strings.Repeat("N1-", 12) // 2 and 36 bytes, as in the report
	for _, tc := range []struct {
		name     string
		old, new string
		mapped   bool
	}{
		{"grows", short, long, false},
		{"shrinks", long, short, false},
		{"mapped file grows", short, long, true},
		{"mapped file shrinks", long, short, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newFakeStore()
			s.put("db", tc.old)
			opts := Options{Store: s, Catalog: &fakeCatalog{refs: refs("db")}}
			rel := "db/AWSCURRENT"
			if tc.mapped {
				rel = "app/db.ini"
				opts.Files = []MappedFile{{Path: rel, SecretIDs: []string{"db"},
					Render: func(ctx context.Context) (Value, error) { return s.Value(ctx, "db", "") }}}
			}
			p := filepath.Join(mountFS(t, opts), rel)
			if got := readFile(t, p); got != tc.old {
				t.Fatalf("before the rotation: %q", got)
			}
			held, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()
			buf := make([]byte, 4096)
			heldRead := func() string {
				n, err := held.ReadAt(buf, 0)
				if n == 0 && err != nil {
					return "error: " + err.Error()
				}
				return string(buf[:n])
			}
			if got := heldRead(); got != tc.old {
				t.Fatalf("held handle before the rotation: %q", got)
			}

			s.put("db", tc.new)

			// Other readers open and read the file while one of them
			// stats it, which makes go-fuse pass an open handle along.
			var (
				mu   sync.Mutex
				bad  []string
				news int
				wg   sync.WaitGroup
			)
			const readers, reads = 4, 400
			for range readers {
				wg.Go(func() {
					for range reads {
						b, err := os.ReadFile(p)
						got := string(b)
						mu.Lock()
						switch {
						case err != nil:
							bad = append(bad, "error: "+err.Error())
						case got == tc.new:
							news++
						case got != tc.old:
							bad = append(bad, got)
						}
						mu.Unlock()
					}
				})
			}
			wg.Go(func() {
				for range readers * reads {
					var st syscall.Stat_t
					syscall.Stat(p, &st)
				}
			})
			wg.Wait()
			if len(bad) > 0 {
				t.Errorf("%d of %d reads were neither %q nor %q, e.g. %q", len(bad), readers*reads, tc.old, tc.new, bad[0])
			}
			if news == 0 {
				t.Errorf("no read saw the new value")
			}
			if got := heldRead(); got != tc.old {
				t.Errorf("the held handle read %q after the rotation, want %q", got, tc.old)
			}
			var st syscall.Stat_t
			if err := syscall.Stat(p, &st); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, p); got != tc.new || st.Size != int64(len(got)) {
				t.Errorf("stat size %d, then a new open read %q (%d bytes), want %q", st.Size, got, len(got), tc.new)
			}
		})
	}
}
