package cache

import (
	"context"
	"testing"
)

// BenchmarkGetSecretString measures the cached hit path: a read of a value
// already in the cache, which makes no API call.
func BenchmarkGetSecretString(b *testing.B) {
	client := newBenchClient()
	cfg := DefaultConfig()
	c, err := New(client, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.GetSecretString(ctx, "db"); err != nil {
		b.Fatal(err)
	}
	before := c.Stats().APICalls
	check := func(b *testing.B) {
		after := c.Stats().APICalls
		for op, n := range after {
			if n != before[op] {
				b.Fatalf("%s calls went from %d to %d on the hit path", op, before[op], n)
			}
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.GetSecretString(ctx, "db"); err != nil {
				b.Fatal(err)
			}
		}
		check(b)
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.GetSecretString(ctx, "db"); err != nil {
					b.Error(err)
					return
				}
			}
		})
		check(b)
	})
	b.Run("binary-serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.GetSecretBinary(ctx, "bin"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
