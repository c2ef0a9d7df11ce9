// Package cachetest provides fakes for testing code that uses the cache: a
// Secrets Manager client held in memory with call counters and fault
// injection, a clock moved by hand, and a random source that returns chosen
// numbers. Nothing here sleeps.
package cachetest

import (
	"context"
	"fmt"
	"sort"
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
// cache.Client. Secrets are found by name or by ARN.
type Client struct {
	mu      sync.Mutex
	secrets map[string]*Secret         // by name; guarded by mu
	calls   map[string]int             // by operation; guarded by mu
	log     []Call                     // every call, in order; guarded by mu
	errs    map[string][]error         // queued errors by operation; guarded by mu
	always  map[string]error           // error returned by every call of an operation; guarded by mu
	gate    chan struct{}              // when set, calls wait for it to close; guarded by mu
	inCall  int                        // calls under way; guarded by mu
	maxIn   int                        // most calls under way at once; guarded by mu
	onCall  func(op string, id string) // guarded by mu
	counter int                        // version id sequence; guarded by mu
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
		secrets: make(map[string]*Secret),
		calls:   make(map[string]int),
		errs:    make(map[string][]error),
		always:  make(map[string]error),
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
	if err := c.begin(ctx, call); err != nil {
		c.end()
		return nil, nil, err
	}
	c.mu.Lock()
	done = func() {
		c.inCall--
		c.mu.Unlock()
	}
	if s = c.lookupLocked(call.SecretID); s == nil {
		done()
		return nil, nil, notFound()
	}
	return s, done, nil
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
