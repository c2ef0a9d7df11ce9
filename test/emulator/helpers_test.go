package emulator

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/secretsfs/secretsfs/cache"
)

// t0 is the fake clock's start in every test.
var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// fixture is an emulator served on loopback with an SDK client pointed at
// it, retries off.
type fixture struct {
	emu    *Emulator
	srv    *Server
	clock  *ManualClock
	client *secretsmanager.Client
}

func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	clock := NewManualClock(t0)
	e := New(append([]Option{WithClock(clock)}, opts...)...)
	srv, err := Start(e, "")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return &fixture{emu: e, srv: srv, clock: clock, client: sdkClient(srv.URL())}
}

// sdkClient returns a real SDK client for an endpoint, with static fake
// credentials and no retries, independent of the environment, sending
// request bodies as the daemon's client does (cache.BufferRequestBodies).
func sdkClient(endpoint string, optFns ...func(*secretsmanager.Options)) *secretsmanager.Client {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEMULATOR", "emulator-secret-key", ""),
	}
	return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.Retryer = aws.NopRetryer{}
		for _, fn := range optFns {
			fn(o)
		}
		cache.BufferRequestBodies(o)
	})
}

func mustStages(t *testing.T, e *Emulator, id string) map[string][]string {
	t.Helper()
	m, err := e.Stages(id)
	if err != nil {
		t.Fatalf("Stages(%q): %v", id, err)
	}
	return m
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantCode fails unless err is an API error with the given code; it
// returns the error for further checks.
func wantCode(t *testing.T, err error, code string) smithy.APIError {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want API error %s, got %v", code, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("want error code %s, got %s (%v)", code, ae.ErrorCode(), err)
	}
	return ae
}

// httpStatus returns the HTTP status of a failed SDK call.
func httpStatus(t *testing.T, err error) int {
	t.Helper()
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) {
		t.Fatalf("error carries no HTTP status: %v", err)
	}
	return re.HTTPStatusCode()
}

func str(s string) *string { return &s }

// mustCreate creates a secret in-process and returns its ARN.
func mustCreate(t *testing.T, e *Emulator, s Secret) string {
	t.Helper()
	arn, err := e.CreateSecret(s)
	if err != nil {
		t.Fatalf("CreateSecret(%q): %v", s.Name, err)
	}
	return arn
}

// signedRequest builds a raw protocol request with a syntactically valid
// SigV4 header, for tests below the SDK.
func signedRequest(t *testing.T, url, op, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if op != "" {
		req.Header.Set("X-Amz-Target", targetPrefix+op)
	}
	req.Header.Set("X-Amz-Date", "20261128T120000Z")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEMULATOR/20261128/us-east-1/secretsmanager/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0123456789abcdef")
	return req
}

// lockedWriter serialises writes to w, for loggers written from several
// goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
