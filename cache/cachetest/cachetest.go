// Package cachetest provides fakes for testing code that uses the cache: a
// Secrets Manager client held in memory with call counters and fault
// injection, a clock moved by hand, and a random source that returns chosen
// numbers. Nothing here sleeps.
package cachetest

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// Clock is a fake clock: time stands still until Advance or Set moves it.
// It satisfies cache.Clock.
type Clock struct {
	mu      sync.Mutex
	now     time.Time // guarded by mu
	waiters []waiter  // guarded by mu
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// NewClock returns a fake clock set to start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Alarm returns a channel that receives once the fake time reaches t.
func (c *Clock) Alarm(t time.Time) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if !c.now.Before(t) {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: t, ch: ch})
	return ch
}

// Waiters reports how many alarms are pending, so a test can wait until a
// goroutine is waiting on the clock before advancing it.
func (c *Clock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// Advance moves the fake time forward by d and fires the alarms it reaches.
func (c *Clock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Set moves the fake time to t and fires the alarms it reaches.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !t.Before(w.at) {
			w.ch <- t
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// Rand is a fake random source. Int64N(n) returns Fn(n) when Fn is set, and
// 0 otherwise. It satisfies cache.Rand.
type Rand struct {
	mu sync.Mutex
	Fn func(n int64) int64 // guarded by mu
}

// Int64N returns the chosen number.
func (r *Rand) Int64N(n int64) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Fn == nil {
		return 0
	}
	return r.Fn(n)
}

// Set changes the function behind Int64N.
func (r *Rand) Set(fn func(n int64) int64) {
	r.mu.Lock()
	r.Fn = fn
	r.mu.Unlock()
}

// Secret is a secret held by the fake Client.
type Secret struct {
	Name             string
	ARN              string
	Versions         map[string]Version  // by version id
	Stages           map[string][]string // version id -> stages
	NextRotationDate *time.Time
	Deleted          bool
	Tags             map[string]string
	// LastChanged is when the secret last changed (a value put, a stage
	// moved): ListSecrets and DescribeSecret report it as LastChangedDate.
	LastChanged time.Time
	// NoVersionIdsToStages makes DescribeSecret answer without the map.
	NoVersionIdsToStages bool
}

// Version is one version's value: String or Binary, or neither.
type Version struct {
	String  *string
	Binary  []byte
	Created time.Time
}

// Client is a fake Secrets Manager client held in memory. It satisfies
// cache.Client, and also lists (ListSecrets) and fetches in batches
// (BatchGetSecretValue). Secrets are found by name or by ARN.
type Client struct {
	mu         sync.Mutex
	secrets    map[string]*Secret         // by name; guarded by mu
	calls      map[string]int             // by operation; guarded by mu
	log        []Call                     // every call, in order; guarded by mu
	errs       map[string][]error         // queued errors by operation; guarded by mu
	always     map[string]error           // error returned by every call of an operation; guarded by mu
	gate       chan struct{}              // when set, calls wait for it to close; guarded by mu
	inCall     int                        // calls under way; guarded by mu
	maxIn      int                        // most calls under way at once; guarded by mu
	onCall     func(op string, id string) // guarded by mu
	counter    int                        // version id sequence; guarded by mu
	secretErrs map[string]string          // BatchGetSecretValue error code by secret id; guarded by mu
}

// Call records one call to the fake client.
type Call struct {
	Op        string
	SecretID  string
	VersionID string // GetSecretValue's VersionId, "" if none
	Stage     string // GetSecretValue's VersionStage, "" if none
}

// NewClient returns an empty fake client.
func NewClient() *Client {
	return &Client{
		secrets:    make(map[string]*Secret),
		calls:      make(map[string]int),
		errs:       make(map[string][]error),
		always:     make(map[string]error),
		secretErrs: make(map[string]string),
	}
}

// PutString adds a version holding s to the secret (creating it), moves
// AWSCURRENT to it and AWSPREVIOUS to the version AWSCURRENT left, and
// returns the new version id.
func (c *Client) PutString(name, s string) string {
	return c.put(name, Version{String: aws.String(s)})
}

// PutBinary is PutString for a binary value.
func (c *Client) PutBinary(name string, b []byte) string {
	return c.put(name, Version{Binary: append([]byte(nil), b...)})
}

// PutVersion adds a version as it is (for answers with neither field).
func (c *Client) PutVersion(name string, v Version) string { return c.put(name, v) }

func (c *Client) put(name string, v Version) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.secrets[name]
	if s == nil {
		s = &Secret{
			Name:     name,
			ARN:      "arn:aws:secretsmanager:us-east-1:123456789012:secret:" + name + "-AbCdEf",
			Versions: make(map[string]Version),
			Stages:   make(map[string][]string),
		}
		c.secrets[name] = s
	}
	c.counter++
	s.LastChanged = c.changedAt()
	vid := fmt.Sprintf("v%d", c.counter)
	s.Versions[vid] = v
	prev := findStage(s, "AWSCURRENT")
	if prev != "" {
		removeStage(s, "AWSPREVIOUS")
		removeStage(s, "AWSCURRENT")
		s.Stages[prev] = append(s.Stages[prev], "AWSPREVIOUS")
	}
	s.Stages[vid] = append(s.Stages[vid], "AWSCURRENT")
	return vid
}

// SetStage moves stage to the version vid of the secret.
func (c *Client) SetStage(name, stage, vid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.secrets[name]
	removeStage(s, stage)
	s.Stages[vid] = append(s.Stages[vid], stage)
	c.counter++
	s.LastChanged = c.changedAt()
}

// changedAt is a LastChangedDate later than every one given before: the
// fake has no clock, so the version sequence stands for time.
func (c *Client) changedAt() time.Time {
	return time.Unix(1700000000, 0).Add(time.Duration(c.counter) * time.Second)
}

// Delete removes the secret at once, as a deletion without recovery window
// does: every call about it then answers ResourceNotFoundException.
func (c *Client) Delete(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.secrets, name)
}

// Update changes a secret in place under the client's lock.
func (c *Client) Update(name string, f func(*Secret)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c.secrets[name])
}

// ARN returns the secret's ARN.
func (c *Client) ARN(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.secrets[name].ARN
}

func findStage(s *Secret, stage string) string {
	for vid, stages := range s.Stages {
		for _, st := range stages {
			if st == stage {
				return vid
			}
		}
	}
	return ""
}

func removeStage(s *Secret, stage string) {
	for vid, stages := range s.Stages {
		kept := stages[:0]
		for _, st := range stages {
			if st != stage {
				kept = append(kept, st)
			}
		}
		if len(kept) == 0 {
			delete(s.Stages, vid)
		} else {
			s.Stages[vid] = kept
		}
	}
}

// FailNext makes the next n calls of op (OpDescribeSecret or
// OpGetSecretValue, as named by the service) return err.
func (c *Client) FailNext(op string, n int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := 0; i < n; i++ {
		c.errs[op] = append(c.errs[op], err)
	}
}

// FailAlways makes every call of op return err until it is set to nil.
func (c *Client) FailAlways(op string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.always[op] = err
}

// Hold makes every call wait until Release, so a test can see concurrent
// callers pile up behind one call.
func (c *Client) Hold() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gate == nil {
		c.gate = make(chan struct{})
	}
}

// Release lets held calls finish.
func (c *Client) Release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gate != nil {
		close(c.gate)
		c.gate = nil
	}
}

// OnCall sets a function called at the start of every call.
func (c *Client) OnCall(f func(op, secretID string)) {
	c.mu.Lock()
	c.onCall = f
	c.mu.Unlock()
}

// Calls returns how many calls of op were made.
func (c *Client) Calls(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[op]
}

// Log returns every call made, in order.
func (c *Client) Log() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Call(nil), c.log...)
}

// InFlight reports the calls under way now and the most that ever were.
func (c *Client) InFlight() (now, max int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inCall, c.maxIn
}

// begin records a call and returns the error to answer with, if any. The
// call counts as under way until the caller calls end.
func (c *Client) begin(ctx context.Context, call Call) error {
	c.mu.Lock()
	c.calls[call.Op]++
	c.log = append(c.log, call)
	c.inCall++
	if c.inCall > c.maxIn {
		c.maxIn = c.inCall
	}
	gate, onCall := c.gate, c.onCall
	c.mu.Unlock()
	if onCall != nil {
		onCall(call.Op, call.SecretID)
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if q := c.errs[call.Op]; len(q) > 0 {
		c.errs[call.Op] = q[1:]
		return q[0]
	}
	return c.always[call.Op]
}

func (c *Client) end() {
	c.mu.Lock()
	c.inCall--
	c.mu.Unlock()
}

// lookupLocked finds a secret by name or ARN.
func (c *Client) lookupLocked(id string) *Secret {
	if s, ok := c.secrets[id]; ok {
		return s
	}
	for _, s := range c.secrets {
		if s.ARN == id {
			return s
		}
	}
	return nil
}

func notFound() error {
	return &types.ResourceNotFoundException{Message: aws.String("Secrets Manager can't find the specified secret.")}
}

// call records a call, plays its queued error if any, and finds the secret
// it names. On success the client stays locked, and the call under way,
// until done is called.
func (c *Client) call(ctx context.Context, call Call) (s *Secret, done func(), err error) {
	done, err = c.enter(ctx, call)
	if err != nil {
		return nil, nil, err
	}
	if s = c.lookupLocked(call.SecretID); s == nil {
		done()
		return nil, nil, notFound()
	}
	return s, done, nil
}

// enter records a call and plays its queued error if any. On success the
// client stays locked, and the call under way, until done is called.
func (c *Client) enter(ctx context.Context, call Call) (done func(), err error) {
	if err := c.begin(ctx, call); err != nil {
		c.end()
		return nil, err
	}
	c.mu.Lock()
	return func() {
		c.inCall--
		c.mu.Unlock()
	}, nil
}

// DescribeSecret answers like the service.
func (c *Client) DescribeSecret(ctx context.Context, in *secretsmanager.DescribeSecretInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.DescribeSecretOutput, error) {
	s, done, err := c.call(ctx, Call{Op: "DescribeSecret", SecretID: aws.ToString(in.SecretId)})
	if err != nil {
		return nil, err
	}
	defer done()
	out := &secretsmanager.DescribeSecretOutput{
		ARN:              aws.String(s.ARN),
		Name:             aws.String(s.Name),
		NextRotationDate: s.NextRotationDate,
		LastChangedDate:  lastChanged(s),
	}
	if s.Deleted {
		out.DeletedDate = aws.Time(time.Unix(1700000000, 0))
	}
	for k, v := range s.Tags {
		out.Tags = append(out.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	if !s.NoVersionIdsToStages {
		out.VersionIdsToStages = make(map[string][]string)
		for vid, stages := range s.Stages {
			st := append([]string(nil), stages...)
			sort.Strings(st)
			out.VersionIdsToStages[vid] = st
		}
	}
	return out, nil
}

// GetSecretValue answers like the service, by VersionId or VersionStage.
func (c *Client) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	id := aws.ToString(in.SecretId)
	call := Call{Op: "GetSecretValue", SecretID: id, VersionID: aws.ToString(in.VersionId), Stage: aws.ToString(in.VersionStage)}
	s, done, err := c.call(ctx, call)
	if err != nil {
		return nil, err
	}
	defer done()
	vid := call.VersionID
	if vid == "" {
		stage := call.Stage
		if stage == "" {
			stage = "AWSCURRENT"
		}
		vid = findStage(s, stage)
	}
	v, ok := s.Versions[vid]
	if !ok {
		return nil, notFound()
	}
	out := &secretsmanager.GetSecretValueOutput{
		ARN:           aws.String(s.ARN),
		Name:          aws.String(s.Name),
		VersionId:     aws.String(vid),
		VersionStages: append([]string(nil), s.Stages[vid]...),
		CreatedDate:   aws.Time(v.Created),
		SecretString:  v.String,
	}
	if v.Binary != nil {
		out.SecretBinary = append([]byte(nil), v.Binary...)
	}
	if v.String != nil {
		out.SecretString = aws.String(*v.String)
	}
	return out, nil
}

func lastChanged(s *Secret) *time.Time {
	if s.LastChanged.IsZero() {
		return nil
	}
	return aws.Time(s.LastChanged)
}

// stagesOf copies a secret's version -> stages map, stages sorted.
func stagesOf(s *Secret) map[string][]string {
	out := make(map[string][]string, len(s.Stages))
	for vid, stages := range s.Stages {
		st := append([]string(nil), stages...)
		sort.Strings(st)
		out[vid] = st
	}
	return out
}

// listPageSize is how many secrets a ListSecrets page holds at most when
// the request sets no MaxResults.
const listPageSize = 100

// ListSecrets answers like the service: secrets sorted by name, secrets
// scheduled for deletion left out, "name" filters matching a prefix of the
// name (values ORed, filters ANDed), "tag-key" and "tag-value" prefixes of
// a tag, MaxResults and NextToken paging. Each entry carries
// SecretVersionsToStages and LastChangedDate. A call is logged with the
// filters' values joined by "," as its SecretID.
func (c *Client) ListSecrets(ctx context.Context, in *secretsmanager.ListSecretsInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error) {
	var keys []string
	for _, f := range in.Filters {
		keys = append(keys, string(f.Key)+"="+strings.Join(f.Values, "|"))
	}
	done, err := c.enter(ctx, Call{Op: "ListSecrets", SecretID: strings.Join(keys, ",")})
	if err != nil {
		return nil, err
	}
	defer done()
	names := make([]string, 0, len(c.secrets))
	for name, s := range c.secrets {
		if !s.Deleted && matchesFilters(s, in.Filters) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	start := 0
	if t := aws.ToString(in.NextToken); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 || n > len(names) {
			return nil, &types.InvalidNextTokenException{Message: aws.String("bad token")}
		}
		start = n
	}
	size := listPageSize
	if in.MaxResults != nil && *in.MaxResults > 0 {
		size = int(*in.MaxResults)
	}
	end := min(start+size, len(names))
	out := &secretsmanager.ListSecretsOutput{}
	for _, name := range names[start:end] {
		s := c.secrets[name]
		e := types.SecretListEntry{
			ARN:                    aws.String(s.ARN),
			Name:                   aws.String(s.Name),
			NextRotationDate:       s.NextRotationDate,
			LastChangedDate:        lastChanged(s),
			SecretVersionsToStages: stagesOf(s),
		}
		for k, v := range s.Tags {
			e.Tags = append(e.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		out.SecretList = append(out.SecretList, e)
	}
	if end < len(names) {
		out.NextToken = aws.String(strconv.Itoa(end))
	}
	return out, nil
}

// matchesFilters applies ListSecrets filters the way the service does for
// the keys the cache sends.
func matchesFilters(s *Secret, filters []types.Filter) bool {
	for _, f := range filters {
		var candidates []string
		switch f.Key {
		case types.FilterNameStringTypeName:
			candidates = []string{s.Name}
		case types.FilterNameStringTypeTagKey:
			for k := range s.Tags {
				candidates = append(candidates, k)
			}
		case types.FilterNameStringTypeTagValue:
			for _, v := range s.Tags {
				candidates = append(candidates, v)
			}
		}
		hit := false
		for _, v := range f.Values {
			for _, cand := range candidates {
				if strings.HasPrefix(cand, v) {
					hit = true
				}
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

// maxBatch is how many ids BatchGetSecretValue takes at most.
const maxBatch = 20

// BatchGetSecretValue answers like the service for a SecretIdList: each
// secret's AWSCURRENT value, with per-secret errors in Errors
// (ResourceNotFoundException for an unknown id, or an error queued for the
// id with FailSecret). FailNext and FailAlways with "BatchGetSecretValue"
// refuse the whole call. The call is logged with the ids joined by ",".
func (c *Client) BatchGetSecretValue(ctx context.Context, in *secretsmanager.BatchGetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.BatchGetSecretValueOutput, error) {
	done, err := c.enter(ctx, Call{Op: "BatchGetSecretValue", SecretID: strings.Join(in.SecretIdList, ",")})
	if err != nil {
		return nil, err
	}
	defer done()
	if len(in.SecretIdList) == 0 || len(in.SecretIdList) > maxBatch || len(in.Filters) > 0 {
		return nil, &types.InvalidParameterException{Message: aws.String("give 1 to 20 ids in SecretIdList and no filters")}
	}
	out := &secretsmanager.BatchGetSecretValueOutput{}
	for _, id := range in.SecretIdList {
		fail := func(code, msg string) {
			out.Errors = append(out.Errors, types.APIErrorType{SecretId: aws.String(id), ErrorCode: aws.String(code), Message: aws.String(msg)})
		}
		if code, ok := c.secretErrs[id]; ok {
			fail(code, "refused for this secret")
			continue
		}
		s := c.lookupLocked(id)
		if s == nil {
			fail("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
			continue
		}
		vid := findStage(s, "AWSCURRENT")
		v, ok := s.Versions[vid]
		if !ok {
			fail("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT")
			continue
		}
		e := types.SecretValueEntry{
			ARN:           aws.String(s.ARN),
			Name:          aws.String(s.Name),
			VersionId:     aws.String(vid),
			VersionStages: append([]string(nil), s.Stages[vid]...),
			CreatedDate:   aws.Time(v.Created),
		}
		if v.Binary != nil {
			e.SecretBinary = append([]byte(nil), v.Binary...)
		}
		if v.String != nil {
			e.SecretString = aws.String(*v.String)
		}
		out.SecretValues = append(out.SecretValues, e)
	}
	return out, nil
}

// FailSecret makes BatchGetSecretValue report code (e.g.
// "AccessDeniedException") for the secret id in its Errors, while the other
// ids of the call succeed; an empty code undoes it.
func (c *Client) FailSecret(id, code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if code == "" {
		delete(c.secretErrs, id)
		return
	}
	c.secretErrs[id] = code
}
