package fs

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// TestIssue12_Batch_ReaddirPrefetchesChildSecrets: listing a directory asks
// the store once for the values of every child directory that is a secret
// (their JSON keys are their files), so that a walk of a cold tree fetches
// siblings in batches.
func TestIssue12_Batch_ReaddirPrefetchesChildSecrets(t *testing.T) {
	s := newFakeStore()
	for _, n := range []string{"app/a", "app/b", "app/c", "app/c/d", "other"} {
		s.put(n, `{"k":"v"}`)
	}
	mnt := mountFS(t, Options{Store: s, Catalog: &fakeCatalog{refs: refs("app/a", "app/b", "app/c", "app/c/d", "other")}})

	testutil.ListDir(t, filepath.Join(mnt, "app"))
	s.mu.Lock()
	got := slices.Clone(s.prefetched)
	s.mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("ls app made %d Prefetch calls %v, want 1", len(got), got)
	}
	slices.Sort(got[0])
	if want := []string{"app/a", "app/b", "app/c"}; !slices.Equal(got[0], want) {
		t.Fatalf("ls app prefetched %v, want the child secrets %v", got[0], want)
	}
	// A secret's directory with no child secret prefetches nothing: its own
	// value is read at once anyway.
	testutil.ListDir(t, filepath.Join(mnt, "app", "a"))
	s.mu.Lock()
	n := len(s.prefetched)
	s.mu.Unlock()
	if n != 1 {
		t.Fatalf("ls app/a made %d more Prefetch calls", n-1)
	}
}
