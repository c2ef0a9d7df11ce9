package scale

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// fakeReference is the size of the cache the fake-client flatness is
// measured against.
const fakeReference = 1000

// copyingClient is the fake client answering each GetSecretValue with a
// value of its own, as the SDK decoding a response does, so that the cache's
// heap holds its own copy of every value instead of sharing the fake's.
type copyingClient struct{ *cachetest.Client }

func (c copyingClient) GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	out, err := c.Client.GetSecretValue(ctx, in, opts...)
	if err == nil && out.SecretString != nil {
		out.SecretString = aws.String(strings.Clone(*out.SecretString))
	}
	return out, err
}

// fakeFigures are what one size measured through the fake client.
type fakeFigures struct {
	n             int
	heapPerSecret float64 // bytes of Go heap per cached secret
	// Per cached GetValue over all n, median of the rounds, and the same on
	// the reference cache in the rounds next to them; the flatness is the
	// median of the rounds' ratios.
	perRead, refPerRead time.Duration
	flatness            float64
	// The baseline in the same rounds: a map of as many values of the same
	// size, read with a copy out in the same order, at n and at the
	// reference's size; its flatness is the memory hierarchy's share.
	basePerRead, baseRefPerRead time.Duration
	baseFlatness                float64
	// relative is the median of the rounds' cache flatness divided by the
	// baseline's: the cost per read that grows with n beyond what any store
	// in memory pays.
	relative float64
	calls    int // API calls made by the timed reads
}

// TestScaleFakeClient measures a cache.Cache of N secrets over the fake
// client, with no FUSE, at each size of SECRETSFS_SCALE_FAKE (1 000 and
// 5 000 without it); see the package documentation.
func TestScaleFakeClient(t *testing.T) {
	ns := sizes(t, "SECRETSFS_SCALE_FAKE", 1000, 5000)
	// Rounds of at least minRound reads each, so that one preemption on a
	// busy machine does not decide a figure; fewer in the normal test run.
	rounds, minRound := 5, 100000
	if os.Getenv("SECRETSFS_SCALE_FAKE") == "" {
		rounds, minRound = 3, 20000
	}
	ref, _ := newFakeCache(t, fakeReference)
	baseRef := newBaseline(fakeReference)
	var all []fakeFigures
	for _, n := range ns {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			if raceEnabled && n > 10000 {
				t.Skipf("N = %d is too slow under the race detector; run without -race", n)
			}
			c, heap := newFakeCache(t, n)
			f := fakeFigures{n: n, heapPerSecret: heap}
			calls := len(c.fake.Log())
			// Each round reads at least minRound values, the reference as
			// many.
			laps := max(1, minRound/n)
			refLaps := laps * n / fakeReference
			base := newBaseline(n)
			var per, refPer, basePer, baseRefPer []time.Duration
			var ratios, baseRatios, relative []float64
			for r := range rounds {
				// The four in turn, each round starting with the next.
				var d [4]time.Duration
				for i := range 4 {
					switch (i + r) % 4 {
					case 0:
						d[0] = c.readAll(t, laps)
					case 1:
						d[1] = ref.readAll(t, refLaps)
					case 2:
						d[2] = base.readAll(laps)
					case 3:
						d[3] = baseRef.readAll(refLaps)
					}
				}
				per, refPer = append(per, d[0]), append(refPer, d[1])
				basePer, baseRefPer = append(basePer, d[2]), append(baseRefPer, d[3])
				flat, baseFlat := float64(d[0])/float64(d[1]), float64(d[2])/float64(d[3])
				ratios, baseRatios = append(ratios, flat), append(baseRatios, baseFlat)
				relative = append(relative, flat/baseFlat)
			}
			f.perRead, f.refPerRead, f.flatness = testutil.Median(per), testutil.Median(refPer), testutil.MedianFloat(ratios)
			f.basePerRead, f.baseRefPerRead = testutil.Median(basePer), testutil.Median(baseRefPer)
			f.baseFlatness, f.relative = testutil.MedianFloat(baseRatios), testutil.MedianFloat(relative)
			f.calls = len(c.fake.Log()) - calls
			all = append(all, f)
		})
	}
	if len(all) == 0 {
		t.Fatal("no size was measured")
	}
	cells := [][]string{
		{"figure (cache.Cache, fake client, every value read)"},
		{"Go heap per secret (bytes)"},
		{"ns per cached GetValue"},
		{fmt.Sprintf("  same, reference cache of %d", fakeReference)},
		{"raw flatness (per read / reference)"},
		{"baseline: ns per read of a map[string][]byte of N, copied out"},
		{fmt.Sprintf("  same, map of %d", fakeReference)},
		{"baseline flatness (memory hierarchy)"},
		{"flatness relative to the baseline (target <= 1.5)"},
		{"API calls during the timed reads"},
	}
	for _, f := range all {
		cells[0] = append(cells[0], fmt.Sprintf("N=%d", f.n))
		cells[1] = append(cells[1], fmt.Sprintf("%.0f", f.heapPerSecret))
		cells[2] = append(cells[2], fmt.Sprint(f.perRead.Nanoseconds()))
		cells[3] = append(cells[3], fmt.Sprint(f.refPerRead.Nanoseconds()))
		cells[4] = append(cells[4], fmt.Sprintf("%.2f", f.flatness))
		cells[5] = append(cells[5], fmt.Sprint(f.basePerRead.Nanoseconds()))
		cells[6] = append(cells[6], fmt.Sprint(f.baseRefPerRead.Nanoseconds()))
		cells[7] = append(cells[7], fmt.Sprintf("%.2f", f.baseFlatness))
		cells[8] = append(cells[8], fmt.Sprintf("%.2f", f.relative))
		cells[9] = append(cells[9], fmt.Sprint(f.calls))
		if f.calls != 0 {
			t.Errorf("N = %d: cached reads made %d API calls, want 0", f.n, f.calls)
		}
		if !(f.heapPerSecret > 0) || f.perRead <= 0 || !(f.flatness > 0) || f.basePerRead <= 0 || !(f.relative > 0) {
			t.Errorf("N = %d: heap per secret %.0f, per read %v, flatness %v, baseline per read %v, relative flatness %v; want all positive",
				f.n, f.heapPerSecret, f.perRead, f.flatness, f.basePerRead, f.relative)
		}
	}
	t.Logf("\n%s", render(cells))
}

// fakeCache is a cache over the fake client holding n secrets.
type fakeCache struct {
	c    *cache.Cache
	fake *cachetest.Client
	ids  []string
}

// newFakeCache fills a cache with n secrets, every value read through the
// fake client, and returns it with the Go heap it takes per secret.
func newFakeCache(tb testing.TB, n int) (*fakeCache, float64) {
	tb.Helper()
	fc := &fakeCache{fake: cachetest.NewClient(), ids: make([]string, n)}
	for i := range n {
		fc.ids[i] = secretName(i)
		fc.fake.PutString(fc.ids[i], secretValue(i, 0))
	}
	cfg := cache.DefaultConfig()
	cfg.MaxCacheSize = n
	cfg.Clock = cachetest.NewClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	var err error
	if fc.c, err = cache.New(copyingClient{fc.fake}, cfg); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { fc.c.Close() })

	logged := len(fc.fake.Log())
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i, id := range fc.ids {
		v, err := fc.c.GetValue(context.Background(), id, "")
		if err != nil {
			tb.Fatal(err)
		}
		if string(v.Data) != secretValue(i, 0) {
			tb.Fatalf("%s: wrong value", id)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	// The fake keeps a log of its calls; that is not the cache's.
	logBytes := (len(fc.fake.Log()) - logged) * int(unsafe.Sizeof(cachetest.Call{}))
	return fc, (float64(m1.HeapAlloc) - float64(m0.HeapAlloc) - float64(logBytes)) / float64(n)
}

// readAll reads every secret laps times through the cache and returns the
// time per read, after an untimed lap over the first fakeReference secrets.
func (fc *fakeCache) readAll(tb testing.TB, laps int) time.Duration {
	tb.Helper()
	ctx := context.Background()
	for _, id := range fc.ids[:min(len(fc.ids), fakeReference)] { // settle, untimed
		if _, err := fc.c.GetValue(ctx, id, ""); err != nil {
			tb.Fatal(err)
		}
	}
	start := time.Now()
	for range laps {
		for _, id := range fc.ids {
			if _, err := fc.c.GetValue(ctx, id, ""); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return time.Since(start) / time.Duration(laps*len(fc.ids))
}

// baseline is the smallest store in memory doing a cached read's work: a
// map of n values of the secrets' size, each read with a copy out, in the
// cache's order. What a read of it costs more at n than at fakeReference is
// the memory hierarchy's doing (a working set that leaves the processor's
// caches), which no store of n values avoids.
type baseline struct {
	values map[string][]byte
	ids    []string
	sink   int // the copies' lengths, so that no read is optimised away
}

func newBaseline(n int) *baseline {
	b := &baseline{values: make(map[string][]byte, n), ids: make([]string, n)}
	for i := range n {
		b.ids[i] = secretName(i)
		b.values[b.ids[i]] = []byte(secretValue(i, 0))
	}
	return b
}

// readAll reads every value laps times, as fakeCache.readAll does, and
// returns the time per read.
func (b *baseline) readAll(laps int) time.Duration {
	read := func(id string) {
		v := append([]byte(nil), b.values[id]...)
		b.sink += len(v)
	}
	for _, id := range b.ids[:min(len(b.ids), fakeReference)] { // settle, untimed
		read(id)
	}
	start := time.Now()
	for range laps {
		for _, id := range b.ids {
			read(id)
		}
	}
	return time.Since(start) / time.Duration(laps*len(b.ids))
}
