package cache

import (
	"context"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// OpListSecrets names the ListSecrets operation in errors. Listing is not
// counted in Stats.APICalls nor reported to the Observer.
const OpListSecrets = "ListSecrets"

// maxFilterValues is how many values one ListSecrets filter takes.
const maxFilterValues = 10

// Tag is a secret's tag: a key and its value.
type Tag struct {
	Key, Value string
}

// String gives the tag as KEY=VALUE.
func (t Tag) String() string { return t.Key + "=" + t.Value }

// ListClient is the part of the Secrets Manager API a Lister calls; the
// signature is the SDK's own, so *secretsmanager.Client satisfies it.
type ListClient interface {
	ListSecrets(ctx context.Context, params *secretsmanager.ListSecretsInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.ListSecretsOutput, error)
}

var _ ListClient = (*secretsmanager.Client)(nil)

// ListFilter narrows a listing on the service's side. The service can
// express only part of it (see serverFilters), so a listing may hold more
// secrets than the filter asks for: the caller applies the exact rule.
type ListFilter struct {
	// NamePrefixes: names starting with any of them.
	NamePrefixes []string
	// Tags: secrets carrying every one of them.
	Tags []Tag
}

// Listed is one secret of a listing.
type Listed struct {
	Name string
	Tags []Tag
	// Deleted is true when the secret is scheduled for deletion.
	Deleted bool
}

// Lister lists secrets with ListSecrets.
type Lister struct {
	api ListClient
}

// NewLister returns a Lister calling api.
func NewLister(api ListClient) *Lister { return &Lister{api: api} }

// List pages through ListSecrets, 100 secrets a page, narrowed by f as far as
// the service's filter syntax allows: a superset of what f asks for. Entries
// without a name are left out. Errors match the domain errors
// (ErrAccessDenied, ErrUnavailable, ...) with errors.Is.
func (l *Lister) List(ctx context.Context, f ListFilter) ([]Listed, error) {
	in := &secretsmanager.ListSecretsInput{
		MaxResults: aws.Int32(100),
		Filters:    serverFilters(f.NamePrefixes, f.Tags),
	}
	p := secretsmanager.NewListSecretsPaginator(l.api, in)
	var out []Listed
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, translateError(OpListSecrets, "", err)
		}
		for _, e := range page.SecretList {
			if aws.ToString(e.Name) == "" {
				continue
			}
			s := Listed{Name: *e.Name, Deleted: e.DeletedDate != nil}
			for _, t := range e.Tags {
				s.Tags = append(s.Tags, Tag{Key: aws.ToString(t.Key), Value: aws.ToString(t.Value)})
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// serverFilters narrows a listing on the service's side as far as the
// service can express it; the caller applies the exact rules afterwards.
//
// The service matches prefixes, ORs the values of one filter and ANDs
// different filter keys; a value starting with "!" negates. So the name
// prefixes become one "name" filter (all of them ORed, exactly our rule), and
// of the tags, which must all be present, the first one the filter syntax can
// carry becomes a "tag-key" and a "tag-value" filter: a superset of the
// secrets that carry it, since the key and the value may match different
// tags, or longer keys and values. Anything the syntax cannot carry is left
// to the caller.
func serverFilters(prefixes []string, tags []Tag) []types.Filter {
	var fs []types.Filter
	if len(prefixes) > 0 && len(prefixes) <= maxFilterValues && allFilterable(prefixes...) {
		fs = append(fs, types.Filter{Key: types.FilterNameStringTypeName, Values: slices.Clone(prefixes)})
	}
	for _, t := range tags {
		if !allFilterable(t.Key) {
			continue
		}
		fs = append(fs, types.Filter{Key: types.FilterNameStringTypeTagKey, Values: []string{t.Key}})
		if allFilterable(t.Value) {
			fs = append(fs, types.Filter{Key: types.FilterNameStringTypeTagValue, Values: []string{t.Value}})
		}
		break
	}
	return fs
}

// allFilterable reports whether every value can be sent as a filter value
// that matches its prefix: 1 to 512 characters of the filter's pattern
// (^\!?[a-zA-Z0-9 :_@\/\+\=\.\-\!]*$), not starting with "!".
func allFilterable(values ...string) bool {
	for _, v := range values {
		if v == "" || len(v) > 512 || strings.HasPrefix(v, "!") {
			return false
		}
		for _, r := range v {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			case strings.ContainsRune(" :_@/+=.-!", r):
			default:
				return false
			}
		}
	}
	return true
}
