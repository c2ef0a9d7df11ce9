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
	calls               int // API calls made by the timed reads
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
			var per, refPer []time.Duration
			var ratios []float64
			for r := range rounds {
				var d, dRef time.Duration
				for i := range 2 {
					if (i+r)%2 == 0 {
						d = c.readAll(t, laps)
					} else {
						dRef = ref.readAll(t, refLaps)
					}
				}
				per, refPer = append(per, d), append(refPer, dRef)
				ratios = append(ratios, float64(d)/float64(dRef))
			}
			f.perRead, f.refPerRead, f.flatness = testutil.Median(per), testutil.Median(refPer), testutil.MedianFloat(ratios)
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
		{"flatness (per read / reference)"},
		{"API calls during the timed reads"},
	}
	for _, f := range all {
		cells[0] = append(cells[0], fmt.Sprintf("N=%d", f.n))
		cells[1] = append(cells[1], fmt.Sprintf("%.0f", f.heapPerSecret))
		cells[2] = append(cells[2], fmt.Sprint(f.perRead.Nanoseconds()))
		cells[3] = append(cells[3], fmt.Sprint(f.refPerRead.Nanoseconds()))
		cells[4] = append(cells[4], fmt.Sprintf("%.2f", f.flatness))
		cells[5] = append(cells[5], fmt.Sprint(f.calls))
		if f.calls != 0 {
			t.Errorf("N = %d: cached reads made %d API calls, want 0", f.n, f.calls)
		}
		if !(f.heapPerSecret > 0) || f.perRead <= 0 || !(f.flatness > 0) {
			t.Errorf("N = %d: heap per secret %.0f, per read %v, flatness %v; want all positive", f.n, f.heapPerSecret, f.perRead, f.flatness)
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
