package telemetry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/test/fakecache"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// TestHealthMaxStale: a secret stale within --max-stale is healthy, beyond
// it (by the injected clock) unservable, and healthy again after recovery;
// a missing secret counts as fine; not mounted is unhealthy. The store
// half (the read turning into EIO) is mount's TestMaxStale.
func TestHealthMaxStale(t *testing.T) {
	c, client, clock := fakecache.New(t)
	client.PutString("db", "v1")
	h := NewHealth(c, 10*time.Minute, clock)
	h.SetMounted(true)
	ctx := context.Background()
	if v, err := c.GetValue(ctx, "db", ""); err != nil || string(v.Data) != "v1" {
		t.Fatalf("read = %q, %v", v.Data, err)
	}
	c.GetValue(ctx, "missing", "")
	if r := h.Check(); !r.Healthy || r.Secrets != 2 {
		t.Fatalf("health = %+v, want healthy with 2 secrets checked (a missing one counts as fine)", r)
	}
	client.FailAlways(cache.OpDescribeSecret, &smithy.GenericAPIError{Code: "ThrottlingException"})
	clock.Advance(5 * time.Minute)
	if v, err := c.GetValue(ctx, "db", ""); err != nil || !v.Stale {
		t.Fatalf("5 minutes stale: %v stale=%v, want the value", err, v.Stale)
	}
	if r := h.Check(); !r.Healthy {
		t.Fatalf("health while stale within --max-stale = %+v", r)
	}
	clock.Advance(6 * time.Minute)
	c.GetValue(ctx, "db", "")
	if r := h.Check(); r.Healthy || len(r.Unservable) != 1 || r.Unservable[0].SecretID != "db" {
		t.Fatalf("health beyond --max-stale = %+v", r)
	}
	client.FailAlways(cache.OpDescribeSecret, nil)
	clock.Advance(2 * time.Second)
	if v, err := c.GetValue(ctx, "db", ""); err != nil || v.Stale {
		t.Fatalf("after recovery: %v stale=%v", err, v.Stale)
	}
	if r := h.Check(); !r.Healthy {
		t.Fatalf("health after recovery = %+v", r)
	}
	h.SetMounted(false)
	if h.Check().Healthy {
		t.Fatal("healthy while not mounted")
	}
}

// One transient error on a name that was only looked up (described, never
// read) must not fail /healthz; a secret that was read and failed is retried
// in the background with the backoff, so health comes back without a
// reader.
func TestDefect9_07_TransientErrorOnALookedUpNameKeepsHealthy(t *testing.T) {
	c, client, clock := fakecache.New(t, func(cfg *cache.Config) {
		cfg.RefreshAhead = time.Minute
		cfg.ExceptionRetryDelayMax = time.Hour
	})
	h := NewHealth(c, 0, clock)
	h.SetMounted(true)
	ctx := context.Background()
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException"}

	client.PutString("new/secret", "v1")
	client.FailNext(cache.OpDescribeSecret, 1, throttled)
	if _, err := c.Describe(ctx, "new/secret"); err == nil {
		t.Fatal("the lookup did not fail; the test proves nothing")
	}
	if _, err := c.Describe(ctx, "typo/secret"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("lookup of a typo = %v, want not found", err)
	}
	if r := h.Check(); !r.Healthy || r.Secrets != 0 {
		t.Fatalf("health after failed lookups = %+v, want healthy with nothing read", r)
	}

	// A read secret that fails counts, until a background retry succeeds.
	client.PutString("db", "v1")
	client.FailNext(cache.OpDescribeSecret, 2, throttled)
	if _, err := c.GetValue(ctx, "db", ""); err == nil {
		t.Fatal("the read did not fail; the test proves nothing")
	}
	if r := h.Check(); r.Healthy || len(r.Unservable) != 1 || r.Unservable[0].SecretID != "db" {
		t.Fatalf("health after a failed read = %+v, want db unservable", r)
	}
	for _, wait := range []time.Duration{time.Second, 2 * time.Second} {
		testutil.Eventually(t, 10*time.Second, "a background retry to be scheduled", func() bool { return clock.Waiters() > 0 })
		clock.Advance(wait)
	}
	testutil.Eventually(t, 10*time.Second, "health to come back without a reader", func() bool { return h.Check().Healthy })
	if r := h.Check(); r.Secrets != 1 {
		t.Fatalf("health = %+v, want only the read secret checked", r)
	}
}
