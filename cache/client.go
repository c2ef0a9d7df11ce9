package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

// Client is the part of the Secrets Manager API the cache calls. The method
// signatures are the SDK's own, so *secretsmanager.Client satisfies it; tests
// and other programs can supply their own implementation.
type Client interface {
	DescribeSecret(ctx context.Context, params *secretsmanager.DescribeSecretInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, params *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

var _ Client = (*secretsmanager.Client)(nil)

// NewDefaultClient builds a Secrets Manager client from the AWS SDK's default
// configuration chain (environment, shared config and credentials files,
// container and instance roles), honouring AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_SECRETS_MANAGER. Every request carries
// "secretsfs/<version>" in its User-Agent. optFns adjust the loaded
// configuration, e.g. config.WithRegion.
func NewDefaultClient(ctx context.Context, version string, optFns ...func(*config.LoadOptions) error) (*secretsmanager.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx, optFns...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	return NewClientFromConfig(cfg, version), nil
}

// NewClientFromConfig builds a Secrets Manager client from an AWS
// configuration, adding "secretsfs/<version>" to the User-Agent. Its
// retryer is the SDK's adaptive mode (aws.RetryModeAdaptive): throttling
// answers slow down all the client's calls, not only the throttled one's
// retries (the configured maximum of attempts still applies). optFns may
// change that. Request bodies are buffered (BufferRequestBodies).
func NewClientFromConfig(cfg aws.Config, version string, optFns ...func(*secretsmanager.Options)) *secretsmanager.Client {
	if version == "" {
		version = "unknown"
	}
	ours := func(o *secretsmanager.Options) {
		o.APIOptions = append(o.APIOptions, awsmiddleware.AddUserAgentKeyValue("secretsfs", version))
		o.RetryMode = aws.RetryModeAdaptive
		o.Retryer = retry.NewAdaptiveMode()
	}
	opts := append([]func(*secretsmanager.Options){ours}, optFns...)
	return secretsmanager.NewFromConfig(cfg, append(opts, BufferRequestBodies)...)
}

// BufferRequestBodies makes a client send each request's body from a copy in
// memory that nothing else closes. Without it, an answer read by the SDK can
// fail with "use of closed network connection" although the service answered
// 200: once the answer arrives the SDK closes the request's body stream,
// while net/http's writer may still be reading that stream to see its end;
// the failed read makes the transport close the connection under the answer
// being read (aws-sdk-go-v2 issue 2737). Large answers (listing pages) hit it
// most. Request bodies here are small JSON documents, so the copy is cheap.
// It wraps o.HTTPClient (the SDK's default client when nil); give it last.
func BufferRequestBodies(o *secretsmanager.Options) {
	next := o.HTTPClient
	if next == nil {
		next = awshttp.NewBuildableClient()
	}
	o.HTTPClient = bufferedBodies{next: next}
}

// bufferedBodies is an HTTP client that replaces each request's body by a
// copy in memory before sending it through next.
type bufferedBodies struct {
	next secretsmanager.HTTPClient
}

func (c bufferedBodies) Do(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return c.next.Do(req)
	}
	b, err := io.ReadAll(req.Body) // the SDK closes its stream itself
	if err != nil {
		return nil, fmt.Errorf("read the request body: %w", err)
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	req.ContentLength = int64(len(b))
	return c.next.Do(req)
}

// Domain errors. Errors returned by the cache match one of these with
// errors.Is, and the SDK's typed error (when there is one) stays reachable
// with errors.As.
var (
	// ErrNotFound: the secret, stage, version or value type does not exist,
	// or the secret is scheduled for deletion. It is fs.ErrNotExist.
	ErrNotFound = fs.ErrNotExist
	// ErrAccessDenied: the caller may not read the secret or may not use its
	// KMS key. It is fs.ErrPermission.
	ErrAccessDenied = fs.ErrPermission
	// ErrUnavailable: Secrets Manager could not answer (throttling, network,
	// internal error, timeout). Retrying later may succeed.
	ErrUnavailable = errors.New("secrets manager unavailable")
)

// apiError is an error from a Secrets Manager call, classified into one of
// the domain errors while keeping the SDK's error.
type apiError struct {
	op   string // "DescribeSecret", "GetSecretValue", "ListSecrets"
	id   string // the secret id as the caller gave it; "" for a listing
	kind error  // ErrNotFound, ErrAccessDenied, ErrUnavailable or nil
	err  error  // the SDK's error
}

func (e *apiError) Error() string {
	if e.id == "" { // a call about no one secret, such as ListSecrets
		return fmt.Sprintf("%s: %v", e.op, e.err)
	}
	return fmt.Sprintf("%s %q: %v", e.op, e.id, e.err)
}

func (e *apiError) Unwrap() []error {
	if e.kind == nil {
		return []error{e.err}
	}
	return []error{e.kind, e.err}
}

// translateError turns an error from a Secrets Manager call into a domain
// error. It relies on the SDK's typed exceptions and the service's error
// codes, never on message text.
func translateError(op, id string, err error) error {
	if err == nil {
		return nil
	}
	return &apiError{op: op, id: id, kind: classify(err), err: err}
}

// Error codes the service returns that the SDK does not model as types.
const (
	codeAccessDenied        = "AccessDeniedException"
	codeThrottling          = "ThrottlingException"
	codeTooManyRequests     = "TooManyRequestsException"
	codeRequestLimit        = "RequestLimitExceeded"
	codeServiceUnavailable  = "ServiceUnavailableException"
	codeUnrecognizedClient  = "UnrecognizedClientException"
	codeInvalidSignature    = "InvalidSignatureException"
	codeExpiredToken        = "ExpiredTokenException"
	codeMissingAuthToken    = "MissingAuthenticationTokenException"
	codeIncompleteSignature = "IncompleteSignature"
)

func classify(err error) error {
	var (
		notFound   *types.ResourceNotFoundException
		decryption *types.DecryptionFailure
		internal   *types.InternalServiceError
		netErr     net.Error
		apiErr     smithy.APIError
	)
	switch {
	case errors.As(err, &notFound):
		return ErrNotFound
	case errors.As(err, &decryption):
		return ErrAccessDenied
	case errors.As(err, &internal):
		return ErrUnavailable
	case errors.As(err, &apiErr):
		switch apiErr.ErrorCode() {
		case codeAccessDenied, codeUnrecognizedClient, codeInvalidSignature,
			codeExpiredToken, codeMissingAuthToken, codeIncompleteSignature:
			return ErrAccessDenied
		case codeThrottling, codeTooManyRequests, codeRequestLimit, codeServiceUnavailable:
			return ErrUnavailable
		}
		var status interface{ HTTPStatusCode() int }
		if apiErr.ErrorFault() == smithy.FaultServer ||
			errors.As(err, &status) && status.HTTPStatusCode() >= 500 {
			return ErrUnavailable
		}
		return nil
	case errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded):
		return ErrUnavailable
	}
	return nil
}

// Operation names, as counted in Stats.APICalls and told to the Observer.
const (
	OpDescribeSecret      = "DescribeSecret"
	OpGetSecretValue      = "GetSecretValue"
	OpBatchGetSecretValue = "BatchGetSecretValue"
)

// apiOps are the operations the cache counts.
func apiOps() []string {
	return []string{OpDescribeSecret, OpGetSecretValue, OpBatchGetSecretValue, OpListSecrets}
}

// call makes one Secrets Manager call: fn calls the client with ctx. call
// counts it by op, tells the Observer, and translates its error (id names
// the secret in the error; "" for a call about no one secret). Every call
// the cache makes goes through here, so here the calls as a whole are
// bounded: call first waits for its turn under the pacing that throttling
// answers set (readers queue there, so background work sees them and
// yields), then for a call slot (Config.MaxInFlight; background work,
// marked by backgroundCtx, takes only the background slots), then runs fn
// within Config.FetchTimeout. Background work that a reader comes to wait
// for is promoted (see promotableCtx) and waits as a reader's from then on.
// Waiting ends with ctx: a background call given up because the cache
// closed returns an error matching errClosed.
func (c *Cache) call(ctx context.Context, op, id string, fn func(context.Context) error) error {
	promote, bg := backgroundMark(ctx)
	if err := c.pace(ctx, bg, promote); err != nil {
		return translateError(op, id, err)
	}
	heldBg, err := c.slots.acquire(ctx, bg && isBackground(ctx), promote)
	if err != nil {
		return translateError(op, id, err)
	}
	defer c.slots.release(heldBg)
	epoch := c.pacer.started(c.clock.Now())
	c.stats.called(op)
	start := c.clock.Now()
	cctx, cancel := context.WithTimeout(ctx, c.cfg.FetchTimeout)
	raw := fn(cctx)
	cancel()
	end := c.clock.Now()
	switch {
	case raw == nil:
		c.pacer.succeeded(end)
	case isThrottle(raw):
		c.pacer.throttled(end, epoch)
	}
	err = translateError(op, id, raw)
	c.obs.APICall(op, err, end.Sub(start))
	return err
}

// describe calls DescribeSecret.
func (c *Cache) describe(ctx context.Context, id string) (*secretsmanager.DescribeSecretOutput, error) {
	var out *secretsmanager.DescribeSecretOutput
	err := c.call(ctx, OpDescribeSecret, id, func(ctx context.Context) (err error) {
		out, err = c.client.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
		if err == nil && out == nil {
			err = errors.New("empty answer")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// getValue calls GetSecretValue for one version by id (never by stage, so
// the answer is immutable).
func (c *Cache) getValue(ctx context.Context, id, versionID string) (*secretsmanager.GetSecretValueOutput, error) {
	var out *secretsmanager.GetSecretValueOutput
	err := c.call(ctx, OpGetSecretValue, id, func(ctx context.Context) (err error) {
		out, err = c.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
			SecretId:  aws.String(id),
			VersionId: aws.String(versionID),
		})
		if err == nil && out == nil {
			err = errors.New("empty answer")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
