package mount

import (
	"context"
	"errors"
	iofs "io/fs"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
	sfs "github.com/secretsfs/secretsfs/fs"
)

func newTestStore(t *testing.T) (store, *cachetest.Client) {
	t.Helper()
	client := cachetest.NewClient()
	cfg := cache.DefaultConfig()
	c, err := cache.New(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return store{c: c}, client
}

func TestStoreValueAndStages(t *testing.T) {
	s, client := newTestStore(t)
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	v1 := client.PutVersion("app/db", cachetest.Version{String: strp("one"), Created: created})
	client.SetStage("app/db", "AWSCURRENT", v1)
	client.SetStage("app/db", "custom", v1)
	ctx := context.Background()

	v, err := s.Value(ctx, "app/db", "")
	if err != nil {
		t.Fatal(err)
	}
	if string(v.Data) != "one" || v.VersionID != v1 || v.ARN != client.ARN("app/db") || !v.CreatedDate.Equal(created) || v.Stale || v.FetchedAt.IsZero() {
		t.Fatalf("Value() = %+v", v)
	}
	if got := slices.Sorted(slices.Values(v.Stages)); !slices.Equal(got, []string{"AWSCURRENT", "custom"}) {
		t.Fatalf("Stages = %v", got)
	}
	v.Data[0] = 'X' // the caller's copy
	if again, _ := s.Value(ctx, "app/db", "AWSCURRENT"); string(again.Data) != "one" {
		t.Fatalf("changing a returned value changed the store: %q", again.Data)
	}

	stages, err := s.Stages(ctx, "app/db")
	if err != nil || !maps.Equal(stages, map[string]string{"AWSCURRENT": v1, "custom": v1}) {
		t.Fatalf("Stages() = %v, %v", stages, err)
	}
	if _, err := s.Value(ctx, "app/none", ""); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("Value(missing) = %v, want ErrNotExist", err)
	}
	if _, err := s.Stages(ctx, "app/none"); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("Stages(missing) = %v, want ErrNotExist", err)
	}
	client.Update("app/db", func(sec *cachetest.Secret) { sec.Deleted = true })
	if err := s.c.RefreshNow(ctx, "app/db"); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		t.Fatal(err)
	}
	if _, err := s.Stages(ctx, "app/db"); !errors.Is(err, iofs.ErrNotExist) {
		t.Fatalf("Stages(scheduled for deletion) = %v, want ErrNotExist", err)
	}
}

func TestStoreSubscribe(t *testing.T) {
	s, client := newTestStore(t)
	v1 := client.PutString("k", "one")
	ctx := context.Background()
	if _, err := s.Value(ctx, "k", ""); err != nil {
		t.Fatal(err)
	}
	changes := make(chan sfs.Change, 10)
	cancel := s.Subscribe(func(c sfs.Change) { changes <- c })
	defer cancel()
	v2 := client.PutString("k", "two")
	if err := s.c.RefreshNow(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	want := map[string]sfs.Change{
		"AWSCURRENT":  {SecretID: "k", Stage: "AWSCURRENT", OldVersionID: v1, NewVersionID: v2},
		"AWSPREVIOUS": {SecretID: "k", Stage: "AWSPREVIOUS", OldVersionID: "", NewVersionID: v1},
	}
	for range want {
		select {
		case c := <-changes:
			if c != want[c.Stage] {
				t.Errorf("change %+v, want %+v", c, want[c.Stage])
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no change delivered")
		}
	}
}

func TestStorePin(t *testing.T) {
	s, client := newTestStore(t)
	client.PutString("k", "one")
	unpin := s.Pin("k")
	if unpin == nil {
		t.Fatal("Pin returned nil")
	}
	unpin()
}

func strp(s string) *string { return &s }
