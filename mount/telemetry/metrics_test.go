package telemetry

import (
	"testing"
)

// TestDefect9_22_OnChangeRunsAreShownBeforeAnyHookRuns: the documented
// series of secretsfs_on_change_runs_total, outcome ok and failed, are on
// /metrics from the start, at 0, so that a rate or an alert on failures
// works before the first run.
func TestDefect9_22_OnChangeRunsAreShownBeforeAnyHookRuns(t *testing.T) {
	m := NewMetrics(false)
	runs := func() map[string]float64 {
		t.Helper()
		fams, err := m.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, f := range fams {
			if f.GetName() != "secretsfs_on_change_runs_total" {
				continue
			}
			for _, s := range f.GetMetric() {
				for _, l := range s.GetLabel() {
					if l.GetName() == "outcome" {
						out[l.GetValue()] = s.GetCounter().GetValue()
					}
				}
			}
		}
		return out
	}
	if got := runs(); len(got) != 2 || got["ok"] != 0 || got["failed"] != 0 {
		t.Fatalf("before any run: %v, want ok and failed at 0", got)
	}
	m.HookRan(false)
	if got := runs(); got["ok"] != 0 || got["failed"] != 1 {
		t.Fatalf("after a failed run: %v", got)
	}
}

// TestNoMetricsAreNilObservers: without --metrics-listen there are no
// Metrics; their observers are nil interfaces, never ones holding a nil
// pointer (which the cache and fs would call), and HookRan does nothing.
func TestNoMetricsAreNilObservers(t *testing.T) {
	var m *Metrics
	if o := m.CacheObserver(); o != nil {
		t.Errorf("CacheObserver of no metrics = %#v, want a nil interface", o)
	}
	if o := m.FSObserver(); o != nil {
		t.Errorf("FSObserver of no metrics = %#v, want a nil interface", o)
	}
	m.HookRan(true)
	m = NewMetrics(false)
	if m.CacheObserver() == nil || m.FSObserver() == nil {
		t.Error("metrics built, but an observer is nil")
	}
}
