package mount

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsfs/secretsfs/cache/cachetest"
	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// t0 is the fake clocks' start.
var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// emuFixture is an emulator on loopback with a real SDK client pointed at it
// (static fake credentials, nothing from the environment).
type emuFixture struct {
	emu    *emulator.Emulator
	srv    *emulator.Server
	client *secretsmanager.Client
}

func newEmu(t *testing.T) *emuFixture {
	t.Helper()
	e := emulator.New()
	srv, err := emulator.Start(e, "")
	if err != nil {
		t.Fatalf("start the emulator: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close the emulator: %v", err)
		}
	})
	client := secretsmanager.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDMOUNTTEST", "mount-test", ""),
	}, func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(srv.URL())
		// Retry connection errors only, without waiting, so that injected
		// faults reach the code under test: under the race detector a large
		// ListSecrets page occasionally fails in the HTTP client with "use
		// of closed network connection" although the emulator answered 200
		// (aws-sdk-go-v2 issues 1825, 2737); the daemon's standard retryer
		// retries it, and so do these tests.
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 3
			so.Retryables = []retry.IsErrorRetryable{retry.RetryableConnectionError{}}
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			so.RateLimiter = ratelimit.None
		})
	})
	return &emuFixture{emu: e, srv: srv, client: client}
}

// create makes a string secret with tags given as key, value pairs.
func (f *emuFixture) create(t *testing.T, name, value string, tags ...string) string {
	t.Helper()
	s := emulator.Secret{Name: name, SecretString: &value}
	for i := 0; i+1 < len(tags); i += 2 {
		s.Tags = append(s.Tags, emulator.Tag{Key: tags[i], Value: tags[i+1]})
	}
	arn, err := f.emu.CreateSecret(s)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return arn
}

// isolateAWS keeps the developer's AWS settings out of a test.
func isolateAWS(t *testing.T) {
	t.Helper()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE":                  "/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE":      "/dev/null",
		"AWS_PROFILE":                      "",
		"AWS_DEFAULT_PROFILE":              "",
		"AWS_EC2_METADATA_DISABLED":        "true",
		"AWS_ACCESS_KEY_ID":                "AKIDMOUNTTEST",
		"AWS_SECRET_ACCESS_KEY":            "mount-test",
		"AWS_SESSION_TOKEN":                "",
		"AWS_REGION":                       "us-east-1",
		"AWS_ENDPOINT_URL":                 "",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": "",
		"AWS_ROLE_ARN":                     "",
		"AWS_WEB_IDENTITY_TOKEN_FILE":      "",
	} {
		t.Setenv(k, v)
	}
}

func testOptions(clock *cachetest.Clock) catalogOptions {
	return catalogOptions{
		Interval:    time.Minute,
		MissTTL:     10 * time.Second,
		MaxMisses:   defaultMaxMisses,
		LookupRate:  defaultLookupRate,
		LookupBurst: defaultLookupBurst,
		RetryMin:    time.Second,
		Clock:       clock,
		// Errors show in the test output, to explain a failure.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, what, cond)
}

// advanceWhenWaiting moves the fake clock once a goroutine waits on it.
func advanceWhenWaiting(t *testing.T, clock *cachetest.Clock, d time.Duration) {
	t.Helper()
	waitFor(t, "a goroutine waiting on the clock", func() bool { return clock.Waiters() > 0 })
	clock.Advance(d)
}

func names(refs []sfs.SecretRef) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = r.Name
	}
	return out
}

func startCatalog(t *testing.T, c catalog) {
	t.Helper()
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(c.Stop)
}
