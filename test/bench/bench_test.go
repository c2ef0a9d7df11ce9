package bench

import (
	"math"
	"testing"
)

// BenchmarkOpenReadClose measures open+read+close of a cached 100-byte
// secret through secretsfs in both serving modes and on the baselines, in
// one run. Each target runs b.N iterations in total, spread over 20
// interleaved rounds. Reproduce the README's figures with
//
//	go test -run XXX -bench OpenReadClose -benchtime 40000x ./test/bench/
//
// It reports each target's median ns/op as "<target>-ns/op" and the ratios
// as "<target>/<baseline>"; the usual ns/op is left out, since one iteration
// here is six measurements.
func BenchmarkOpenReadClose(b *testing.B) {
	e := startEnv(b, 1000)
	// A sub-benchmark, so that the daemons start once while the framework
	// picks b.N.
	b.Run("interleaved", func(b *testing.B) {
		const rounds = 20
		rep, err := e.measure(config{rounds: rounds, iterations: max(1, b.N/rounds)})
		if err != nil {
			b.Fatal(err)
		}
		if rep.apiCalls != 0 {
			b.Fatalf("the daemons made %d Secrets Manager calls during the loops: the figures are not the cache's", rep.apiCalls)
		}
		b.ReportMetric(0, "ns/op")
		for _, r := range rep.results {
			b.ReportMetric(float64(r.median.Nanoseconds()), r.name+"-ns/op")
		}
		for _, r := range rep.ratios {
			b.ReportMetric(r.value, r.name)
		}
		if b.N > 1 { // not the framework's first probe
			b.Logf("N=%d per target in %d rounds\n%s", b.N, rounds, rep.table())
		}
	})
}

// TestBenchmarkHarness runs the benchmark's harness with few iterations and
// checks what does not depend on timing: every target serves the secret's
// 100 bytes on every read, the daemons made no Secrets Manager call during
// the loops after their first fetch, and every ratio is computed.
func TestBenchmarkHarness(t *testing.T) {
	e := startEnv(t, 20)
	// Both daemons fetched the secret during the warm-up.
	if got := e.emu.Calls("GetSecretValue"); got < 2 {
		t.Fatalf("GetSecretValue calls after the warm-up = %d, want at least one per secretsfs daemon", got)
	}
	rep, err := e.measure(config{rounds: 3, iterations: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep.table())
	if rep.apiCalls != 0 {
		t.Errorf("the daemons made %d Secrets Manager calls during the loops, want 0", rep.apiCalls)
	}
	if len(rep.results) != 6 {
		t.Errorf("got %d targets, want 6", len(rep.results))
	}
	for _, r := range rep.results {
		if len(r.perOp) != 3 || r.median <= 0 {
			t.Errorf("%s: %d rounds, median %v; want 3 rounds and a positive median", r.name, len(r.perOp), r.median)
		}
	}
	if len(rep.ratios) != len(ratioSpecs()) {
		t.Errorf("got %d ratios, want %d", len(rep.ratios), len(ratioSpecs()))
	}
	for _, r := range rep.ratios {
		if !(r.value > 0) || math.IsInf(r.value, 0) {
			t.Errorf("ratio %s = %v, want positive and finite", r.name, r.value)
		}
	}
}
