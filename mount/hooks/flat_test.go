package hooks

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/cache"
	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/mount/mapping"
	"github.com/secretsfs/secretsfs/test/fakecache"
)

// countingCatalog is a staticCatalog that counts the calls of List.
type countingCatalog struct {
	staticCatalog
	lists atomic.Int64
}

func (c *countingCatalog) List() []sfs.SecretRef {
	c.lists.Add(1)
	return c.staticCatalog.List()
}

// TestIssue12_Flat_AChangeDoesNotListTheCatalog: with 10 000 secrets shown,
// a change of one secret finds its directory by asking the catalog about
// that secret (RefsOf), not by listing every secret: List is called only
// when the catalog changes (to pin what it shows), never per change.
func TestIssue12_Flat_AChangeDoesNotListTheCatalog(t *testing.T) {
	c, client, clock := fakecache.New(t)
	ids := make(staticCatalog, 10_000)
	for i := range ids {
		ids[i] = fmt.Sprintf("app/s%05d", i)
	}
	const id = "app/s00042"
	v1 := client.PutString(id, "v1")
	if _, err := c.GetValue(context.Background(), id, ""); err != nil {
		t.Fatal(err)
	}
	cat := &countingCatalog{staticCatalog: ids}
	mnt := t.TempDir()
	hook := &mapping.OnChange{Command: []string{"true"}, Debounce: time.Second}
	rec := &hookRecorder{}
	r := startRunner(t, Config{MountDir: mnt, Hook: hook, Shown: cat}, c, clock, rec.exec)
	atStart := cat.lists.Load()

	for i := range 20 {
		v := client.PutString(id, fmt.Sprintf("v%d", i+2))
		r.handle(cache.Change{SecretID: id, Stage: "AWSCURRENT", OldVersionID: v1, NewVersionID: v})
		v1 = v
	}
	if got := r.pendingFiles(hook); got != 1 {
		t.Fatalf("%d files pending, want %s's AWSCURRENT", got, id)
	}
	clock.Advance(time.Second)
	waitFor(t, "the run", func() bool { started, _, _ := rec.state(); return started > 0 && r.idle() })
	if p, _ := rec.env(0, "SECRETSFS_PATH"); p != filepath.Join(mnt, id, "AWSCURRENT") {
		t.Fatalf("SECRETSFS_PATH = %q", p)
	}
	if n := cat.lists.Load() - atStart; n != 0 {
		t.Fatalf("20 changes of one secret listed the catalog of 10 000 secrets %d times, want 0", n)
	}
}
