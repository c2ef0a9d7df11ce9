package catalog

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
	sfs "github.com/secretsfs/secretsfs/fs"
)

// fixedLister lists the same secrets every time.
type fixedLister []cache.Listed

func (l fixedLister) List(context.Context, cache.ListFilter) ([]cache.Listed, error) {
	return l, nil
}

// nameDescriber describes every name as an existing secret of that name,
// and every id as a secret named "name-of-" the id.
type nameDescriber struct{}

func (nameDescriber) Describe(_ context.Context, id string) (cache.SecretInfo, error) {
	return cache.SecretInfo{SecretID: id, Name: "name-of-" + id}, nil
}

func (nameDescriber) Lookup(_ context.Context, name string, _ func(cache.SecretInfo) bool) (cache.SecretInfo, error) {
	return cache.SecretInfo{SecretID: name, Name: name}, nil
}

func manyListed(n int) fixedLister {
	out := make(fixedLister, n)
	for i := range out {
		out[i] = cache.Listed{Name: fmt.Sprintf("app/s%05d", n-i)}
	}
	return out
}

// flatCatalog is what a metrics scrape, a change hook and the filesystem ask
// of a catalog.
type flatCatalog interface {
	List() []sfs.SecretRef
	Len() int
	RefsOf(id string) []sfs.SecretRef
}

// checkFlat checks that List, Len and RefsOf of a catalog of n secrets
// agree and allocate nothing per call: List is a snapshot made once per
// change, not a copy sorted per call.
func checkFlat(t *testing.T, c flatCatalog, n int, id, name string) {
	t.Helper()
	list := c.List()
	if len(list) != n || c.Len() != n {
		t.Fatalf("List has %d secrets, Len says %d; want %d", len(list), c.Len(), n)
	}
	if !slices.IsSortedFunc(list, cmpName) {
		t.Fatal("List is not sorted by name")
	}
	if got := c.RefsOf(id); !slices.Equal(got, []sfs.SecretRef{{Name: name, ID: id}}) {
		t.Fatalf("NamesOf(%q) = %q, want %q", id, got, name)
	}
	if got := c.RefsOf("no-such-id"); len(got) != 0 {
		t.Fatalf("NamesOf(an unknown id) = %q", got)
	}
	for what, op := range map[string]func(){
		"List":   func() { c.List() },
		"Len":    func() { c.Len() },
		"RefsOf": func() { c.RefsOf(id) },
	} {
		if a := testing.AllocsPerRun(100, op); a != 0 {
			t.Errorf("%s allocates %.0f times per call with %d secrets", what, a, n)
		}
	}
}

// TestIssue12_Flat_ListingAnswersWithoutCopying: a listing catalog of
// 10 000 secrets answers List, Len and RefsOf without a copy or a sort per
// call, also after Find found a secret the listing lacks.
func TestIssue12_Flat_ListingAnswersWithoutCopying(t *testing.T) {
	const n = 10_000
	clock := cachetest.NewClock(t0)
	c := NewListing(manyListed(n), nameDescriber{}, nil, nil, testOptions(clock))
	startCatalog(t, c)
	checkFlat(t, c, n, "app/s00042", "app/s00042")

	if _, ok, err := c.Find(context.Background(), "app/new"); !ok || err != nil {
		t.Fatalf("Find = %v, %v", ok, err)
	}
	checkFlat(t, c, n+1, "app/new", "app/new")
}

// TestIssue12_Flat_ExplicitAnswersWithoutCopying: the same in explicit
// mode, where an id (here "id00042") is shown under its resolved name.
func TestIssue12_Flat_ExplicitAnswersWithoutCopying(t *testing.T) {
	const n = 10_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("id%05d", i)
	}
	c := NewExplicit(ids, nameDescriber{}, testOptions(cachetest.NewClock(t0)))
	startCatalog(t, c)
	checkFlat(t, c, n, "id00042", "name-of-id00042")
}

// sameNameDescriber describes every id as the secret "app/db" (a name and
// an ARN of one secret).
type sameNameDescriber struct{ nameDescriber }

func (sameNameDescriber) Describe(_ context.Context, id string) (cache.SecretInfo, error) {
	return cache.SecretInfo{SecretID: id, Name: "app/db"}, nil
}

// TestIssue12_Flat_ExplicitSnapshotHidesASecondIdOfOneSecret: List's
// snapshot, made once per change, shows a secret named by two ids once,
// under the first id, and RefsOf knows the second id under no name.
func TestIssue12_Flat_ExplicitSnapshotHidesASecondIdOfOneSecret(t *testing.T) {
	arn := "arn:aws:secretsmanager:us-east-1:1:secret:app/db-AbCdEf"
	c := NewExplicit([]string{"app/db", arn}, sameNameDescriber{}, testOptions(cachetest.NewClock(t0)))
	startCatalog(t, c)
	want := []sfs.SecretRef{{Name: "app/db", ID: "app/db"}}
	if got := c.List(); !slices.Equal(got, want) || c.Len() != 1 {
		t.Fatalf("List() = %+v (Len %d), want %+v", got, c.Len(), want)
	}
	if got := c.RefsOf(arn); len(got) != 0 {
		t.Fatalf("RefsOf(the second id) = %+v, want none", got)
	}
}
