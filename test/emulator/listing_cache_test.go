package emulator

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// listNames pages through ListSecrets and returns the names in order.
func listNames(t *testing.T, ctx context.Context, c *secretsmanager.Client, in *secretsmanager.ListSecretsInput) []string {
	t.Helper()
	p := secretsmanager.NewListSecretsPaginator(c, in)
	var names []string
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListSecrets: %v", err)
		}
		for _, s := range out.SecretList {
			names = append(names, aws.ToString(s.Name))
		}
	}
	return names
}

func (e *Emulator) builds() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.listingBuilds
}

// TestListingOfManySecretsSelectsOnce pages through 1 000 secrets, 100 a
// page: the emulator selects and sorts them once for the ten pages, not
// once a page, and selects again only after a change.
func TestListingOfManySecretsSelectsOnce(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	var want []string
	for i := range 1000 {
		name := fmt.Sprintf("many/s%04d", i)
		want = append(want, name)
		mustCreate(t, f.emu, Secret{Name: name, SecretString: str("x")})
	}
	in := &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(100)}
	if got := listNames(t, ctx, f.client, in); !slices.Equal(got, want) {
		t.Fatalf("listed %d secrets, want the %d in creation order", len(got), len(want))
	}
	if got := f.emu.builds(); got != 1 {
		t.Fatalf("selections built for one listing of 10 pages = %d, want 1", got)
	}
	listNames(t, ctx, f.client, in)
	if got := f.emu.builds(); got != 1 {
		t.Fatalf("selections built for two listings with no change between = %d, want 1", got)
	}
	if _, err := f.emu.PutSecretValue("many/s0500", Version{SecretString: str("y")}); err != nil {
		t.Fatal(err)
	}
	listNames(t, ctx, f.client, in)
	if got := f.emu.builds(); got != 2 {
		t.Fatalf("selections built after a change = %d, want 2", got)
	}
}

// TestListingSeesEveryChange lists, changes the secrets in each way that
// alters a listing, and lists again: the kept selection never hides a change.
func TestListingSeesEveryChange(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	for _, n := range []string{"a", "b", "c"} {
		mustCreate(t, f.emu, Secret{Name: n, SecretString: str("x"), Tags: []Tag{{Key: "k", Value: "v"}}})
		f.clock.Advance(time.Second)
	}
	call := func(op string, in any) {
		t.Helper()
		var err error
		switch op {
		case "delete":
			_, err = f.client.DeleteSecret(ctx, in.(*secretsmanager.DeleteSecretInput))
		case "restore":
			_, err = f.client.RestoreSecret(ctx, in.(*secretsmanager.RestoreSecretInput))
		case "untag":
			_, err = f.client.UntagResource(ctx, in.(*secretsmanager.UntagResourceInput))
		case "tag":
			_, err = f.client.TagResource(ctx, in.(*secretsmanager.TagResourceInput))
		case "update":
			_, err = f.client.UpdateSecret(ctx, in.(*secretsmanager.UpdateSecretInput))
		case "put":
			_, err = f.client.PutSecretValue(ctx, in.(*secretsmanager.PutSecretValueInput))
		case "create":
			_, err = f.client.CreateSecret(ctx, in.(*secretsmanager.CreateSecretInput))
		}
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	all := &secretsmanager.ListSecretsInput{}
	tagged := &secretsmanager.ListSecretsInput{Filters: []types.Filter{filterOf(types.FilterNameStringTypeTagKey, "k")}}
	described := &secretsmanager.ListSecretsInput{Filters: []types.Filter{filterOf(types.FilterNameStringTypeDescription, "special")}}
	byChange := &secretsmanager.ListSecretsInput{SortBy: types.SortByTypeLastChangedDate}
	check := func(what string, in *secretsmanager.ListSecretsInput, want ...string) {
		t.Helper()
		if got := listNames(t, ctx, f.client, in); !slices.Equal(got, want) {
			t.Fatalf("after %s: listed %v, want %v", what, got, want)
		}
	}
	for _, in := range []*secretsmanager.ListSecretsInput{all, tagged, described, byChange} {
		listNames(t, ctx, f.client, in) // kept from now on
	}
	check("nothing", all, "a", "b", "c")

	call("delete", &secretsmanager.DeleteSecretInput{SecretId: aws.String("b"), RecoveryWindowInDays: aws.Int64(7)})
	check("a delete", all, "a", "c")
	call("restore", &secretsmanager.RestoreSecretInput{SecretId: aws.String("b")})
	check("a restore", all, "a", "b", "c")
	call("untag", &secretsmanager.UntagResourceInput{SecretId: aws.String("a"), TagKeys: []string{"k"}})
	check("an untag", tagged, "b", "c")
	call("tag", &secretsmanager.TagResourceInput{SecretId: aws.String("a"), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("w")}}})
	check("a tag", tagged, "a", "b", "c")
	call("update", &secretsmanager.UpdateSecretInput{SecretId: aws.String("c"), Description: aws.String("special one")})
	check("a description", described, "c")
	f.clock.Advance(time.Second)
	call("put", &secretsmanager.PutSecretValueInput{SecretId: aws.String("a"), SecretString: aws.String("new")})
	check("a new value", byChange, "b", "c", "a")
	call("create", &secretsmanager.CreateSecretInput{Name: aws.String("d"), SecretString: aws.String("x")})
	check("a create", all, "a", "b", "c", "d")
	call("delete", &secretsmanager.DeleteSecretInput{SecretId: aws.String("d"), ForceDeleteWithoutRecovery: aws.Bool(true)})
	check("a forced delete", all, "a", "b", "c")
	call("delete", &secretsmanager.DeleteSecretInput{SecretId: aws.String("c"), RecoveryWindowInDays: aws.Int64(7)})
	check("a delete with deleted secrets included", &secretsmanager.ListSecretsInput{IncludePlannedDeletion: aws.Bool(true)}, "a", "b", "c")
	f.clock.Advance(8 * 24 * time.Hour)
	check("the end of a recovery window", &secretsmanager.ListSecretsInput{IncludePlannedDeletion: aws.Bool(true)}, "a", "b")
}
