package cache

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

// errorServer answers every Secrets Manager call with the service's error
// body for the code and status chosen per test, and records User-Agents.
type errorServer struct {
	mu     sync.Mutex
	code   string
	status int
	agents []string
}

func (s *errorServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	code, status := s.code, s.status
	s.agents = append(s.agents, r.Header.Get("User-Agent"))
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", "11111111-2222-3333-4444-555555555555")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": "the service's message"})
}

func (s *errorServer) set(code string, status int) {
	s.mu.Lock()
	s.code, s.status = code, status
	s.mu.Unlock()
}

// sdkClient is a real *secretsmanager.Client talking to url with static
// credentials and no retries.
func sdkClient(t *testing.T, url string) *secretsmanager.Client {
	t.Helper()
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", "")),
	)
	if err != nil {
		t.Fatal(err)
	}
	return NewClientFromConfig(cfg, "1.2.3", func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(url)
		o.Retryer = aws.NopRetryer{}
	})
}

func TestErrorTranslationWithTheRealSDK(t *testing.T) {
	srv := &errorServer{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	client := sdkClient(t, ts.URL)

	type check func(t *testing.T, err error)
	as := func(target any) check {
		return func(t *testing.T, err error) {
			if !errors.As(err, target) {
				t.Errorf("the SDK's %T is not reachable from %v", target, err)
			}
		}
	}
	code := func(want string) check {
		return func(t *testing.T, err error) {
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != want {
				t.Errorf("error code of %v is not %s", err, want)
			}
		}
	}
	cases := []struct {
		code   string
		status int
		kind   error // nil: none of the domain errors
		check  check
	}{
		{"ResourceNotFoundException", 400, ErrNotFound, as(new(*types.ResourceNotFoundException))},
		{"DecryptionFailure", 400, ErrAccessDenied, as(new(*types.DecryptionFailure))},
		{"AccessDeniedException", 400, ErrAccessDenied, code("AccessDeniedException")},
		{"UnrecognizedClientException", 400, ErrAccessDenied, code("UnrecognizedClientException")},
		{"ThrottlingException", 400, ErrUnavailable, code("ThrottlingException")},
		{"InternalServiceError", 500, ErrUnavailable, as(new(*types.InternalServiceError))},
		{"ServiceUnavailableException", 503, ErrUnavailable, code("ServiceUnavailableException")},
		{"InvalidRequestException", 400, nil, as(new(*types.InvalidRequestException))},
		{"InvalidParameterException", 400, nil, as(new(*types.InvalidParameterException))},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			srv.set(tc.code, tc.status)
			_, err := client.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("prod/db")})
			if err == nil {
				t.Fatal("no error")
			}
			got := translateError(OpDescribeSecret, "prod/db", err)
			for _, k := range []error{ErrNotFound, ErrAccessDenied, ErrUnavailable} {
				if is := errors.Is(got, k); is != (k == tc.kind) {
					t.Errorf("errors.Is(%v, %v) = %v", got, k, is)
				}
			}
			tc.check(t, got)
			if !strings.Contains(got.Error(), `DescribeSecret "prod/db"`) {
				t.Errorf("error text lacks the operation and id: %v", got)
			}
		})
	}
	srv.mu.Lock()
	agents := srv.agents
	srv.mu.Unlock()
	if len(agents) == 0 || !strings.Contains(agents[0], "secretsfs/1.2.3") {
		t.Fatalf("User-Agent %q lacks secretsfs/1.2.3", agents)
	}
}

func TestCacheOverRealSDKErrors(t *testing.T) {
	srv := &errorServer{}
	srv.set("AccessDeniedException", 400)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	c, err := New(sdkClient(t, ts.URL), DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.GetSecretString(context.Background(), "prod/db")
	if !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("err = %v, want access denied", err)
	}
}

func TestUnreachableEndpointIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	client := sdkClient(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("x")})
	if got := translateError(OpGetSecretValue, "x", err); !errors.Is(got, ErrUnavailable) {
		t.Fatalf("connection refused: %v", got)
	}
}

func TestNewDefaultClientUsesTheEnvironment(t *testing.T) {
	srv := &errorServer{}
	srv.set("ResourceNotFoundException", 400)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	for k, v := range map[string]string{
		"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ACCESS_KEY_ID": "AKIDTEST",
		"AWS_SECRET_ACCESS_KEY": "SECRETTEST", "AWS_REGION": "eu-west-1",
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": ts.URL, "AWS_MAX_ATTEMPTS": "1",
	} {
		t.Setenv(k, v)
	}
	client, err := NewDefaultClient(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String("x")})
	var rnf *types.ResourceNotFoundException
	if !errors.As(err, &rnf) {
		t.Fatalf("err = %v; the client did not reach the endpoint from the environment", err)
	}
	if a := srv.agents[0]; !strings.Contains(a, "secretsfs/unknown") {
		t.Fatalf("User-Agent %q", a)
	}
}
