package scale

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
)

// fakeBaseline is the size the fake-client flatness is measured against.
const fakeBaseline = 1000

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
	heapPerSecret float64       // bytes of Go heap per cached secret
	perRead       time.Duration // per cached GetValue over all n, median of the rounds
	flatness      float64       // perRead / perRead at fakeBaseline
	calls         int           // API calls made by the timed reads
}

// TestScaleFakeClient measures a cache.Cache of N secrets over the fake
// client, with no FUSE, at each size of SECRETSFS_SCALE_FAKE (1 000 and
// 5 000 without it); see the package documentation.
func TestScaleFakeClient(t *testing.T) {
	ns := withBaseline(sizes(t, "SECRETSFS_SCALE_FAKE", 1000, 5000), fakeBaseline)
	var all []fakeFigures
	for _, n := range ns {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			if raceEnabled && n > 10000 {
				t.Skipf("N = %d is too slow under the race detector; run without -race", n)
			}
			all = append(all, measureFake(t, n))
		})
	}
	if len(all) == 0 || all[0].n != fakeBaseline {
		t.Fatalf("no figures at N = %d to compare with", fakeBaseline)
	}
	cells := [][]string{{"figure (cache.Cache, fake client, every value read)"}, {"Go heap per secret (bytes)"}, {"ns per cached GetValue"}, {fmt.Sprintf("flatness (per read / at N=%d)", fakeBaseline)}, {"API calls during the timed reads"}}
	for i := range all {
		f := &all[i]
		f.flatness = float64(f.perRead) / float64(all[0].perRead)
		cells[0] = append(cells[0], fmt.Sprintf("N=%d", f.n))
		cells[1] = append(cells[1], fmt.Sprintf("%.0f", f.heapPerSecret))
		cells[2] = append(cells[2], fmt.Sprint(f.perRead.Nanoseconds()))
		cells[3] = append(cells[3], fmt.Sprintf("%.2f", f.flatness))
		cells[4] = append(cells[4], fmt.Sprint(f.calls))
		if f.calls != 0 {
			t.Errorf("N = %d: cached reads made %d API calls, want 0", f.n, f.calls)
		}
		if !(f.heapPerSecret > 0) || f.perRead <= 0 {
			t.Errorf("N = %d: heap per secret %.0f, per read %v; want both positive", f.n, f.heapPerSecret, f.perRead)
		}
	}
	t.Logf("\n%s", render(cells))
}

// measureFake fills a cache with n secrets read through the fake client,
// then times cached reads of every one.
func measureFake(t *testing.T, n int) fakeFigures {
	f := fakeFigures{n: n}
	ctx := context.Background()
	fake := cachetest.NewClient()
	ids := make([]string, n)
	for i := range n {
		ids[i] = secretName(i)
		fake.PutString(ids[i], secretValue(i, 0))
	}
	cfg := cache.DefaultConfig()
	cfg.MaxCacheSize = n
	cfg.Clock = cachetest.NewClock(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	c, err := cache.New(copyingClient{fake}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	logged := len(fake.Log())
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	for i, id := range ids {
		v, err := c.GetValue(ctx, id, "")
		if err != nil {
			t.Fatal(err)
		}
		if string(v.Data) != secretValue(i, 0) {
			t.Fatalf("%s: wrong value", id)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	// The fake keeps a log of its calls; that is not the cache's.
	logBytes := (len(fake.Log()) - logged) * int(unsafe.Sizeof(cachetest.Call{}))
	f.heapPerSecret = (float64(m1.HeapAlloc) - float64(m0.HeapAlloc) - float64(logBytes)) / float64(n)

	calls := len(fake.Log())
	rounds := make([]time.Duration, 3)
	for r := range rounds {
		start := time.Now()
		for _, id := range ids {
			if _, err := c.GetValue(ctx, id, ""); err != nil {
				t.Fatal(err)
			}
		}
		rounds[r] = time.Since(start) / time.Duration(n)
	}
	f.perRead = median(rounds)
	f.calls = len(fake.Log()) - calls
	runtime.KeepAlive(c)
	return f
}
