package cache

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsfs/secretsfs/cache/cachetest"
)

// changeLog collects the changes a cache tells.
type changeLog struct {
	mu sync.Mutex
	ch []Change
}

func (l *changeLog) add(c Change) {
	l.mu.Lock()
	l.ch = append(l.ch, c)
	l.mu.Unlock()
}

func (l *changeLog) all() []Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ch)
}

func (e *env) subscribe() *changeLog {
	l := &changeLog{}
	e.t.Cleanup(e.c.Subscribe(l.add))
	return l
}

// gets lists the version ids GetSecretValue was asked for.
func (e *env) gets() []string {
	var out []string
	for _, c := range e.client.Log() {
		if c.Op == opG {
			out = append(out, c.SecretID+"@"+c.VersionID)
		}
	}
	return out
}

func TestIssue12_Listing_NoDescribeForListedSecrets(t *testing.T) {
	const T = time.Hour
	e := newEnv(t, func(c *Config) { c.RefreshAhead = time.Minute })
	names := e.putMany(5)
	e.list(ListFilter{})
	for _, n := range names {
		e.str(n)
	}
	e.calls(0, 5)
	// Three refresh intervals of listings every 5 minutes, secrets read
	// all along: not one DescribeSecret.
	for i := 0; i < int(3*T/(5*time.Minute)); i++ {
		e.clock.Advance(5 * time.Minute)
		e.list(ListFilter{})
		e.checkSchedule() // the background schedule follows the listing's expiry
		for _, n := range names {
			e.str(n)
		}
	}
	if d := e.client.Calls(opD); d != 0 {
		t.Fatalf("%d DescribeSecret calls while listings came", d)
	}
	if l := e.client.Calls(opL); l != 37 {
		t.Fatalf("%d ListSecrets calls, want 37", l)
	}
	// Listings stop: the background refresh takes over, spread out.
	e.rnd.Set(func(n int64) int64 { return 0 })
	e.clock.Advance(2 * T)
	eventually(t, "DescribeSecret refreshes resume once listings stop", func() bool {
		return e.client.Calls(opD) == len(names)
	})
}

func TestIssue12_Listing_ExplicitPassEveryIntervalNeedsNoDescribe(t *testing.T) {
	const T = time.Hour
	e := newEnv(t, func(c *Config) { c.RefreshAhead = time.Minute })
	e.rnd.Set(func(int64) int64 { return 0 }) // the earliest expiry jitter allows
	names := e.putMany(3)
	e.list(ListFilter{Names: names})
	for _, n := range names {
		e.str(n)
	}
	for range 5 {
		// Just short of T later, the background has not refreshed.
		e.clock.Advance(T - time.Second)
		e.list(ListFilter{Names: names})
		e.checkSchedule()
		e.clock.Advance(time.Second)
	}
	if d := e.client.Calls(opD); d != 0 {
		t.Fatalf("%d DescribeSecret calls with a listing every refresh interval", d)
	}
}

func TestIssue12_Listing_StageMoveFetchesOnlyTheNewVersion(t *testing.T) {
	e := newEnv(t, nil)
	names := e.putMany(4)
	e.list(ListFilter{})
	for _, n := range names {
		e.str(n)
	}
	changes := e.subscribe()
	old := e.info("s00").Stages["AWSCURRENT"]
	v2 := e.client.PutString("s00", "rotated")
	e.list(ListFilter{})
	if got := e.gets(); len(got) != 5 || got[4] != "s00@"+v2 {
		t.Fatalf("GetSecretValue calls %v; want one more, for s00@%s only", got, v2)
	}
	eventually(t, "the change told", func() bool {
		return slices.Contains(changes.all(), Change{SecretID: "s00", Stage: "AWSCURRENT", OldVersionID: old, NewVersionID: v2})
	})
	if got := e.str("s00"); got != "rotated" {
		t.Fatalf("after the listing s00 = %q", got)
	}
	// AWSPREVIOUS is the old AWSCURRENT: cached by id, no call.
	if got := e.strStage("s00", "AWSPREVIOUS"); got != "value of s00" {
		t.Fatalf("AWSPREVIOUS = %q", got)
	}
	// Three secrets rotated at once: their new values in one batch.
	for _, n := range names[1:] {
		e.client.PutString(n, "new "+n)
	}
	e.list(ListFilter{})
	if b, g, d := e.client.Calls(opB), e.client.Calls(opG), e.client.Calls(opD); b != 1 || g != 5 || d != 0 {
		t.Fatalf("after three rotations: %d batch, %d get, %d describe; want 1, 5, 0", b, g, d)
	}
	for _, n := range names[1:] {
		if got := e.str(n); got != "new "+n {
			t.Fatalf("%s = %q", n, got)
		}
	}
	if g := e.client.Calls(opG); g != 5 {
		t.Fatalf("reads after the batch made %d GetSecretValue calls", g-5)
	}
}

func TestIssue12_Listing_DeletedSecretDisappears(t *testing.T) {
	e := newEnv(t, nil)
	e.putMany(3)
	e.list(ListFilter{})
	e.str("s01")
	changes := e.subscribe()
	vid := e.info("s01").Stages["AWSCURRENT"]
	e.client.Delete("s01")
	e.list(ListFilter{})
	eventually(t, "the deletion told", func() bool {
		return slices.Contains(changes.all(), Change{SecretID: "s01", Stage: "AWSCURRENT", OldVersionID: vid})
	})
	if _, err := e.c.GetSecretString(context.Background(), "s01"); !isNotFound(err) {
		t.Fatalf("read of a deleted secret: %v, want not found", err)
	}
	if d := e.client.Calls(opD); d != 1 {
		t.Fatalf("%d DescribeSecret calls; want 1, for the secret the listing no longer names", d)
	}
	// A listing whose filter does not cover a cached secret says nothing
	// of it.
	e.list(ListFilter{NamePrefixes: []string{"s00"}})
	if d := e.client.Calls(opD); d != 1 {
		t.Fatalf("a listing of another prefix made %d DescribeSecret calls", d-1)
	}
}

// staleLister answers ListSecrets with pages recorded earlier, as a listing
// that trails the service would.
type staleLister struct {
	*cachetest.Client
	pages  []*secretsmanager.ListSecretsOutput
	during func() // called inside each ListSecrets, when set
}

func (s *staleLister) ListSecrets(ctx context.Context, in *secretsmanager.ListSecretsInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error) {
	if len(s.pages) == 0 {
		return nil, errors.New("no page recorded")
	}
	p := s.pages[0]
	s.pages = s.pages[1:]
	if s.during != nil {
		s.during()
	}
	return p, nil
}

func TestIssue12_Listing_TrailingListingDoesNotMoveStagesBack(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("a", "one")
	old, err := e.client.ListSecrets(context.Background(), &secretsmanager.ListSecretsInput{})
	if err != nil {
		t.Fatal(err)
	}
	stale := &staleLister{Client: e.client, pages: []*secretsmanager.ListSecretsOutput{old, old}}
	c, err := New(stale, e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v2 := e.client.PutString("a", "two")
	if err := c.RefreshNow(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	changes := &changeLog{}
	defer c.Subscribe(changes.add)()
	if _, err := c.List(context.Background(), ListFilter{}); err != nil {
		t.Fatal(err)
	}
	in, _ := c.Info("a")
	if in.Stages["AWSCURRENT"] != v2 {
		t.Fatalf("a trailing listing moved AWSCURRENT back to %s (was %s)", in.Stages["AWSCURRENT"], v2)
	}
	if s, err := c.GetSecretString(context.Background(), "a"); err != nil || s != "two" {
		t.Fatalf("read after a trailing listing = %q, %v", s, err)
	}

	// Without LastChangedDate: a refresh that started after the page was
	// asked for has the newer word, and the page moves nothing back.
	old.SecretList[0].LastChangedDate = nil
	v3 := e.client.PutString("a", "three")
	stale.pages = []*secretsmanager.ListSecretsOutput{old}
	stale.during = func() {
		if err := c.RefreshNow(context.Background(), "a"); err != nil {
			t.Error(err)
		}
	}
	if _, err := c.List(context.Background(), ListFilter{}); err != nil {
		t.Fatal(err)
	}
	in, _ = c.Info("a")
	if in.Stages["AWSCURRENT"] != v3 {
		t.Fatalf("AWSCURRENT = %s after a listing older than a refresh, want %s", in.Stages["AWSCURRENT"], v3)
	}
	for _, ch := range changes.all() {
		if ch.NewVersionID != v2 && ch.NewVersionID != v3 && ch.Stage == "AWSCURRENT" {
			t.Fatalf("a trailing listing told a change back: %+v", ch)
		}
	}
}

func TestIssue12_Listing_ListedSecretsDoNotThrashTheLRU(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxCacheSize = 4 })
	names := e.putMany(150) // two pages
	go func() {
		// The second page comes listPageGap after the first.
		for e.clock.Waiters() == 0 {
			time.Sleep(time.Millisecond)
		}
		e.clock.Advance(listPageGap)
	}()
	if got := e.list(ListFilter{}); len(got) != 150 {
		t.Fatalf("listed %d secrets, want 150", len(got))
	}
	if l := e.client.Calls(opL); l != 2 {
		t.Fatalf("%d ListSecrets pages, want 2", l)
	}
	for range 2 {
		for _, n := range names {
			e.str(n)
		}
	}
	// Each value fetched once: the 150 listed secrets stay beside the 4
	// that MaxCacheSize allows for others.
	e.calls(0, 150)
	if s := e.c.Stats().Secrets; s != 150 {
		t.Fatalf("%d secrets cached, want 150", s)
	}
}
