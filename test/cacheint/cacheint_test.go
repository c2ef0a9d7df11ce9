// Package cacheint runs the cache's integration scenarios (CACHE-SPEC) through
// the real AWS SDK against the Secrets Manager emulator over loopback.
package cacheint

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
	"github.com/secretsfs/secretsfs/test/emulator"
)

type env struct {
	t     *testing.T
	emu   *emulator.Emulator
	sm    *secretsmanager.Client
	clock *cachetest.Clock
	ctx   context.Context
}

func newEnv(t *testing.T) *env {
	t.Helper()
	emu := emulator.New()
	srv, err := emulator.Start(emu, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", "")))
	if err != nil {
		t.Fatal(err)
	}
	sm := cache.NewClientFromConfig(cfg, "test", func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(srv.URL())
		o.Retryer = aws.NopRetryer{}
	})
	return &env{t: t, emu: emu, sm: sm, clock: cachetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), ctx: context.Background()}
}

// newCache builds a cache over the SDK client, on the fake clock.
func (e *env) newCache(mod func(*cache.Config)) *cache.Cache {
	e.t.Helper()
	cfg := cache.DefaultConfig()
	cfg.RefreshAhead = 0
	cfg.Clock = e.clock
	cfg.Rand = &cachetest.Rand{Fn: func(n int64) int64 { return n - 1 }}
	if mod != nil {
		mod(&cfg)
	}
	c, err := cache.New(e.sm, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

func (e *env) create(name, value string) {
	e.t.Helper()
	if _, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) put(name, value string) {
	e.t.Helper()
	if _, err := e.sm.PutSecretValue(e.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(value)}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) str(c *cache.Cache, id, stage string) string {
	e.t.Helper()
	s, err := c.GetSecretStringWithStage(e.ctx, id, stage)
	if err != nil {
		e.t.Fatalf("read %q %q: %v", id, stage, err)
	}
	return s
}

func (e *env) calls(describe, get int) {
	e.t.Helper()
	if d, g := e.emu.Calls(emulator.OpDescribeSecret), e.emu.Calls(emulator.OpGetSecretValue); d != describe || g != get {
		e.t.Fatalf("emulator saw DescribeSecret %d, GetSecretValue %d; want %d, %d", d, g, describe, get)
	}
}

func TestReadStringTenTimes(t *testing.T) {
	e := newEnv(t)
	e.create("int/str", "hello")
	c := e.newCache(nil)
	for i := 0; i < 10; i++ {
		if got := e.str(c, "int/str", ""); got != "hello" {
			t.Fatalf("read %d = %q", i, got)
		}
	}
	e.calls(1, 1)
}

func TestPutSeenAfterInterval(t *testing.T) {
	e := newEnv(t)
	e.create("int/ttl", "old")
	c := e.newCache(func(cfg *cache.Config) { cfg.SecretRefreshInterval = time.Second })
	e.str(c, "int/ttl", "")
	e.put("int/ttl", "new")
	if got := e.str(c, "int/ttl", ""); got != "old" {
		t.Fatalf("before the interval: %q", got)
	}
	e.clock.Advance(time.Second)
	if got := e.str(c, "int/ttl", ""); got != "new" {
		t.Fatalf("after the interval: %q", got)
	}
	if got := e.str(c, "int/ttl", "AWSPREVIOUS"); got != "old" {
		t.Fatalf("AWSPREVIOUS = %q", got)
	}
	e.calls(2, 2)
}

func TestUpdateSecretSeenAfterInterval(t *testing.T) {
	e := newEnv(t)
	if _, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("int/bin"), SecretBinary: []byte{0, 1, 2}}); err != nil {
		t.Fatal(err)
	}
	c := e.newCache(func(cfg *cache.Config) { cfg.SecretRefreshInterval = time.Second })
	b, err := c.GetSecretBinary(e.ctx, "int/bin")
	if err != nil || string(b) != "\x00\x01\x02" {
		t.Fatalf("binary = %v, %v", b, err)
	}
	if _, err := e.sm.UpdateSecret(e.ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("int/bin"), SecretBinary: []byte{9}}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	if b, err = c.GetSecretBinaryWithStage(e.ctx, "int/bin", "AWSCURRENT"); err != nil || string(b) != "\x09" {
		t.Fatalf("after UpdateSecret: %v, %v", b, err)
	}
	if b, err = c.GetSecretBinaryWithStage(e.ctx, "int/bin", "AWSPREVIOUS"); err != nil || string(b) != "\x00\x01\x02" {
		t.Fatalf("AWSPREVIOUS: %v, %v", b, err)
	}
}

func TestStringVersusBinaryIsNotFound(t *testing.T) {
	e := newEnv(t)
	e.create("int/s", "text")
	if _, err := e.sm.CreateSecret(e.ctx, &secretsmanager.CreateSecretInput{Name: aws.String("int/b"), SecretBinary: []byte("bytes")}); err != nil {
		t.Fatal(err)
	}
	c := e.newCache(nil)
	if _, err := c.GetSecretBinary(e.ctx, "int/s"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("binary of a string secret: %v", err)
	}
	if _, err := c.GetSecretString(e.ctx, "int/b"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("string of a binary secret: %v", err)
	}
}

func TestMissingSecretIsResourceNotFound(t *testing.T) {
	e := newEnv(t)
	c := e.newCache(nil)
	_, err := c.GetSecretString(e.ctx, "int/none")
	var rnf *types.ResourceNotFoundException
	if !errors.Is(err, cache.ErrNotFound) || !errors.As(err, &rnf) {
		t.Fatalf("err = %v, want a ResourceNotFoundException", err)
	}
}

func TestCustomDefaultStage(t *testing.T) {
	e := newEnv(t)
	e.create("int/stage", "first")
	e.put("int/stage", "second")
	c := e.newCache(func(cfg *cache.Config) { cfg.DefaultVersionStage = "AWSPREVIOUS" })
	if got := e.str(c, "int/stage", ""); got != "first" {
		t.Fatalf("default stage AWSPREVIOUS read %q", got)
	}
}

func TestMaxCacheSizeTwoWithThreeSecrets(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"int/a", "int/b", "int/c"} {
		e.create(n, n)
	}
	c := e.newCache(func(cfg *cache.Config) { cfg.MaxCacheSize = 2 })
	for _, n := range []string{"int/a", "int/b", "int/c", "int/a"} {
		if got := e.str(c, n, ""); got != n {
			t.Fatalf("read %s = %q", n, got)
		}
	}
	e.calls(4, 4)
}

// sealHook keeps answers "sealed" in memory: what it stores is not the
// SDK's answer, and it counts its calls.
type sealHook struct {
	mu       sync.Mutex
	puts     int
	gets     int
	sealedOK bool
}

type sealed struct{ answer any }

func (h *sealHook) Put(v any) any {
	h.mu.Lock()
	h.puts++
	h.mu.Unlock()
	return sealed{v}
}

func (h *sealHook) Get(v any) any {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gets++
	s, ok := v.(sealed)
	h.sealedOK = ok
	return s.answer
}

func TestHookRoundTrip(t *testing.T) {
	e := newEnv(t)
	e.create("int/hook", "through the hook")
	h := &sealHook{}
	c := e.newCache(func(cfg *cache.Config) { cfg.Hook = h })
	for i := 0; i < 3; i++ {
		if got := e.str(c, "int/hook", ""); got != "through the hook" {
			t.Fatalf("read = %q", got)
		}
	}
	if h.puts != 2 || h.gets != 6 || !h.sealedOK {
		t.Fatalf("hook: %d puts, %d gets, sealed %v", h.puts, h.gets, h.sealedOK)
	}
}

func TestForcedRefreshAfterPutReturnsNewValueAtOnce(t *testing.T) {
	e := newEnv(t)
	e.create("int/force", "before")
	c := e.newCache(nil)
	e.str(c, "int/force", "")
	e.put("int/force", "after")
	if err := c.RefreshNow(e.ctx, "int/force"); err != nil {
		t.Fatal(err)
	}
	if got := e.str(c, "int/force", ""); got != "after" {
		t.Fatalf("read after RefreshNow = %q", got)
	}
}

func TestOutageServesStaleThenRecovers(t *testing.T) {
	e := newEnv(t)
	e.create("int/outage", "good")
	c := e.newCache(func(cfg *cache.Config) { cfg.SecretRefreshInterval = time.Second })
	e.str(c, "int/outage", "")
	e.emu.InjectFault(emulator.AllOperations, emulator.Fault{ErrorType: "InternalServiceError"})
	e.clock.Advance(time.Second)
	v, err := c.GetValue(e.ctx, "int/outage", "")
	if err != nil || string(v.Data) != "good" || !v.Stale {
		t.Fatalf("during the outage: %q stale=%v err=%v", v.Data, v.Stale, err)
	}
	if _, err := c.GetSecretString(e.ctx, "int/never-cached"); !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("uncached during the outage: %v", err)
	}
	e.emu.ClearFaults()
	e.put("int/outage", "better")
	e.clock.Advance(time.Second)
	if got := e.str(c, "int/outage", ""); got != "better" {
		t.Fatalf("after recovery: %q", got)
	}
}
