package mount

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/mount/catalog"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// TestDefect9_03_MaxStaleExpiryFailsReadsAtOnce: in kernel-cache mode, where
// reads are served from the kernel's caches without reaching the daemon, a
// value that turns too stale (--max-stale) while refreshes fail stops being
// served at that moment: the file goes from its value to EIO, with no empty
// read in between, instead of being served until the kernel's attribute
// timeout and then read as empty. The daemon's own pieces (store, expiry) over a
// cache on a fake clock, through a real mount.
func TestDefect9_03_MaxStaleExpiryFailsReadsAtOnce(t *testing.T) {
	testutil.RequireFUSE(t)
	const maxStale = 10 * time.Minute
	log := slog.New(slog.DiscardHandler)
	clock := cachetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	client := cachetest.NewClient()
	client.PutString("db", "v1")
	dir := t.TempDir()

	expiry := newStaleExpiry(maxStale, clock)
	cc := cache.DefaultConfig()
	cc.Clock = clock
	cc.SecretRefreshInterval = time.Minute
	cc.ExceptionRetryDelayMax = time.Second
	cc.Observer = expiry
	c, err := cache.New(client, cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cat := catalog.NewExplicit([]string{"db"}, c, catalog.Options{Interval: time.Minute, RetryMin: time.Second, Clock: clock, Logger: log})
	if err := cat.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cat.Stop)
	st := store{c: c, maxStale: maxStale, clock: clock, expiry: expiry}
	opts := sfs.Options{Store: st, Refresher: st, Catalog: cat, KernelCache: true, Logger: log, Clock: clock}
	srv, err := sfs.Mount(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	p := filepath.Join(dir, "db", "AWSCURRENT")
	if b, err := os.ReadFile(p); err != nil || string(b) != "v1" {
		t.Fatalf("read = %q, %v", b, err)
	}

	// Refreshes fail from now on; within --max-stale the value is served.
	client.FailAlways(cache.OpDescribeSecret, &smithy.GenericAPIError{Code: "ThrottlingException"})
	clock.Advance(2 * time.Minute) // the pinned secret's refresh is due, and fails
	waitFor(t, "the failed refresh", func() bool { in, _ := c.Info("db"); return in.Stale })
	if b, err := os.ReadFile(p); err != nil || string(b) != "v1" {
		t.Fatalf("read while stale within --max-stale = %q, %v", b, err)
	}

	// Past --max-stale since the last successful refresh: EIO at once,
	// and nothing else but the value before it.
	clock.Advance(9 * time.Minute)
	waitFor(t, "EIO once the value is too stale", func() bool {
		b, err := os.ReadFile(p)
		switch {
		case errors.Is(err, syscall.EIO):
			return true
		case err != nil || string(b) != "v1":
			t.Fatalf("read past --max-stale = %q, %v; want the value, then EIO", b, err)
		}
		return false
	})
	if b, err := os.ReadFile(p); !errors.Is(err, syscall.EIO) {
		t.Fatalf("read after the expiry = %q, %v; want EIO", b, err)
	}
}

// TestStaleExpiryTellsTheMomentTheStoreStopsServing: the expiry tells its
// subscribers about a secret whose refreshes fail exactly when the store
// starts answering an error for it (RefreshedAt + --max-stale), not before,
// and only once.
func TestStaleExpiryTellsTheMomentTheStoreStopsServing(t *testing.T) {
	const maxStale = 10 * time.Minute
	clock := cachetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	client := cachetest.NewClient()
	client.PutString("db", "v1")
	exp := newStaleExpiry(maxStale, clock)
	cc := cache.DefaultConfig()
	cc.RefreshAhead = 0 // no background refresh: the only alarm is the expiry's
	cc.Clock = clock
	cc.Observer = exp
	c, err := cache.New(client, cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	st := store{c: c, maxStale: maxStale, clock: clock, expiry: exp}
	changes := make(chan sfs.Change, 10)
	cancel := st.Subscribe(func(ch sfs.Change) { changes <- ch })
	defer cancel()
	ctx := context.Background()
	if _, err := st.Value(ctx, "db", ""); err != nil {
		t.Fatal(err)
	}

	client.FailAlways(cache.OpDescribeSecret, &smithy.GenericAPIError{Code: "ThrottlingException"})
	clock.Advance(time.Minute)
	if err := c.RefreshNow(ctx, "db"); err == nil {
		t.Fatal("the refresh succeeded")
	}
	waitFor(t, "the expiry to wait for its moment", func() bool { return clock.Waiters() == 1 })
	clock.Advance(maxStale - time.Minute - time.Second)
	if v, err := st.Value(ctx, "db", ""); err != nil || !v.Stale {
		t.Fatalf("a second before --max-stale: %v stale=%v, want the stale value", err, v.Stale)
	}
	select {
	case ch := <-changes:
		t.Fatalf("told %+v before the value was too stale", ch)
	default:
	}
	clock.Advance(time.Second)
	if _, err := st.Value(ctx, "db", ""); !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("at --max-stale: %v, want ErrUnavailable", err)
	}
	select {
	case ch := <-changes:
		if ch != (sfs.Change{SecretID: "db"}) {
			t.Fatalf("told %+v, want the secret without a stage", ch)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not told when the value turned too stale")
	}
	// A further failed refresh (once its retry time came) tells nothing new.
	clock.Advance(time.Hour)
	if err := c.RefreshNow(ctx, "db"); err == nil {
		t.Fatal("the refresh succeeded")
	}
	waitFor(t, "the expiry to take the secret up again", func() bool {
		exp.mu.Lock()
		defer exp.mu.Unlock()
		return len(exp.queued) == 0
	})
	cancel() // waits for the expiry's goroutine to finish looking at it
	select {
	case ch := <-changes:
		t.Fatalf("told %+v twice", ch)
	default:
	}
}
