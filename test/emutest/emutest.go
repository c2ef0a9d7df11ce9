// Package emutest gives tests an emulator on loopback with a real SDK client
// pointed at it (static fake credentials, nothing from the environment).
// It is a package of its own, not part of test/testutil, because the
// emulator's own tests import testutil.
package emutest

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/test/emulator"
)

// Fixture is an emulator, its server and a client of it.
type Fixture struct {
	Emu    *emulator.Emulator
	Server *emulator.Server
	Client *secretsmanager.Client
}

// New starts an emulator, closed in t.Cleanup.
func New(t testing.TB) *Fixture {
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
		// faults reach the code under test.
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 3
			so.Retryables = []retry.IsErrorRetryable{retry.RetryableConnectionError{}}
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			so.RateLimiter = ratelimit.None
		})
	}, cache.BufferRequestBodies)
	return &Fixture{Emu: e, Server: srv, Client: client}
}

// Create makes a string secret with tags given as key, value pairs, and
// returns its ARN.
func (f *Fixture) Create(t testing.TB, name, value string, tags ...string) string {
	t.Helper()
	s := emulator.Secret{Name: name, SecretString: &value}
	for i := 0; i+1 < len(tags); i += 2 {
		s.Tags = append(s.Tags, emulator.Tag{Key: tags[i], Value: tags[i+1]})
	}
	arn, err := f.Emu.CreateSecret(s)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return arn
}

// IsolateAWS keeps the developer's AWS settings out of a test.
func IsolateAWS(t testing.TB) {
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
