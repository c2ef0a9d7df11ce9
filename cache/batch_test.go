package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/secretsfs/secretsfs/test/testutil"
)

const (
	opB = OpBatchGetSecretValue
	opL = OpListSecrets
)

// putMany adds n string secrets s00, s01, ... and returns their names.
func (e *env) putMany(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("s%02d", i)
		e.client.PutString(names[i], "value of "+names[i])
	}
	return names
}

// list lists every secret through the cache.
func (e *env) list(f ListFilter) []Listed {
	e.t.Helper()
	got, err := e.c.List(context.Background(), f)
	if err != nil {
		e.t.Fatalf("List: %v", err)
	}
	return got
}

// prefetchHeld puts n secrets, lists them, and prefetches them while the
// client holds its calls, until Release (at the latest at cleanup, before
// Close, which waits for the batches).
func (e *env) prefetchHeld(n int) []string {
	names := e.putMany(n)
	e.list(ListFilter{})
	e.client.Hold()
	e.t.Cleanup(e.client.Release)
	e.c.Prefetch(context.Background(), names)
	return names
}

// valuesCached reports whether the default stage of every id has a value
// cached.
func (e *env) valuesCached(ids []string) bool {
	for _, id := range ids {
		if !e.valueCached(id) {
			return false
		}
	}
	return true
}

// valueCached reports whether the default stage of id has a value cached.
func (e *env) valueCached(id string) bool {
	in, ok := e.c.Info(id)
	if !ok {
		return false
	}
	vid := in.Stages[DefaultVersionStage]
	for _, v := range in.Versions {
		if (vid == "" || v.VersionID == vid) && !v.FetchedAt.IsZero() {
			return true
		}
	}
	return false
}

func TestIssue12_Batch_TwentyPerCall(t *testing.T) {
	e := newEnv(t, nil)
	names := e.putMany(45)
	e.list(ListFilter{}) // metadata from the listing: no DescribeSecret
	e.c.Prefetch(context.Background(), names)
	eventually(t, "45 values prefetched", func() bool { return e.valuesCached(names) })
	if b, g, d := e.client.Calls(opB), e.client.Calls(opG), e.client.Calls(opD); b != 3 || g != 0 || d != 0 {
		t.Fatalf("prefetch of 45 ids: %d BatchGetSecretValue, %d GetSecretValue, %d DescribeSecret; want 3, 0, 0", b, g, d)
	}
	for _, call := range e.client.Log() {
		if call.Op == opB && strings.Count(call.SecretID, ",")+1 > 20 {
			t.Fatalf("a batch of more than 20 ids: %s", call.SecretID)
		}
	}
	for _, n := range names {
		if got := e.str(n); got != "value of "+n {
			t.Fatalf("%s = %q", n, got)
		}
	}
	if b, g, d := e.client.Calls(opB), e.client.Calls(opG), e.client.Calls(opD); b != 3 || g != 0 || d != 0 {
		t.Fatalf("reads after the prefetch made calls: %d batch, %d get, %d describe", b-3, g, d)
	}
	// A second prefetch of what is cached costs nothing.
	e.c.Prefetch(context.Background(), names)
	if b := e.client.Calls(opB); b != 3 {
		t.Fatalf("prefetch of cached values: %d more batch calls", b-3)
	}
}

func TestIssue12_Batch_ColdIDsWithoutMetadata(t *testing.T) {
	e := newEnv(t, nil)
	names := e.putMany(21)
	e.c.Prefetch(context.Background(), names)
	eventually(t, "21 values prefetched", func() bool { return e.valuesCached(names) })
	if b, g := e.client.Calls(opB), e.client.Calls(opG); b != 2 || g != 0 {
		t.Fatalf("%d batch and %d get calls; want 2 and 0", b, g)
	}
	for _, n := range names {
		e.str(n)
	}
	// Reads learn the stages (DescribeSecret) but fetch no value again.
	e.calls(21, 0)
}

func TestIssue12_Batch_PerSecretErrorsIsolated(t *testing.T) {
	e := newEnv(t, nil)
	names := e.putMany(5)
	e.list(ListFilter{})
	e.client.FailSecret("s02", "AccessDeniedException")
	e.client.FailSecret("s03", "DecryptionFailure")
	e.c.Prefetch(context.Background(), names)
	eventually(t, "the batch stored", func() bool {
		in, _ := e.c.Info("s03")
		return e.valueCached("s04") && len(in.Versions) == 1 && in.Versions[0].LastError != nil
	})
	if b, g := e.client.Calls(opB), e.client.Calls(opG); b != 1 || g != 0 {
		t.Fatalf("%d batch and %d get calls; want 1 and 0", b, g)
	}
	for _, n := range []string{"s00", "s01", "s04"} {
		if got := e.str(n); got != "value of "+n {
			t.Fatalf("%s = %q", n, got)
		}
	}
	for _, n := range []string{"s02", "s03"} {
		_, err := e.c.GetSecretString(context.Background(), n)
		if !errors.Is(err, ErrAccessDenied) {
			t.Fatalf("%s: error %v, want access denied", n, err)
		}
		if !strings.Contains(err.Error(), OpBatchGetSecretValue) || !strings.Contains(err.Error(), n) {
			t.Fatalf("%s: error %q names neither the call nor the secret", n, err)
		}
	}
	// The stored errors back off like GetSecretValue errors: no call now.
	if g := e.client.Calls(opG); g != 0 {
		t.Fatalf("reads inside the backoff made %d GetSecretValue calls", g)
	}
}

func TestIssue12_Batch_RefusedFallsBackLoggedOnce(t *testing.T) {
	var logs testutil.SyncBuffer
	e := newEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	names := e.putMany(30)
	e.list(ListFilter{})
	e.client.FailAlways(opB, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized to perform: secretsmanager:BatchGetSecretValue"})
	e.c.Prefetch(context.Background(), names[:20])
	eventually(t, "20 values fetched one by one", func() bool { return e.valuesCached(names[:20]) })
	e.c.Prefetch(context.Background(), names[20:])
	eventually(t, "10 more values fetched one by one", func() bool { return e.valuesCached(names[20:]) })
	if b, g := e.client.Calls(opB), e.client.Calls(opG); b != 1 || g != 30 {
		t.Fatalf("%d batch and %d get calls; want 1 refused batch, then 30 GetSecretValue", b, g)
	}
	if n := strings.Count(logs.String(), "BatchGetSecretValue is refused"); n != 1 {
		t.Fatalf("the refusal was logged %d times, want once; log:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "value of") {
		t.Fatalf("a value reached the log:\n%s", logs.String())
	}
	for _, n := range names {
		if got := e.str(n); got != "value of "+n {
			t.Fatalf("%s = %q", n, got)
		}
	}
}

// batchlessClient hides the fake's BatchGetSecretValue and ListSecrets: a
// Client with only the two required methods.
type batchlessClient struct{ Client }

func TestIssue12_Batch_ClientWithoutBatchOrList(t *testing.T) {
	e := newEnv(t, nil)
	names := e.putMany(3)
	c, err := New(batchlessClient{e.client}, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.List(context.Background(), ListFilter{}); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("List on a client without ListSecrets: %v", err)
	}
	for _, n := range names {
		if _, err := c.Describe(context.Background(), n); err != nil {
			t.Fatal(err)
		}
	}
	c.Prefetch(context.Background(), names)
	eventually(t, "values fetched one by one", func() bool {
		for _, n := range names {
			in, _ := c.Info(n)
			if len(in.Versions) == 0 || in.Versions[0].FetchedAt.IsZero() {
				return false
			}
		}
		return true
	})
	if b := e.client.Calls(opB); b != 0 {
		t.Fatalf("%d batch calls on a client without BatchGetSecretValue", b)
	}
}

// A reader who needs a value Prefetch has queued, before its batch is sent,
// waits for the batch instead of calling GetSecretValue on its own, so that
// a walk of a large cold directory is not outrun by its own reads.
func TestIssue12_Batch_ReadersWaitForTheirBatch(t *testing.T) {
	e := newEnv(t, nil)
	names := e.prefetchHeld(60)
	eventually(t, "two batches under way", func() bool { return e.client.Calls(opB) == prefetchBatches })
	got := make(chan string, 1)
	go func() {
		s, _ := e.c.GetSecretString(context.Background(), names[59]) // in the third batch
		got <- s
	}()
	e.client.Release()
	if s := <-got; s != "value of "+names[59] {
		t.Fatalf("read = %q", s)
	}
	eventually(t, "60 values prefetched", func() bool { return e.valuesCached(names) })
	if b, g := e.client.Calls(opB), e.client.Calls(opG); b != 3 || g != 0 {
		t.Fatalf("%d batch and %d get calls; want 3 and 0", b, g)
	}
}

// A reader who comes to wait for a value a Prefetch batch has claimed
// promotes the batch, as one who joins a background refresh does: from then
// on its calls take a reader's turn instead of yielding to every reader's
// under the throttling pace.
func TestIssue12_Batch_ReaderPromotesTheBatchItWaitsFor(t *testing.T) {
	e := newEnv(t, nil)
	names := e.prefetchHeld(20)
	eventually(t, "the batch's call", func() bool { now, _ := e.client.InFlight(); return now == 1 })
	ent := e.c.entry(names[3])
	ent.mu.Lock()
	ve, _ := ent.versions.peek(ent.stages.get(awsCurrent))
	var w *batchWork
	if ve != nil && ve.busy != nil {
		w = ve.busy.work
	}
	ent.mu.Unlock()
	if w == nil {
		t.Fatal("the value is not claimed by the batch fetching it")
	}
	read := make(chan string, 1)
	go func() { read <- e.str(names[3]) }()
	eventually(t, "the reader to promote the batch it waits for", func() bool {
		select {
		case <-w.promote:
			return true
		default:
			return false
		}
	})
	e.client.Release()
	if got := <-read; got != "value of "+names[3] {
		t.Fatalf("read %q", got)
	}
	if b, g := e.client.Calls(opB), e.client.Calls(opG); b != 1 || g != 0 {
		t.Fatalf("%d batch and %d get calls; want 1 and 0", b, g)
	}
}
