package telemetry

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
)

// countingView is a cache of n read secrets, the first unservable, the
// second stale; it
// counts the walks of every secret (SecretIDs) and the failed calls.
type countingView struct {
	ids    []string
	walks  atomic.Int64
	errors atomic.Int64
}

func newCountingView(n int) *countingView {
	v := &countingView{ids: make([]string, n)}
	for i := range v.ids {
		v.ids[i] = fmt.Sprintf("s%05d", i)
	}
	return v
}

func (v *countingView) Stats() cache.Stats {
	return cache.Stats{Errors: v.errors.Load(), Secrets: len(v.ids)}
}

func (v *countingView) SecretIDs() []string {
	v.walks.Add(1)
	return v.ids
}

func (v *countingView) Info(id string) (cache.SecretInfo, bool) {
	in := cache.SecretInfo{SecretID: id, Read: true, RefreshedAt: time.Unix(1, 0)}
	switch id {
	case v.ids[0]: // no value
		in.LastError = errors.New("access denied")
	case v.ids[1]: // stale, served
		in.Stale, in.LastError = true, errors.New("throttled")
	}
	return in, true
}

// TestIssue12_Flat_ProbesAndScrapesShareOneWalkPerSecond: /healthz and a
// metrics scrape must look at every secret read (a health answer is about
// each of them), so the walk is bounded instead: probes and scrapes share
// one walk of the cache while it makes no call, for a second at most (by
// the injected clock); a call (here a failed one) has the next request
// walk again. A scrape of 10 000 secrets then allocates what a scrape of
// 100 does.
func TestIssue12_Flat_ProbesAndScrapesShareOneWalkPerSecond(t *testing.T) {
	clock := cachetest.NewClock(time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC))
	setup := func(n int) (*countingView, *Health, *Metrics) {
		v := newCountingView(n)
		h := NewHealth(v, 0, clock)
		h.SetMounted(true)
		m := NewMetrics(false)
		m.Watch(Source{Cache: v, Served: func() int { return n }}, h)
		return v, h, m
	}
	scrape := func(m *Metrics) {
		if _, err := m.reg.Gather(); err != nil {
			t.Fatal(err)
		}
	}
	v, h, m := setup(10_000)
	for range 20 {
		scrape(m)
		if r := h.Check(); r.Healthy || r.Secrets != 10_000 || len(r.Unservable) != 1 || r.Unservable[0].SecretID != "s00000" {
			t.Fatalf("report = healthy %v, %d checked, %d unservable", r.Healthy, r.Secrets, len(r.Unservable))
		}
	}
	if n := v.walks.Load(); n != 1 {
		t.Fatalf("20 scrapes and 20 probes in one second walked the cache %d times, want once", n)
	}
	clock.Advance(time.Second)
	h.Check()
	scrape(m)
	if n := v.walks.Load(); n != 2 {
		t.Fatalf("a second later: %d walks, want 2", n)
	}
	v.errors.Add(1)
	h.Check()
	if n := v.walks.Load(); n != 3 {
		t.Fatalf("after a failed call: %d walks, want a new one at once (3)", n)
	}
	if got := gauge(t, m, "secretsfs_stale_secrets"); got != 1 {
		t.Fatalf("secretsfs_stale_secrets = %v, want 1", got)
	}

	perScrape := func(n int) float64 {
		_, _, m := setup(n)
		scrape(m) // the walk of this second
		return testing.AllocsPerRun(20, func() { scrape(m) })
	}
	small, large := perScrape(100), perScrape(10_000)
	t.Logf("allocations per scrape: %.0f with 100 secrets, %.0f with 10 000", small, large)
	if large > small*1.1+50 {
		t.Fatalf("a scrape allocates %.0f times with 10 000 secrets, %.0f with 100", large, small)
	}
}

// gauge reads one gauge of m.
func gauge(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
