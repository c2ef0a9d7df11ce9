package emulator

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

func filterOf(key types.FilterNameStringType, values ...string) types.Filter {
	return types.Filter{Key: key, Values: values}
}

func TestListSecretsFilters(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	for _, s := range []Secret{
		{Name: "prod/db", Description: "Main database login", Tags: []Tag{{Key: "env", Value: "production"}, {Key: "team", Value: "core"}}},
		{Name: "prod/api-key", Description: "Payment API key", Tags: []Tag{{Key: "env", Value: "production"}}},
		{Name: "dev/db", Description: "developer database", Tags: []Tag{{Key: "env", Value: "dev"}}},
		{Name: "Prod/upper"},
	} {
		s.SecretString = str("x")
		mustCreate(t, f.emu, s)
		f.clock.Advance(time.Second)
	}
	cases := []struct {
		name    string
		filters []types.Filter
		want    []string
	}{
		{"no filter", nil, []string{"prod/db", "prod/api-key", "dev/db", "Prod/upper"}},
		{"name prefix is case-sensitive", []types.Filter{filterOf(types.FilterNameStringTypeName, "prod/")}, []string{"prod/db", "prod/api-key"}},
		{"name values are alternatives", []types.Filter{filterOf(types.FilterNameStringTypeName, "dev", "Prod")}, []string{"dev/db", "Prod/upper"}},
		{"negated name", []types.Filter{filterOf(types.FilterNameStringTypeName, "!prod")}, []string{"dev/db", "Prod/upper"}},
		{"tag-key", []types.Filter{filterOf(types.FilterNameStringTypeTagKey, "tea")}, []string{"prod/db"}},
		{"tag-value prefix", []types.Filter{filterOf(types.FilterNameStringTypeTagValue, "prod")}, []string{"prod/db", "prod/api-key"}},
		{"description words, any case", []types.Filter{filterOf(types.FilterNameStringTypeDescription, "DATA")}, []string{"prod/db", "dev/db"}},
		{"description needs every word", []types.Filter{filterOf(types.FilterNameStringTypeDescription, "database main")}, []string{"prod/db"}},
		{"all attributes", []types.Filter{filterOf(types.FilterNameStringTypeAll, "payment")}, []string{"prod/api-key"}},
		{"all matches tags", []types.Filter{filterOf(types.FilterNameStringTypeAll, "core")}, []string{"prod/db"}},
		{"filters combine with and", []types.Filter{filterOf(types.FilterNameStringTypeTagValue, "production"), filterOf(types.FilterNameStringTypeDescription, "login")}, []string{"prod/db"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := f.client.ListSecrets(ctx, &secretsmanager.ListSecretsInput{Filters: tc.filters})
			if err != nil {
				t.Fatalf("ListSecrets: %v", err)
			}
			var got []string
			for _, s := range out.SecretList {
				got = append(got, aws.ToString(s.Name))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	out, err := f.client.ListSecrets(ctx, &secretsmanager.ListSecretsInput{SortBy: types.SortByTypeName, SortOrder: types.SortOrderTypeDesc})
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToString(out.SecretList[0].Name); n != "prod/db" || len(out.SecretList[0].SecretVersionsToStages) != 1 {
		t.Fatalf("sorted by name desc, first is %q with %v", n, out.SecretList[0].SecretVersionsToStages)
	}
	_, err = f.client.ListSecrets(ctx, &secretsmanager.ListSecretsInput{Filters: []types.Filter{filterOf("colour", "red")}})
	wantCode(t, err, ErrValidation)
}

func TestListSecretsPagination(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	var want []string
	for i := range 25 {
		name := fmt.Sprintf("app/s%02d", i)
		want = append(want, name)
		mustCreate(t, f.emu, Secret{Name: name, SecretString: str("x")})
	}
	p := secretsmanager.NewListSecretsPaginator(f.client, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(10)})
	var got []string
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("page %d: %v", pages+1, err)
		}
		pages++
		if len(out.SecretList) > 10 {
			t.Fatalf("page of %d secrets with MaxResults 10", len(out.SecretList))
		}
		for _, s := range out.SecretList {
			got = append(got, aws.ToString(s.Name))
		}
	}
	if pages != 3 || !slices.Equal(got, want) {
		t.Fatalf("%d pages, secrets %v", pages, got)
	}

	_, err := f.client.ListSecrets(ctx, &secretsmanager.ListSecretsInput{NextToken: aws.String("not-a-token")})
	var bad *types.InvalidNextTokenException
	if !errors.As(err, &bad) {
		t.Fatalf("forged NextToken: want InvalidNextTokenException, got %v", err)
	}
	// A token of another operation is refused too.
	first, err := f.client.ListSecrets(ctx, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(1)})
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page: %+v %v", first, err)
	}
	_, err = f.client.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("app/s00"), NextToken: first.NextToken})
	if !errors.As(err, &bad) {
		t.Fatalf("ListSecrets token given to ListSecretVersionIds: want InvalidNextTokenException, got %v", err)
	}
	for _, n := range []int32{0, 101} {
		_, err = f.client.ListSecrets(ctx, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(n)})
		wantCode(t, err, ErrValidation)
	}
}

func TestListSecretVersionIdsPagination(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "many", SecretString: str("0")})
	for i := 1; i <= 6; i++ {
		f.clock.Advance(time.Minute)
		if _, err := f.emu.PutSecretValue("many", Version{SecretString: str(fmt.Sprint(i)), VersionStages: []string{fmt.Sprintf("L%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	p := secretsmanager.NewListSecretVersionIdsPaginator(f.client, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("many"), MaxResults: aws.Int32(3)})
	var created []time.Time
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.Name) != "many" {
			t.Fatalf("Name %q", aws.ToString(out.Name))
		}
		for _, v := range out.Versions {
			created = append(created, aws.ToTime(v.CreatedDate))
		}
	}
	if len(created) != 7 {
		t.Fatalf("listed %d versions, want 7", len(created))
	}
	if !slices.IsSortedFunc(created, func(a, b time.Time) int { return b.Compare(a) }) {
		t.Fatalf("versions not newest first: %v", created)
	}
}

func TestBatchGetSecretValue(t *testing.T) {
	f := newFixture(t)
	ctx := ctxT(t)
	mustCreate(t, f.emu, Secret{Name: "b/one", SecretString: str("1"), Tags: []Tag{{Key: "batch", Value: "yes"}}})
	mustCreate(t, f.emu, Secret{Name: "b/two", SecretBinary: []byte{2}, Tags: []Tag{{Key: "batch", Value: "yes"}}})
	mustCreate(t, f.emu, Secret{Name: "b/three", SecretString: str("3"), Tags: []Tag{{Key: "batch", Value: "yes"}}})
	mustCreate(t, f.emu, Secret{Name: "b/gone", SecretString: str("x")})
	mustCreate(t, f.emu, Secret{Name: "b/novalue"})
	if _, err := f.client.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("b/gone")}); err != nil {
		t.Fatal(err)
	}

	out, err := f.client.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"b/one", "b/two", "b/missing", "b/gone", "b/novalue"}})
	if err != nil {
		t.Fatalf("BatchGetSecretValue(ids): %v", err)
	}
	if len(out.SecretValues) != 2 || aws.ToString(out.SecretValues[0].SecretString) != "1" || out.SecretValues[1].SecretBinary[0] != 2 {
		t.Fatalf("SecretValues: %+v", out.SecretValues)
	}
	wantErrs := map[string]string{"b/missing": ErrResourceNotFound, "b/gone": ErrInvalidRequest, "b/novalue": ErrResourceNotFound}
	if len(out.Errors) != len(wantErrs) {
		t.Fatalf("Errors: %+v", out.Errors)
	}
	for _, e := range out.Errors {
		if wantErrs[aws.ToString(e.SecretId)] != aws.ToString(e.ErrorCode) || aws.ToString(e.Message) == "" {
			t.Fatalf("error entry %s: %s %q", aws.ToString(e.SecretId), aws.ToString(e.ErrorCode), aws.ToString(e.Message))
		}
	}

	p := secretsmanager.NewBatchGetSecretValuePaginator(f.client, &secretsmanager.BatchGetSecretValueInput{
		Filters:    []types.Filter{filterOf(types.FilterNameStringTypeTagKey, "batch")},
		MaxResults: aws.Int32(2),
	})
	var names []string
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, v := range page.SecretValues {
			names = append(names, aws.ToString(v.Name))
		}
	}
	if pages != 2 || !slices.Equal(names, []string{"b/one", "b/two", "b/three"}) {
		t.Fatalf("filtered batch: %d pages, %v", pages, names)
	}

	var ip *types.InvalidParameterException
	_, err = f.client.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{})
	if !errors.As(err, &ip) {
		t.Fatalf("neither ids nor filters: want InvalidParameterException, got %v", err)
	}
	_, err = f.client.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"b/one"}, Filters: []types.Filter{filterOf(types.FilterNameStringTypeName, "b")}})
	if !errors.As(err, &ip) {
		t.Fatalf("both ids and filters: want InvalidParameterException, got %v", err)
	}
	ids := make([]string, 21)
	for i := range ids {
		ids[i] = "b/one"
	}
	_, err = f.client.BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: ids})
	wantCode(t, err, ErrValidation)
}
