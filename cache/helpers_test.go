package cache

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/secretsfs/secretsfs/cache/cachetest"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	opD = OpDescribeSecret
	opG = OpGetSecretValue
)

type env struct {
	t      *testing.T
	client *cachetest.Client
	clock  *cachetest.Clock
	rnd    *cachetest.Rand
	cfg    Config
	c      *Cache
}

// maxRand makes the jitter pick the top of its range: next refresh = T.
func maxRand(n int64) int64 { return n - 1 }

// newEnv builds a cache over a fake client, fake clock and fake random
// source (jitter at its maximum), with background refresh off unless mod
// turns it on.
func newEnv(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	e := &env{
		t:      t,
		client: cachetest.NewClient(),
		clock:  cachetest.NewClock(t0),
		rnd:    &cachetest.Rand{Fn: maxRand},
	}
	cfg := DefaultConfig()
	cfg.RefreshAhead = 0
	cfg.Clock = e.clock
	cfg.Rand = e.rnd
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(e.client, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	e.cfg, e.c = cfg, c
	return e
}

func (e *env) str(id string) string {
	e.t.Helper()
	s, err := e.c.GetSecretString(context.Background(), id)
	if err != nil {
		e.t.Fatalf("GetSecretString(%q): %v", id, err)
	}
	return s
}

func (e *env) strStage(id, stage string) string {
	e.t.Helper()
	s, err := e.c.GetSecretStringWithStage(context.Background(), id, stage)
	if err != nil {
		e.t.Fatalf("GetSecretStringWithStage(%q, %q): %v", id, stage, err)
	}
	return s
}

// calls asserts the fake client's call counts.
func (e *env) calls(describe, get int) {
	e.t.Helper()
	if d, g := e.client.Calls(opD), e.client.Calls(opG); d != describe || g != get {
		e.t.Fatalf("calls: DescribeSecret %d, GetSecretValue %d; want %d, %d", d, g, describe, get)
	}
}

func (e *env) info(id string) SecretInfo {
	e.t.Helper()
	in, ok := e.c.Info(id)
	if !ok {
		e.t.Fatalf("Info(%q): not cached", id)
	}
	return in
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, what, cond)
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

func errThrottled() error {
	return &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}
}

// newBenchClient holds one string secret "db" and one binary secret "bin"
// of 100 bytes each.
func newBenchClient() *cachetest.Client {
	c := cachetest.NewClient()
	c.PutString("db", strings.Repeat("s", 100))
	c.PutBinary("bin", []byte(strings.Repeat("b", 100)))
	return c
}
