package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

// bufferHook passes answers through unchanged and keeps the binary
// buffers the cache stores, so a test can look at them after eviction.
type bufferHook struct {
	mu   sync.Mutex
	bufs [][]byte // guarded by mu
}

func (h *bufferHook) Put(answer any) any {
	if out, ok := answer.(*secretsmanager.GetSecretValueOutput); ok && out.SecretBinary != nil {
		h.mu.Lock()
		h.bufs = append(h.bufs, out.SecretBinary)
		h.mu.Unlock()
	}
	return answer
}

func (h *bufferHook) Get(stored any) any { return stored }

func (h *bufferHook) buf(i int) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bufs[i]
}

func zeroed(b []byte) bool { return len(b) > 0 && bytes.Count(b, []byte{0}) == len(b) }

func TestEvictedSecretsBinaryValueIsZeroed(t *testing.T) {
	h := &bufferHook{}
	e := newEnv(t, func(c *Config) { c.MaxCacheSize = 1; c.Hook = h })
	e.client.PutBinary("a", []byte("first secret"))
	e.client.PutBinary("b", []byte("second secret"))
	if _, err := e.c.GetSecretBinary(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	if zeroed(h.buf(0)) {
		t.Fatal("a's buffer is zeroed while a is cached")
	}
	if _, err := e.c.GetSecretBinary(context.Background(), "b"); err != nil {
		t.Fatal(err)
	}
	if !zeroed(h.buf(0)) {
		t.Fatalf("a was evicted but its buffer still holds %q", h.buf(0))
	}
	if zeroed(h.buf(1)) {
		t.Fatal("b's buffer is zeroed while b is cached")
	}
	// a can be read again: it is fetched anew, not served as zeros.
	got, err := e.c.GetSecretBinary(context.Background(), "a")
	if err != nil || string(got) != "first secret" {
		t.Fatalf("a after eviction = %q, %v", got, err)
	}
}

func TestEvictedVersionsBinaryValueIsZeroed(t *testing.T) {
	h := &bufferHook{}
	e := newEnv(t, func(c *Config) { c.Hook = h })
	for i := 0; i <= versionCacheSize; i++ {
		e.client.PutBinary("db", fmt.Appendf(nil, "value-%d", i))
		e.clock.Advance(hour)
		if _, err := e.c.GetSecretBinary(context.Background(), "db"); err != nil {
			t.Fatal(err)
		}
		if i < versionCacheSize && zeroed(h.buf(0)) {
			t.Fatalf("the first version is zeroed after %d more versions, before it left the LRU", i)
		}
	}
	if !zeroed(h.buf(0)) {
		t.Fatalf("the first version left the LRU of %d but its buffer holds %q", versionCacheSize, h.buf(0))
	}
	if zeroed(h.buf(1)) {
		t.Fatal("the second version is zeroed while cached")
	}
}

func TestValueTellsWhenTheSecretWasLastRefreshed(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	v, err := e.c.GetValue(context.Background(), "db", "")
	if err != nil || !v.RefreshedAt.Equal(t0) {
		t.Fatalf("RefreshedAt = %v, %v; want %v", v.RefreshedAt, err, t0)
	}
	e.client.FailAlways(opD, errThrottled())
	e.clock.Advance(hour)
	v, err = e.c.GetValue(context.Background(), "db", "")
	if err != nil || !v.Stale || !v.RefreshedAt.Equal(t0) {
		t.Fatalf("during failures: RefreshedAt %v stale %v err %v; want %v, stale", v.RefreshedAt, v.Stale, err, t0)
	}
	e.client.FailAlways(opD, nil)
	e.clock.Advance(hour)
	v, err = e.c.GetValue(context.Background(), "db", "")
	if want := t0.Add(2 * hour); err != nil || v.Stale || !v.RefreshedAt.Equal(want) {
		t.Fatalf("after recovery: RefreshedAt %v stale %v err %v; want %v", v.RefreshedAt, v.Stale, err, want)
	}
}

type apiCall struct {
	op  string
	err error
}

// recordingObserver keeps what the cache reports.
type recordingObserver struct {
	mu        sync.Mutex
	calls     []apiCall // guarded by mu
	refreshes []error   // guarded by mu
}

func (o *recordingObserver) APICall(op string, err error, took time.Duration) {
	o.mu.Lock()
	o.calls = append(o.calls, apiCall{op, err})
	o.mu.Unlock()
}

func (o *recordingObserver) Refresh(id string, err error, took time.Duration) {
	o.mu.Lock()
	o.refreshes = append(o.refreshes, err)
	o.mu.Unlock()
}

func TestObserverSeesEveryCallAndRefresh(t *testing.T) {
	o := &recordingObserver{}
	e := newEnv(t, func(c *Config) { c.Observer = o })
	e.client.PutString("db", "s1")
	e.str("db")
	e.client.FailAlways(opD, &smithy.GenericAPIError{Code: "ThrottlingException"})
	e.clock.Advance(hour)
	e.str("db")
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.calls) != 3 {
		t.Fatalf("observed %d calls, want 3: %v", len(o.calls), o.calls)
	}
	for i, want := range []struct {
		op  string
		err error
	}{{opD, nil}, {opG, nil}, {opD, ErrUnavailable}} {
		got := o.calls[i]
		if got.op != want.op || (want.err == nil) != (got.err == nil) || want.err != nil && !errors.Is(got.err, want.err) {
			t.Errorf("call %d = %s %v, want %s %v", i, got.op, got.err, want.op, want.err)
		}
	}
	if len(o.refreshes) != 2 || o.refreshes[0] != nil || !errors.Is(o.refreshes[1], ErrUnavailable) {
		t.Fatalf("refreshes = %v, want a success then ErrUnavailable", o.refreshes)
	}
}
