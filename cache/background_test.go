package cache

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/secretsfs/secretsfs/cache/cachetest"
)

func TestBackgroundRefreshBeforeExpiryKeepsReadsOffTheNetwork(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RefreshAhead = time.Minute })
	changes := make(chan Change, 10)
	defer e.c.Subscribe(func(c Change) { changes <- c })()
	v1 := e.client.PutString("db", "s1")
	e.str("db")
	eventually(t, "the scheduler to set its alarm", func() bool { return e.clock.Waiters() > 0 })
	v2 := e.client.PutString("db", "s2")
	e.clock.Advance(hour - time.Minute)
	eventually(t, "the background refresh and prefetch", func() bool {
		return e.client.Calls(opD) == 2 && e.client.Calls(opG) == 2
	})
	misses := e.c.Stats().Misses
	if got := e.str("db"); got != "s2" {
		t.Fatalf("read after background refresh = %q", got)
	}
	if m := e.c.Stats().Misses; m != misses {
		t.Fatalf("the read waited for the network (misses %d -> %d)", misses, m)
	}
	e.calls(2, 2)

	var got []Change
	for len(got) < 2 {
		select {
		case c := <-changes:
			got = append(got, c)
		case <-time.After(10 * time.Second):
			t.Fatalf("changes so far: %+v", got)
		}
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Stage < got[j].Stage })
	want := []Change{
		{SecretID: "db", Stage: "AWSCURRENT", OldVersionID: v1, NewVersionID: v2},
		{SecretID: "db", Stage: "AWSPREVIOUS", NewVersionID: v1},
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("change %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestBackgroundRefreshOnlyForSecretsInUse(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RefreshAhead = time.Minute })
	e.client.PutString("db", "s1")
	e.str("db")
	eventually(t, "the scheduler to set its alarm", func() bool { return e.clock.Waiters() > 0 })
	e.clock.Advance(hour - time.Minute)
	eventually(t, "the background refresh", func() bool { return e.client.Calls(opD) == 2 })
	// Not read since: nothing more is scheduled for it.
	e.noBackgroundRefresh("db")
}

func TestPinnedSecretKeepsRefreshing(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RefreshAhead = time.Minute })
	e.client.PutString("db", "s1")
	e.str("db")
	unpin := e.c.Pin("db")
	for want := 2; want <= 4; want++ {
		eventually(t, "the scheduler to set its alarm", func() bool { return e.clock.Waiters() > 0 })
		e.clock.Advance(hour)
		eventually(t, "a background refresh", func() bool { return e.client.Calls(opD) == want })
	}
	unpin()
	e.noBackgroundRefresh("db")
}

// noBackgroundRefresh waits for a background refresh of id to finish and
// asserts that no further one is scheduled.
func (e *env) noBackgroundRefresh(id string) {
	e.t.Helper()
	ent := e.c.entry(id)
	eventually(e.t, "the refresh to finish", func() bool {
		ent.mu.Lock()
		defer ent.mu.Unlock()
		e.c.sched.mu.Lock()
		defer e.c.sched.mu.Unlock()
		return !ent.sched.busy
	})
	ent.mu.Lock()
	_, scheduled := e.c.backgroundTimeLocked(ent)
	ent.mu.Unlock()
	if scheduled {
		e.t.Fatalf("%s is still scheduled for a background refresh: neither read since its last refresh nor pinned", id)
	}
}

func TestBackgroundRetriesFollowBackoff(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RefreshAhead = time.Minute })
	e.client.PutString("db", "s1")
	e.str("db")
	e.c.Pin("db")
	e.client.FailAlways(opD, errThrottled())
	eventually(t, "alarm", func() bool { return e.clock.Waiters() > 0 })
	e.clock.Advance(hour)
	eventually(t, "first failed background refresh", func() bool { return e.client.Calls(opD) == 2 })
	for i, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		eventually(t, "retry alarm", func() bool { return e.info("db").ErrorCount == i+1 && e.clock.Waiters() > 0 })
		if got := e.info("db").NextRefresh.Sub(e.clock.Now()); got != wait {
			t.Fatalf("retry %d in %v, want %v", i, got, wait)
		}
		e.clock.Advance(wait)
		eventually(t, "a background retry", func() bool { return e.client.Calls(opD) == 3+i })
	}
	if got := e.str("db"); got != "s1" {
		t.Fatalf("stale read = %q", got)
	}
}

func TestNextRotationDateBringsRefreshForward(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	e.client.Update("db", func(s *cachetest.Secret) { s.NextRotationDate = aws.Time(t0.Add(10 * time.Minute)) })
	e.str("db")
	if got := e.info("db").NextRefresh; !got.Equal(t0.Add(10*time.Minute + 10*time.Second)) {
		t.Fatalf("next refresh %v, want 10 s after the rotation date", got.Sub(t0))
	}
	// A rotation date already past does not bring it forward.
	e.client.Update("db", func(s *cachetest.Secret) { s.NextRotationDate = aws.Time(t0) })
	e.clock.Advance(11 * time.Minute)
	e.str("db")
	if got := e.info("db").NextRefresh.Sub(e.clock.Now()); got != hour {
		t.Fatalf("next refresh in %v, want the full interval", got)
	}
}

func TestSubscribeCancelStopsDelivery(t *testing.T) {
	e := newEnv(t, nil)
	e.client.PutString("db", "s1")
	e.str("db")
	got := make(chan Change, 10)
	cancel := e.c.Subscribe(func(c Change) { got <- c })
	cancel()
	cancel() // idempotent
	e.client.PutString("db", "s2")
	if err := e.c.RefreshNow(context.Background(), "db"); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		t.Fatalf("change delivered after cancel: %+v", c)
	default:
	}
}

func TestCloseIsIdempotentAndReadsStillWork(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.RefreshAhead = time.Minute })
	e.client.PutString("db", "s1")
	e.c.Close()
	e.c.Close()
	if got := e.str("db"); got != "s1" {
		t.Fatalf("read after Close = %q", got)
	}
}

func TestInfoAndStats(t *testing.T) {
	e := newEnv(t, nil)
	v1 := e.client.PutString("db", "s1")
	e.client.Update("db", func(s *cachetest.Secret) { s.Tags = map[string]string{"team": "payments"} })
	if _, ok := e.c.Info("db"); ok {
		t.Fatal("Info of an uncached secret")
	}
	e.str("db")
	e.str("db")
	in := e.info("db")
	if in.Stages["AWSCURRENT"] != v1 || len(in.Versions) != 1 || in.Versions[0].VersionID != v1 ||
		!in.Versions[0].FetchedAt.Equal(t0) || !in.RefreshedAt.Equal(t0) || in.Stale || in.Name != "db" ||
		len(in.Tags) != 1 || in.Tags["team"] != "payments" {
		t.Fatalf("info %+v", in)
	}
	st := e.c.Stats()
	if st.Hits != 1 || st.Misses != 1 || st.APICalls[OpDescribeSecret] != 1 || st.APICalls[OpGetSecretValue] != 1 || st.Errors != 0 || st.Secrets != 1 {
		t.Fatalf("stats %+v", st)
	}
	if ids := e.c.SecretIDs(); len(ids) != 1 || ids[0] != "db" {
		t.Fatalf("ids %v", ids)
	}
	v, err := e.c.GetValue(context.Background(), "db", "")
	if err != nil || v.VersionID != v1 || len(v.Stages) != 1 || v.Stages[0] != "AWSCURRENT" || v.ARN != e.client.ARN("db") || v.Binary {
		t.Fatalf("value %+v, %v", v, err)
	}
}

func TestDescribeFetchesNoValue(t *testing.T) {
	e := newEnv(t, nil)
	v1 := e.client.PutString("db", "s1")
	in, err := e.c.Describe(context.Background(), "db")
	if err != nil || in.Stages["AWSCURRENT"] != v1 {
		t.Fatalf("Describe = %+v, %v", in, err)
	}
	e.c.Describe(context.Background(), "db")
	e.calls(1, 0)
	if _, err := e.c.Describe(context.Background(), "missing"); !isNotFound(err) {
		t.Fatalf("missing: %v", err)
	}
	e.client.Update("db", func(s *cachetest.Secret) { s.Deleted = true })
	e.clock.Advance(hour)
	if _, err := e.c.Describe(context.Background(), "db"); !isNotFound(err) {
		t.Fatalf("scheduled for deletion: %v", err)
	}
}
