package fs

import (
	"context"
	"errors"
	iofs "io/fs"
	"sync"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/cache/cachetest"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// fakeStore is an in-memory Store. Rotate and SetErr change it and report
// changes to subscribers as the cache would.
type fakeStore struct {
	mu         sync.Mutex
	secrets    map[string]*fakeSecret // guarded by mu
	subs       []func(Change)         // guarded by mu
	pins       map[string]int         // guarded by mu
	prefetched [][]string             // guarded by mu; every Prefetch call
	reads      int                    // Value calls; guarded by mu
}

type fakeSecret struct {
	arn      string
	stages   map[string]string // stage -> version id
	versions map[string][]byte
	err      error
	valueErr error // fails Value only (GetSecretValue refused, DescribeSecret allowed)
	n        int
}

func newFakeStore() *fakeStore {
	return &fakeStore{secrets: map[string]*fakeSecret{}, pins: map[string]int{}}
}

// put adds a version holding data and moves AWSCURRENT to it (AWSPREVIOUS
// to the one it left), reporting the changes.
func (s *fakeStore) put(id string, data string) string {
	s.mu.Lock()
	sec := s.secrets[id]
	if sec == nil {
		sec = &fakeSecret{arn: "arn:aws:secretsmanager:us-east-1:1:secret:" + id, stages: map[string]string{}, versions: map[string][]byte{}}
		s.secrets[id] = sec
	}
	sec.n++
	vid := id + "-v" + string(rune('0'+sec.n))
	sec.versions[vid] = []byte(data)
	var changes []Change
	if old, ok := sec.stages["AWSCURRENT"]; ok {
		changes = append(changes,
			Change{SecretID: id, Stage: "AWSCURRENT", OldVersionID: old, NewVersionID: vid},
			Change{SecretID: id, Stage: "AWSPREVIOUS", OldVersionID: sec.stages["AWSPREVIOUS"], NewVersionID: old})
		sec.stages["AWSPREVIOUS"] = old
	}
	sec.stages["AWSCURRENT"] = vid
	subs := append([]func(Change){}, s.subs...)
	s.mu.Unlock()
	for _, c := range changes {
		for _, fn := range subs {
			fn(c)
		}
	}
	return vid
}

func (s *fakeStore) label(id, stage, vid string) {
	s.mu.Lock()
	s.secrets[id].stages[stage] = vid
	s.mu.Unlock()
}

func (s *fakeStore) setErr(id string, err error) {
	s.mu.Lock()
	s.secrets[id].err = err
	s.mu.Unlock()
}

// setValueErr makes reads of the secret's values fail while its stages
// can still be listed.
func (s *fakeStore) setValueErr(id string, err error) {
	s.mu.Lock()
	s.secrets[id].valueErr = err
	s.mu.Unlock()
}

func (s *fakeStore) Value(ctx context.Context, id, stage string) (Value, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	sec := s.secrets[id]
	if sec == nil {
		return Value{}, iofs.ErrNotExist
	}
	if sec.err != nil {
		return Value{}, sec.err
	}
	if sec.valueErr != nil {
		return Value{}, sec.valueErr
	}
	if stage == "" {
		stage = "AWSCURRENT"
	}
	vid, ok := sec.stages[stage]
	if !ok {
		return Value{}, iofs.ErrNotExist
	}
	var stages []string
	for st, v := range sec.stages {
		if v == vid {
			stages = append(stages, st)
		}
	}
	return Value{
		ARN: sec.arn, VersionID: vid, Stages: stages,
		CreatedDate: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		FetchedAt:   time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC),
		Data:        append([]byte(nil), sec.versions[vid]...),
	}, nil
}

func (s *fakeStore) Stages(ctx context.Context, id string) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec := s.secrets[id]
	if sec == nil {
		return nil, iofs.ErrNotExist
	}
	if sec.err != nil {
		return nil, sec.err
	}
	out := map[string]string{}
	for k, v := range sec.stages {
		out[k] = v
	}
	return out, nil
}

func (s *fakeStore) Subscribe(fn func(Change)) func() {
	s.mu.Lock()
	s.subs = append(s.subs, fn)
	s.mu.Unlock()
	return func() {}
}

func (s *fakeStore) Prefetch(ids []string) {
	s.mu.Lock()
	s.prefetched = append(s.prefetched, ids)
	s.mu.Unlock()
}

func (s *fakeStore) Pin(id string) func() {
	s.mu.Lock()
	s.pins[id]++
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.pins[id]--
		s.mu.Unlock()
	}
}

// pinCount is how many pins of a secret are not released.
func (s *fakeStore) pinCount(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pins[id]
}

// fakeCatalog lists fixed secrets; Find knows the extra ones.
type fakeCatalog struct {
	mu       sync.Mutex
	refs     []SecretRef          // guarded by mu
	extra    map[string]SecretRef // guarded by mu
	finds    int                  // guarded by mu
	onChange []func()             // guarded by mu
}

// set replaces the listed secrets and tells the subscribers.
func (c *fakeCatalog) set(refs []SecretRef) {
	c.mu.Lock()
	c.refs = refs
	fns := append([]func(){}, c.onChange...)
	c.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

func (c *fakeCatalog) List() []SecretRef {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]SecretRef(nil), c.refs...)
}

func (c *fakeCatalog) Find(ctx context.Context, name string) (SecretRef, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finds++
	r, ok := c.extra[name]
	return r, ok, nil
}

func (c *fakeCatalog) OnChange(fn func()) func() {
	c.mu.Lock()
	c.onChange = append(c.onChange, fn)
	c.mu.Unlock()
	return func() {}
}

func refs(names ...string) []SecretRef {
	var out []SecretRef
	for _, n := range names {
		out = append(out, SecretRef{Name: n, ID: n})
	}
	return out
}

// testEpoch is the time of the mounts' fake clocks.
var testEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// mountFS mounts a filesystem in a temporary directory for the test and
// unmounts it when the test ends. Without /dev/fuse it skips, unless
// SECRETSFS_TEST_REQUIRE_FUSE is set (as CI does).
func mountFS(t *testing.T, opts Options) string {
	t.Helper()
	_, dir := mountServer(t, opts)
	return dir
}

// mountServer is mountFS that also returns the server. Without a Clock in
// opts the mount gets a fake one that stands still at testEpoch.
func mountServer(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	testutil.RequireFUSE(t)
	dir := t.TempDir()
	if opts.Clock == nil {
		opts.Clock = cachetest.NewClock(testEpoch)
	}
	srv, err := Mount(dir, opts)
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	t.Cleanup(func() {
		if testutil.MountType(dir) == "" {
			return // the test unmounted it
		}
		if err := srv.Unmount(); err != nil {
			t.Errorf("Unmount: %v", err)
		}
	})
	return srv, dir
}

// eventually polls cond until it holds or a deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, what, cond)
}

var errUnavailable = errors.New("service unavailable")
