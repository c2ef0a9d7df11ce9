package emulator

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Defaults of the options.
const (
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "123456789012"
)

// maxBodyBytes bounds a request body. The largest valid request (a 65,536
// byte binary value, base64-encoded, plus the other members) is far below.
const maxBodyBytes = 1 << 20

// targetPrefix starts the X-Amz-Target header of every Secrets Manager call.
const targetPrefix = "secretsmanager."

// Emulator is an in-memory Secrets Manager. It is an http.Handler that
// answers the AWS JSON 1.1 protocol; serve it with [Start] or any
// http.Server. It is safe for concurrent use.
type Emulator struct {
	clock   Clock
	log     *slog.Logger
	region  string
	account string
	random  io.Reader

	mu        sync.Mutex
	secrets   map[string]*secret // by name; guarded by mu
	scheduled map[string]*secret // the secrets scheduled for deletion, by name; guarded by mu
	seq       uint64             // creation counter, orders secrets and versions; guarded by mu
	// gen counts the changes that may alter a listing; guarded by mu.
	gen uint64
	// listings are the selections of recent listings, by query, valid
	// while gen is theirs; guarded by mu.
	listings map[listingQuery]listing
	// listingBuilds counts the selections built (not taken from
	// listings); guarded by mu.
	listingBuilds int
	// iam is the IAM model; nil when none is set. Guarded by mu.
	iam *iamModel
	// sessions are the temporary credentials made by STS and the Pod
	// Identity endpoint, by access key id; guarded by mu.
	sessions map[string]*session

	ctlMu   sync.Mutex
	calls   map[string]int // by operation; guarded by ctlMu
	retries map[string]int // the calls that were SDK retries, by operation; guarded by ctlMu
	// byIdentity counts calls by caller, then operation; guarded by ctlMu.
	byIdentity map[string]map[string]int
	bySecret   map[opSecret]int      // the calls naming a secret, by operation and secret; guarded by ctlMu
	faults     map[string][]*pending // by operation or AllOperations; guarded by ctlMu
	changed    chan struct{}         // closed and replaced when calls change; guarded by ctlMu
}

// Option configures an Emulator.
type Option func(*Emulator)

// WithClock makes the emulator take every date from c instead of the system
// clock.
func WithClock(c Clock) Option { return func(e *Emulator) { e.clock = c } }

// WithLogger makes the emulator log each request (operation, status, error
// type; never a value) at debug level and its warnings to l. The default
// discards everything.
func WithLogger(l *slog.Logger) Option { return func(e *Emulator) { e.log = l } }

// WithRegion sets the region written into ARNs (default "us-east-1").
func WithRegion(region string) Option { return func(e *Emulator) { e.region = region } }

// WithAccountID sets the account id written into ARNs (default
// "123456789012").
func WithAccountID(id string) Option { return func(e *Emulator) { e.account = id } }

// WithRandom makes the emulator draw ARN suffixes, version ids and rotated
// passwords from r instead of crypto/rand, e.g. for reproducible demos.
func WithRandom(r io.Reader) Option { return func(e *Emulator) { e.random = r } }

// New returns an empty emulator.
func New(opts ...Option) *Emulator {
	e := &Emulator{
		clock:      systemClock{},
		log:        slog.New(slog.DiscardHandler),
		region:     DefaultRegion,
		account:    DefaultAccountID,
		random:     rand.Reader,
		secrets:    make(map[string]*secret),
		scheduled:  make(map[string]*secret),
		listings:   make(map[listingQuery]listing),
		sessions:   make(map[string]*session),
		calls:      make(map[string]int),
		retries:    make(map[string]int),
		byIdentity: make(map[string]map[string]int),
		bySecret:   make(map[opSecret]int),
		faults:     make(map[string][]*pending),
		changed:    make(chan struct{}),
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Region returns the region the emulator writes into ARNs.
func (e *Emulator) Region() string { return e.region }

// AccountID returns the account id the emulator writes into ARNs.
func (e *Emulator) AccountID() string { return e.account }

// ServeHTTP answers one request: Secrets Manager's (AWS JSON 1.1 with an
// X-Amz-Target), STS's (a form-encoded query POST), or the Pod Identity
// agent's (GET PodIdentityPath).
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == PodIdentityPath {
		e.servePodIdentity(w, r)
		return
	}
	if isQueryRequest(r) {
		e.serveSTS(w, r)
		return
	}
	target := r.Header.Get("X-Amz-Target")
	op, known := strings.CutPrefix(target, targetPrefix)
	if known {
		e.count(op, isRetry(r))
	}
	if aerr := checkAuth(r); aerr != nil {
		e.writeError(w, op, aerr)
		return
	}
	if r.Method != http.MethodPost || !known || !isOperation(op) {
		e.writeError(w, op, newError(ErrUnknownOperation, "The operation %q is not supported by this emulator.", target))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			e.writeError(w, op, &Error{Code: "RequestEntityTooLargeException", Message: fmt.Sprintf("Request body is larger than %d bytes.", maxBodyBytes), Status: http.StatusRequestEntityTooLarge})
			return
		}
		e.writeError(w, op, newError(ErrSerialization, "Could not read the request body."))
		return
	}
	caller, aerr := e.authenticate(r, body)
	if aerr != nil {
		e.writeError(w, op, aerr)
		return
	}
	if caller != nil {
		e.countIdentity(caller.identity, op)
	} else {
		e.countIdentity(accessKeyOf(r), op)
	}
	name := e.secretNameOf(body)
	e.countSecret(op, name)
	if e.playFault(w, r, op, name, func(code, msg string, status int) {
		e.writeError(w, op, &Error{Code: code, Message: msg, Status: status})
	}) {
		return
	}
	if aerr := e.authorize(caller, op, body); aerr != nil {
		e.writeError(w, op, aerr)
		return
	}
	resp, aerr := e.dispatch(op, body, caller)
	if aerr != nil {
		e.writeError(w, op, aerr)
		return
	}
	out, err := json.Marshal(resp)
	if err != nil {
		e.writeError(w, op, newError(ErrInternalServiceError, "Could not encode the response."))
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", uuid.NewString())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
	e.log.Debug("request", "op", op, "status", http.StatusOK)
}

// sigV4Header is the shape of a SigV4 Authorization header's parameters.
// With an IAM model the signature is then verified (authenticate).
var sigV4Header = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=[^,\s]+,\s*SignedHeaders=[^,\s]+,\s*Signature=[0-9a-fA-F]+$`)

// checkAuth refuses requests that are not SigV4-signed, with the errors the
// service sends. It does not verify the signature: authenticate does, when
// an IAM model is set.
func checkAuth(r *http.Request) *Error {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return newError(ErrMissingAuthenticationToken, "Missing Authentication Token")
	}
	if !sigV4Header.MatchString(auth) {
		return newError(ErrIncompleteSignature, "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters of AWS4-HMAC-SHA256.")
	}
	if r.Header.Get("X-Amz-Date") == "" && r.Header.Get("Date") == "" {
		return newError(ErrIncompleteSignature, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	return nil
}

func (e *Emulator) writeError(w http.ResponseWriter, op string, aerr *Error) {
	body, _ := json.Marshal(map[string]string{"__type": aerr.Code, "message": aerr.Message})
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", uuid.NewString())
	w.Header().Set("X-Amzn-Errortype", aerr.Code)
	status := aerr.Status
	if status == 0 {
		status = statusOf(aerr.Code)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
	e.log.Debug("request", "op", op, "status", status, "error", aerr.Code)
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// Operation names the emulator implements.
const (
	OpCreateSecret             = "CreateSecret"
	OpGetSecretValue           = "GetSecretValue"
	OpDescribeSecret           = "DescribeSecret"
	OpListSecrets              = "ListSecrets"
	OpListSecretVersionIds     = "ListSecretVersionIds"
	OpBatchGetSecretValue      = "BatchGetSecretValue"
	OpPutSecretValue           = "PutSecretValue"
	OpUpdateSecret             = "UpdateSecret"
	OpUpdateSecretVersionStage = "UpdateSecretVersionStage"
	OpDeleteSecret             = "DeleteSecret"
	OpRestoreSecret            = "RestoreSecret"
	OpRotateSecret             = "RotateSecret"
	OpTagResource              = "TagResource"
	OpUntagResource            = "UntagResource"
)

// Operations returns the names of the operations the emulator implements.
func Operations() []string {
	return []string{
		OpCreateSecret, OpGetSecretValue, OpDescribeSecret, OpListSecrets,
		OpListSecretVersionIds, OpBatchGetSecretValue, OpPutSecretValue,
		OpUpdateSecret, OpUpdateSecretVersionStage, OpDeleteSecret,
		OpRestoreSecret, OpRotateSecret, OpTagResource, OpUntagResource,
	}
}

// isFaultable reports whether InjectFault's op can match calls.
func isFaultable(op string) bool {
	return op == AllOperations || isOperation(op) || op == OpAssumeRoleWithWebIdentity || op == OpPodIdentityCredentials
}

func isOperation(op string) bool {
	for _, o := range Operations() {
		if o == op {
			return true
		}
	}
	return false
}

// dispatch decodes the body for op and runs the operation for caller (nil
// when there is no IAM model).
func (e *Emulator) dispatch(op string, body []byte, caller *principal) (any, *Error) {
	switch op {
	case OpCreateSecret:
		return handle(body, e.createSecret)
	case OpGetSecretValue:
		return handle(body, e.getSecretValue)
	case OpDescribeSecret:
		return handle(body, e.describeSecret)
	case OpListSecrets:
		return handle(body, e.listSecrets)
	case OpListSecretVersionIds:
		return handle(body, e.listSecretVersionIds)
	case OpBatchGetSecretValue:
		return handle(body, func(req *batchGetSecretValueRequest) (*batchGetSecretValueResponse, *Error) {
			return e.batchGetSecretValue(req, caller)
		})
	case OpPutSecretValue:
		return handle(body, e.putSecretValue)
	case OpUpdateSecret:
		return handle(body, e.updateSecret)
	case OpUpdateSecretVersionStage:
		return handle(body, e.updateSecretVersionStage)
	case OpDeleteSecret:
		return handle(body, e.deleteSecret)
	case OpRestoreSecret:
		return handle(body, e.restoreSecret)
	case OpRotateSecret:
		return handle(body, e.rotateSecret)
	case OpTagResource:
		return handle(body, e.tagResource)
	case OpUntagResource:
		return handle(body, e.untagResource)
	}
	return nil, newError(ErrUnknownOperation, "The operation %q is not supported by this emulator.", op)
}

// handle decodes a request body into Req and calls h. An empty body is an
// empty request, as for operations without input.
func handle[Req, Resp any](body []byte, h func(*Req) (*Resp, *Error)) (any, *Error) {
	var req Req
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, newError(ErrSerialization, "The request body is not valid JSON for this operation: %s", describeJSONError(err))
		}
	}
	resp, aerr := h(&req)
	if aerr != nil {
		return nil, aerr
	}
	return resp, nil
}

// describeJSONError says what was wrong with a body without quoting it.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("member %s has the wrong type (want %s)", typ.Field, typ.Type)
		}
		return fmt.Sprintf("want a JSON object, got a %s", typ.Value)
	default:
		return "malformed value"
	}
}

// AllOperations, given to InjectFault, makes a fault apply to every
// operation.
const AllOperations = "*"

// Fault is a failure the emulator plays instead of answering a call.
type Fault struct {
	// ErrorType is the error type to answer with, e.g.
	// "ThrottlingException" or "InternalServiceError". Empty means no
	// error: the call is answered normally after Latency, unless Drop.
	ErrorType string
	// Message is the error's message; a generic one when empty.
	Message string
	// Status overrides the HTTP status; 0 means the service's status for
	// ErrorType (500 for InternalServiceError, 503 for ServiceUnavailable,
	// else 400).
	Status int
	// Times is how many calls the fault applies to; 0 means every call
	// until ClearFaults.
	Times int
	// Latency delays the answer (or the drop) by this long. A client that
	// gives up earlier ends the wait.
	Latency time.Duration
	// Drop closes the connection without an answer.
	Drop bool
	// SecretID, when set, is the name of the one secret the fault applies
	// to: calls naming it by name or by ARN. Calls that name no secret,
	// such as ListSecrets, are then never faulted.
	SecretID string
}

func (f Fault) status() int {
	if f.Status != 0 {
		return f.Status
	}
	return statusOf(f.ErrorType)
}

// pending is an injected fault with its remaining count.
type pending struct {
	Fault
	left int // calls left; 0 = unlimited
}

// InjectFault makes the next calls of operation op (an Op* name, or
// AllOperations for every Secrets Manager operation) fail as f says; a
// name the emulator does not implement never matches. STS
// (OpAssumeRoleWithWebIdentity) and the Pod Identity endpoint
// (OpPodIdentityCredentials) are faulted only when named, their errors
// written in their own formats. Faults on one operation are played in the
// order they were injected; one for op is played before one for
// AllOperations. Requests refused for a missing or wrong signature are not
// faulted.
func (e *Emulator) InjectFault(op string, f Fault) {
	e.ctlMu.Lock()
	defer e.ctlMu.Unlock()
	left := f.Times
	if left < 0 {
		left = 0
	}
	e.faults[op] = append(e.faults[op], &pending{Fault: f, left: left})
}

// ClearFaults removes every injected fault.
func (e *Emulator) ClearFaults() {
	e.ctlMu.Lock()
	defer e.ctlMu.Unlock()
	clear(e.faults)
}

// playFault plays the fault due for a call of op about secret ("" if
// none), if any: it waits the fault's latency, then drops the connection
// or answers the fault's error with writeErr. It reports whether the
// request is done with (answered, dropped, or abandoned by the client).
func (e *Emulator) playFault(w http.ResponseWriter, r *http.Request, op, secret string, writeErr func(code, msg string, status int)) bool {
	f, ok := e.takeFault(op, secret)
	if !ok {
		return false
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	if f.Drop {
		dropConnection(w)
		return true
	}
	if f.ErrorType != "" {
		msg := f.Message
		if msg == "" {
			msg = "Injected fault."
		}
		writeErr(f.ErrorType, msg, f.status())
		return true
	}
	return false
}

// takeFault returns the fault to play for a call of op about the secret
// named secret ("" if none), if any, and counts it down. Faults for
// AllOperations apply to Secrets Manager's operations only.
func (e *Emulator) takeFault(op, secret string) (Fault, bool) {
	e.ctlMu.Lock()
	defer e.ctlMu.Unlock()
	keys := []string{op}
	if isOperation(op) {
		keys = append(keys, AllOperations)
	}
	for _, key := range keys {
		q := e.faults[key]
		for i, p := range q {
			if p.SecretID != "" && p.SecretID != secret {
				continue
			}
			if p.left > 0 {
				p.left--
				if p.left == 0 {
					e.faults[key] = append(q[:i:i], q[i+1:]...)
				}
			}
			return p.Fault, true
		}
	}
	return Fault{}, false
}

// secretNameOf returns the name of the secret a request's SecretId names,
// the SecretId itself when no secret has it, or "" when the request names
// none.
func (e *Emulator) secretNameOf(body []byte) string {
	var req struct{ SecretId string }
	if json.Unmarshal(body, &req) != nil || req.SecretId == "" {
		return ""
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, aerr := e.find(req.SecretId); aerr == nil {
		return s.name
	}
	return req.SecretId
}

func (e *Emulator) count(op string, retry bool) {
	e.ctlMu.Lock()
	defer e.ctlMu.Unlock()
	e.calls[op]++
	if retry {
		e.retries[op]++
	}
	close(e.changed)
	e.changed = make(chan struct{})
}

// Calls returns how many requests named operation op since the emulator was
// made or ResetCalls, whatever their outcome (refused, faulted or answered).
// In-process methods such as CreateSecret are not counted.
func (e *Emulator) Calls(op string) int {
	e.ctlMu.Lock()
	defer e.ctlMu.Unlock()
	return e.calls[op]
}

// CallCounts returns a copy of every operation's call count.
func (e *Emulator) CallCounts() map[string]int {
	e.ctlMu.Lock()
	defer e.ctlMu.Unlock()
	return maps.Clone(e.calls)
}

// RetryCounts returns, by operation, how many of the calls CallCounts
// counts were an AWS SDK's retries of a call it made before: requests whose
// amz-sdk-request header says attempt 2 or more. The SDK retries a call
// whose answer was an error it deems retryable or could not be read.
func (e *Emulator) RetryCounts() map[string]int {
	e.ctlMu.Lock()
	defer e.ctlMu.Unlock()
	return maps.Clone(e.retries)
}

// isRetry reports whether r is an AWS SDK's retry of an earlier attempt:
// its amz-sdk-request header ("attempt=2; max=3") says attempt 2 or more.
func isRetry(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Amz-Sdk-Request"), ";") {
		if n, ok := strings.CutPrefix(strings.TrimSpace(part), "attempt="); ok {
			a, err := strconv.Atoi(n)
			return err == nil && a > 1
		}
	}
	return false
}

// opSecret is an operation and the secret a call of it names.
type opSecret struct{ op, secret string }

// countSecret counts a call of op that names secret ("" if none).
func (e *Emulator) countSecret(op, secret string) {
	if secret == "" {
		return
	}
	e.ctlMu.Lock()
	defer e.ctlMu.Unlock()
	e.bySecret[opSecret{op, secret}]++
}

// SecretCalls returns how many requests of operation op named the secret
// called name (by its name or ARN) since the emulator was made or
// ResetCalls, whatever their outcome but for requests refused unread (no
// signature, an unknown operation, a body too large).
func (e *Emulator) SecretCalls(op, name string) int {
	e.ctlMu.Lock()
	defer e.ctlMu.Unlock()
	return e.bySecret[opSecret{op, name}]
}

// ResetCalls sets every call count, retry count and count by identity to
// zero.
func (e *Emulator) ResetCalls() {
	e.ctlMu.Lock()
	defer e.ctlMu.Unlock()
	clear(e.calls)
	clear(e.retries)
	clear(e.bySecret)
	clear(e.byIdentity)
	close(e.changed)
	e.changed = make(chan struct{})
}

// WaitForCalls blocks until operation op has been called at least n times,
// and returns the count then; or returns ctx's error when ctx ends first.
func (e *Emulator) WaitForCalls(ctx context.Context, op string, n int) (int, error) {
	for {
		e.ctlMu.Lock()
		got, changed := e.calls[op], e.changed
		e.ctlMu.Unlock()
		if got >= n {
			return got, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return got, fmt.Errorf("waiting for %d calls of %s (have %d): %w", n, op, got, ctx.Err())
		}
	}
}
