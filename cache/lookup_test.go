package cache

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/secretsfs/secretsfs/cache/cachetest"
)

func TestLookupAsksEveryTimeAndKeepsOnlyWhatIsWanted(t *testing.T) {
	e := newEnv(t, nil)
	v1 := e.client.PutString("team/a", "s1")
	e.client.Update("team/a", func(s *cachetest.Secret) { s.Tags = map[string]string{"team": "a"} })
	e.client.PutString("team/b", "s2")
	ctx := context.Background()
	no := func(SecretInfo) bool { return false }
	yes := func(SecretInfo) bool { return true }

	// An unwanted secret is described, not cached.
	in, err := e.c.Lookup(ctx, "team/b", no)
	if err != nil || in.Name != "team/b" || len(in.Tags) != 0 {
		t.Fatalf("Lookup(team/b) = %+v, %v", in, err)
	}
	if _, ok := e.c.Info("team/b"); ok {
		t.Fatal("an unwanted secret was cached")
	}
	// A missing one neither.
	if _, err := e.c.Lookup(ctx, "team/missing", yes); !isNotFound(err) {
		t.Fatalf("Lookup(missing): %v, want not found", err)
	}
	if n := e.c.Stats().Secrets; n != 0 {
		t.Fatalf("%d secrets cached after lookups of an unwanted and a missing secret", n)
	}
	e.calls(2, 0)

	// A wanted one is kept: its first read needs no second DescribeSecret.
	in, err = e.c.Lookup(ctx, "team/a", func(in SecretInfo) bool { return in.Tags["team"] == "a" })
	if err != nil || in.Stages["AWSCURRENT"] != v1 || in.ARN == "" {
		t.Fatalf("Lookup(team/a) = %+v, %v", in, err)
	}
	if got := e.str("team/a"); got != "s1" {
		t.Fatalf("read %q", got)
	}
	e.calls(3, 1)

	// A cached answer does not stand in for a lookup: a tag removed since
	// shows at once, and the entry stays as it was.
	e.client.Update("team/a", func(s *cachetest.Secret) { s.Tags = nil })
	in, err = e.c.Lookup(ctx, "team/a", no)
	if err != nil || len(in.Tags) != 0 {
		t.Fatalf("Lookup after the tag was removed = %+v, %v", in, err)
	}
	e.calls(4, 1)
	if got := e.str("team/a"); got != "s1" {
		t.Fatalf("read after the lookup %q", got)
	}
	e.calls(4, 1)
}

func TestLookupsOfUnknownIdsEvictNothing(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxCacheSize = 2 })
	e.client.PutString("a", "1")
	e.client.PutString("b", "2")
	e.str("a")
	e.str("b")
	for i := range 50 {
		if _, err := e.c.Lookup(context.Background(), fmt.Sprintf("made-up-%d", i), func(SecretInfo) bool { return true }); !isNotFound(err) {
			t.Fatalf("lookup %d: %v", i, err)
		}
	}
	if ids := e.c.SecretIDs(); !slices.Equal(ids, []string{"b", "a"}) {
		t.Fatalf("cached after the lookups: %v, want [b a]", ids)
	}
	e.client.FailAlways(opD, errThrottled())
	e.client.FailAlways(opG, errThrottled())
	if e.str("a") != "1" || e.str("b") != "2" {
		t.Fatal("the cached values changed")
	}
}
