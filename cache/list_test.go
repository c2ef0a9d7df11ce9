package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

func TestServerFilters(t *testing.T) {
	key := func(f types.Filter) string { return fmt.Sprintf("%s=%v", f.Key, f.Values) }
	for _, tc := range []struct {
		prefixes []string
		tags     []Tag
		want     []string
	}{
		{nil, nil, nil},
		{[]string{"a/", "b/"}, nil, []string{"name=[a/ b/]"}},
		{nil, []Tag{{"env", "prod"}, {"team", "x"}}, []string{"tag-key=[env]", "tag-value=[prod]"}},
		{nil, []Tag{{"env", ""}}, []string{"tag-key=[env]"}},
		{nil, []Tag{{"!neg", "v"}, {"k", "v2"}}, []string{"tag-key=[k]", "tag-value=[v2]"}},
		{nil, []Tag{{"kéy", "v"}}, nil},
		{[]string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}, nil, nil}, // more than the service takes
	} {
		var got []string
		for _, f := range serverFilters(tc.prefixes, tc.tags) {
			got = append(got, key(f))
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("serverFilters(%v, %v) = %v, want %v", tc.prefixes, tc.tags, got, tc.want)
		}
	}
}

// pagedLister answers ListSecrets from pages, or with err.
type pagedLister struct {
	pages []secretsmanager.ListSecretsOutput
	err   error
	calls []*secretsmanager.ListSecretsInput
}

func (p *pagedLister) ListSecrets(_ context.Context, in *secretsmanager.ListSecretsInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error) {
	p.calls = append(p.calls, in)
	if p.err != nil {
		return nil, p.err
	}
	i := len(p.calls) - 1
	out := p.pages[i]
	if i+1 < len(p.pages) {
		out.NextToken = aws.String(fmt.Sprint(i + 1))
	}
	return &out, nil
}

func TestListerPagesAndConverts(t *testing.T) {
	api := &pagedLister{pages: []secretsmanager.ListSecretsOutput{
		{SecretList: []types.SecretListEntry{
			{Name: aws.String("a"), Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("prod")}}},
			{Name: nil}, // no name: left out
		}},
		{SecretList: []types.SecretListEntry{
			{Name: aws.String("b"), DeletedDate: aws.Time(time.Unix(1, 0))},
			{Name: aws.String("")},
		}},
	}}
	got, err := NewLister(api).List(context.Background(), ListFilter{NamePrefixes: []string{"a", "b"}, Tags: []Tag{{"env", "prod"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Listed{{Name: "a", Tags: []Tag{{"env", "prod"}}}, {Name: "b", Deleted: true}}
	if !slices.EqualFunc(got, want, func(a, b Listed) bool {
		return a.Name == b.Name && a.Deleted == b.Deleted && slices.Equal(a.Tags, b.Tags)
	}) {
		t.Fatalf("List() = %+v, want %+v", got, want)
	}
	if len(api.calls) != 2 {
		t.Fatalf("%d ListSecrets calls, want 2 pages", len(api.calls))
	}
	for _, in := range api.calls {
		if aws.ToInt32(in.MaxResults) != 100 || len(in.Filters) != 3 {
			t.Errorf("ListSecrets input: MaxResults %d, %d filters; want 100 and 3", aws.ToInt32(in.MaxResults), len(in.Filters))
		}
	}
}

func TestListerTranslatesErrors(t *testing.T) {
	for code, want := range map[string]error{
		"AccessDeniedException": ErrAccessDenied,
		"ThrottlingException":   ErrUnavailable,
	} {
		sdkErr := &smithy.GenericAPIError{Code: code, Message: "no"}
		_, err := NewLister(&pagedLister{err: sdkErr}).List(context.Background(), ListFilter{})
		if !errors.Is(err, want) {
			t.Errorf("%s: error %v does not match %v", code, err, want)
		}
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != code {
			t.Errorf("%s: the SDK's error is not reachable from %v", code, err)
		}
	}
}
