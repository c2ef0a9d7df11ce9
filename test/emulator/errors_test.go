package emulator

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// TestErrorTypesThroughSDK checks that every error type the issue names
// reaches the SDK as the SDK's typed error (or, for the unmodelled ones,
// as an API error with the right code) with the service's HTTP status.
func TestErrorTypesThroughSDK(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "e", SecretString: str("v")})
	var curID string
	for id := range mustStages(t, f.emu, "e") {
		curID = id
	}
	get := func() error {
		_, err := f.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("e")})
		return err
	}
	faulted := func(code string) func() error {
		return func() error {
			f.emu.InjectFault(OpGetSecretValue, Fault{ErrorType: code, Times: 1})
			return get()
		}
	}
	cases := []struct {
		code   string
		status int
		call   func() error
		typed  func(error) bool
	}{
		{ErrResourceNotFound, 400, func() error {
			_, err := f.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("missing")})
			return err
		}, func(err error) bool { var x *types.ResourceNotFoundException; return errors.As(err, &x) }},
		{ErrInvalidRequest, 400, func() error {
			_, err := f.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("e"), VersionId: aws.String(curID), VersionStage: aws.String(StagePrevious)})
			return err
		}, func(err error) bool { var x *types.InvalidRequestException; return errors.As(err, &x) }},
		{ErrInvalidParameter, 400, func() error {
			_, err := f.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("e"), RecoveryWindowInDays: aws.Int64(1)})
			return err
		}, func(err error) bool { var x *types.InvalidParameterException; return errors.As(err, &x) }},
		{ErrResourceExists, 400, func() error {
			_, err := f.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("e")})
			return err
		}, func(err error) bool { var x *types.ResourceExistsException; return errors.As(err, &x) }},
		{ErrLimitExceeded, 400, faulted(ErrLimitExceeded), func(err error) bool { var x *types.LimitExceededException; return errors.As(err, &x) }},
		{ErrDecryptionFailure, 400, faulted(ErrDecryptionFailure), func(err error) bool { var x *types.DecryptionFailure; return errors.As(err, &x) }},
		{ErrInternalServiceError, 500, faulted(ErrInternalServiceError), func(err error) bool { var x *types.InternalServiceError; return errors.As(err, &x) }},
		{ErrInvalidNextToken, 400, func() error {
			_, err := f.client.ListSecrets(ctx, &secretsmanager.ListSecretsInput{NextToken: aws.String("bogus")})
			return err
		}, func(err error) bool { var x *types.InvalidNextTokenException; return errors.As(err, &x) }},
		{ErrAccessDenied, 400, faulted(ErrAccessDenied), nil},
		{ErrThrottling, 400, faulted(ErrThrottling), nil},
		{ErrValidation, 400, func() error {
			_, err := f.client.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("bad name!")})
			return err
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			err := tc.call()
			wantCode(t, err, tc.code)
			if tc.typed != nil && !tc.typed(err) {
				t.Fatalf("the SDK did not decode %s into its typed error: %T %v", tc.code, err, err)
			}
			if got := httpStatus(t, err); got != tc.status {
				t.Fatalf("HTTP status %d, want %d", got, tc.status)
			}
		})
	}
}

// TestLimitExceededFromRules checks the LimitExceededException the rules
// themselves produce (not injected).
func TestLimitExceededFromRules(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "lim", SecretString: str("v")})
	v, err := f.emu.PutSecretValue("lim", Version{SecretString: str("w"), VersionStages: []string{"A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M", "N", "O", "P", "Q", "R", "S", "T"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.client.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("lim"), VersionStage: aws.String("U"), MoveToVersionId: aws.String(v)})
	var le *types.LimitExceededException
	if !errors.As(err, &le) {
		t.Fatalf("want LimitExceededException, got %v", err)
	}
}

func TestUnsignedRequestRefused(t *testing.T) {
	f := newFixture(t)
	// The SDK with anonymous credentials sends no Authorization header.
	anon := secretsmanager.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}}, func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(f.srv.URL())
		o.Retryer = aws.NopRetryer{}
	})
	_, err := anon.ListSecrets(ctxT(t), &secretsmanager.ListSecretsInput{})
	wantCode(t, err, ErrMissingAuthenticationToken)
	if s := httpStatus(t, err); s != http.StatusBadRequest {
		t.Fatalf("status %d", s)
	}

	req := signedRequest(t, f.srv.URL(), OpListSecrets, "{}")
	req.Header.Set("Authorization", "Bearer abc")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-Errortype") != ErrIncompleteSignature {
		t.Fatalf("a non-SigV4 Authorization header: %d %s", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"))
	}
	if n := f.emu.Calls(OpListSecrets); n != 2 {
		t.Fatalf("refused requests counted %d times, want 2", n)
	}
}

// TestSDKRetriesInjectedInternalErrors shows that a fault with Times lets
// the SDK's own retries succeed, that every attempt is counted, and that
// the attempts after the first are counted as retries.
func TestSDKRetriesInjectedInternalErrors(t *testing.T) {
	f := newFixture(t)
	mustCreate(t, f.emu, Secret{Name: "r", SecretString: str("v")})
	f.emu.InjectFault(OpGetSecretValue, Fault{ErrorType: ErrInternalServiceError, Times: 2})
	retrying := sdkClient(f.srv.URL(), func(o *secretsmanager.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 3
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		})
	})
	out, err := retrying.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("r")})
	if err != nil || aws.ToString(out.SecretString) != "v" {
		t.Fatalf("GetSecretValue after 2 injected 500s: %v", err)
	}
	if n := f.emu.Calls(OpGetSecretValue); n != 3 {
		t.Fatalf("%d attempts counted, want 3", n)
	}
	if r := f.emu.RetryCounts(); r[OpGetSecretValue] != 2 || len(r) != 1 {
		t.Fatalf("retries counted %v, want the 2 attempts after the first GetSecretValue", r)
	}
	if _, err := f.client.GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("r")}); err != nil {
		t.Fatal(err)
	}
	if r := f.emu.RetryCounts(); r[OpGetSecretValue] != 2 {
		t.Fatalf("a first attempt was counted as a retry: %v", r)
	}
	f.emu.ResetCalls()
	if r := f.emu.RetryCounts(); len(r) != 0 {
		t.Fatalf("ResetCalls left retry counts %v", r)
	}
}
