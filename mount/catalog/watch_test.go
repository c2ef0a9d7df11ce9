package catalog

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// watchEnv is a cache over the fake client with n secrets s000, s001, ...
type watchEnv struct {
	client *cachetest.Client
	clock  *cachetest.Clock
	cache  *cache.Cache
	ids    []string
	logs   *testutil.SyncBuffer
}

const watchInterval = time.Hour

func newWatchEnv(t *testing.T, n int) *watchEnv {
	t.Helper()
	w := &watchEnv{client: cachetest.NewClient(), clock: cachetest.NewClock(t0), logs: &testutil.SyncBuffer{}}
	for i := range n {
		id := fmt.Sprintf("s%03d", i)
		w.client.PutString(id, "value "+id)
		w.ids = append(w.ids, id)
	}
	cfg := cache.DefaultConfig()
	cfg.Clock = w.clock
	cfg.SecretRefreshInterval = watchInterval
	cfg.Rand = &cachetest.Rand{} // the earliest expiry the jitter allows
	c, err := cache.New(w.client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w.cache = c
	return w
}

func (w *watchEnv) start(t *testing.T, ids []string) *Watcher {
	t.Helper()
	opts := testOptions(w.clock)
	opts.Logger = slog.New(slog.NewTextHandler(w.logs, nil))
	wt := NewWatcher(ids, w.cache, w.cache, watchInterval, opts)
	if err := wt.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wt.Stop)
	return wt
}

func (w *watchEnv) readAll(t *testing.T) {
	t.Helper()
	for _, id := range w.ids {
		if s, err := w.cache.GetSecretString(context.Background(), id); err != nil || s != "value "+id {
			t.Fatalf("read %s = %q, %v", id, s, err)
		}
	}
}

func TestIssue12_Listing_ExplicitHundredIDs(t *testing.T) {
	w := newWatchEnv(t, 100)
	w.client.PutString("s0001", "a name that s000 is a prefix of")
	w.start(t, w.ids)
	if l := w.client.Calls("ListSecrets"); l != 10 {
		t.Fatalf("cold start: %d ListSecrets calls, want 10 (10 names a call)", l)
	}
	waitFor(t, "the prefetch of 100 values", func() bool { return w.client.Calls("BatchGetSecretValue") == 5 })
	w.readAll(t)
	if d, g, b := w.client.Calls("DescribeSecret"), w.client.Calls("GetSecretValue"), w.client.Calls("BatchGetSecretValue"); d != 0 || g != 0 || b != 5 {
		t.Fatalf("cold start and reads: %d DescribeSecret, %d GetSecretValue, %d BatchGetSecretValue; want 0, 0, 5", d, g, b)
	}
	if _, ok := w.cache.Info("s0001"); ok {
		t.Fatal("a prefix match of a name filter was kept")
	}
	// Three refresh intervals: one pass each, a call every interval/10,
	// the secrets read all along, and not one DescribeSecret.
	for i := range 30 {
		advanceWhenWaiting(t, w.clock, watchInterval/10)
		waitFor(t, "the next listing", func() bool { return w.client.Calls("ListSecrets") == 11+i })
		w.readAll(t)
	}
	if d := w.client.Calls("DescribeSecret"); d != 0 {
		t.Fatalf("%d DescribeSecret calls in three intervals of passes", d)
	}
	// A rotation shows within one pass, for one value call.
	v2 := w.client.PutString("s042", "rotated")
	for i := range 10 {
		advanceWhenWaiting(t, w.clock, watchInterval/10)
		waitFor(t, "the next listing", func() bool { return w.client.Calls("ListSecrets") == 41+i })
	}
	waitFor(t, "the rotation seen", func() bool {
		in, _ := w.cache.Info("s042")
		return in.Stages["AWSCURRENT"] == v2
	})
	if s, err := w.cache.GetSecretString(context.Background(), "s042"); err != nil || s != "rotated" {
		t.Fatalf("s042 after the pass = %q, %v", s, err)
	}
	if d, g := w.client.Calls("DescribeSecret"), w.client.Calls("GetSecretValue"); d != 0 || g != 1 {
		t.Fatalf("the rotation cost %d DescribeSecret and %d GetSecretValue; want 0 and 1", d, g)
	}
	for _, c := range w.client.Log() {
		if c.Op == "ListSecrets" && strings.Count(c.SecretID, "|") > 9 {
			t.Fatalf("a name filter of more than 10 values: %s", c.SecretID)
		}
	}
}

func TestIssue12_Listing_ExplicitFallsBackToDescribe(t *testing.T) {
	w := newWatchEnv(t, 3)
	arn := w.client.ARN("s001")
	w.client.FailAlways("ListSecrets", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform: secretsmanager:ListSecrets"})
	w.start(t, []string{"s000", arn, "s002"})
	if l := w.client.Calls("ListSecrets"); l != 1 {
		t.Fatalf("%d ListSecrets calls once refused, want 1", l)
	}
	for _, id := range []string{"s000", arn, "s002"} {
		if _, err := w.cache.GetSecretString(context.Background(), id); err != nil {
			t.Fatalf("read %s: %v", id, err)
		}
	}
	if d := w.client.Calls("DescribeSecret"); d != 3 {
		t.Fatalf("%d DescribeSecret calls, want 3 (one per id)", d)
	}
	w.clock.Advance(2 * watchInterval)
	if l := w.client.Calls("ListSecrets"); l != 1 {
		t.Fatalf("ListSecrets called again after it was refused: %d calls", l)
	}
	if n := strings.Count(w.logs.String(), "ListSecrets is refused"); n != 1 {
		t.Fatalf("the refusal was logged %d times, want once:\n%s", n, w.logs.String())
	}
}

func TestIssue12_Listing_ARNsKeepDescribe(t *testing.T) {
	w := newWatchEnv(t, 2)
	arn := w.client.ARN("s001")
	w.start(t, []string{"s000", arn})
	for _, c := range w.client.Log() {
		if c.Op == "ListSecrets" && strings.Contains(c.SecretID, "arn:") {
			t.Fatalf("an ARN went into a name filter: %s", c.SecretID)
		}
	}
	if l := w.client.Calls("ListSecrets"); l != 1 {
		t.Fatalf("%d ListSecrets calls, want 1 (s000 only)", l)
	}
}
