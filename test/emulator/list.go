package emulator

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// filterKeys returns the filter keys of ListSecrets and
// BatchGetSecretValue.
func filterKeys() []string {
	return []string{"description", "name", "tag-key", "tag-value", "primary-region", "owning-service", "all"}
}

// checkFilters applies the model's constraints to a list of filters.
func checkFilters(c *checks, filters []filter) {
	if len(filters) > 10 {
		c.fail("filters", "Member must have length less than or equal to 10")
	}
	for _, f := range filters {
		c.required("filters.member.key", f.Key != nil)
		if f.Key != nil && !slices.Contains(filterKeys(), *f.Key) {
			c.fail("filters.member.key", "Member must satisfy enum value set: ["+strings.Join(filterKeys(), ", ")+"]")
		}
		c.lengthOf("filters.member.values", len(f.Values), 1, 10)
		for _, v := range f.Values {
			c.lengthOf("filters.member.values.member", len(v), 1, 512)
			if !validFilterValue.MatchString(v) {
				c.fail("filters.member.values.member", `Member must satisfy regular expression pattern: ^\!?[a-zA-Z0-9 :_@\/\+\=\.\-\!]*$`)
			}
		}
	}
}

// matches reports whether a secret passes every filter. Values of one
// filter are alternatives; a value starting with "!" matches secrets that
// do not match the rest. name, tag-key and tag-value match prefixes,
// case-sensitively; description and all match words (each word of the
// value must start a word of the attribute), ignoring case.
func (s *secret) matches(e *Emulator, filters []filter) bool {
	for _, f := range filters {
		var candidates []string
		words := false
		switch *f.Key {
		case "name":
			candidates = []string{s.name}
		case "tag-key":
			for _, t := range s.tags {
				candidates = append(candidates, t.Key)
			}
		case "tag-value":
			for _, t := range s.tags {
				candidates = append(candidates, t.Value)
			}
		case "description":
			candidates, words = []string{deref(s.description)}, true
		case "primary-region":
			candidates = []string{e.region}
		case "owning-service":
			candidates = nil
		case "all":
			candidates, words = []string{s.name, deref(s.description)}, true
			for _, t := range s.tags {
				candidates = append(candidates, t.Key, t.Value)
			}
		}
		if !slices.ContainsFunc(f.Values, func(v string) bool { return matchValue(v, candidates, words) }) {
			return false
		}
	}
	return true
}

func matchValue(value string, candidates []string, words bool) bool {
	pattern, negate := strings.CutPrefix(value, "!")
	hit := slices.ContainsFunc(candidates, func(c string) bool {
		if words {
			return wordsMatch(pattern, c)
		}
		return strings.HasPrefix(c, pattern)
	})
	return hit != negate
}

// wordsMatch reports whether every word of pattern starts a word of s,
// ignoring case.
func wordsMatch(pattern, s string) bool {
	split := func(x string) []string {
		return strings.FieldsFunc(strings.ToLower(x), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	}
	want, have := split(pattern), split(s)
	if len(want) == 0 {
		return false
	}
	for _, w := range want {
		if !slices.ContainsFunc(have, func(h string) bool { return strings.HasPrefix(h, w) }) {
			return false
		}
	}
	return true
}

// listingQuery is what a listing's selection depends on besides the
// secrets: its filters (as JSON), whether deleted secrets are included, and
// its order.
type listingQuery struct {
	filters        string
	includeDeleted bool
	sortBy, order  string
}

// listing is a selection built for a query while gen was as recorded.
type listing struct {
	gen     uint64
	secrets []*secret
}

// maxListings bounds how many selections are kept.
const maxListings = 16

// selectSecrets returns the secrets a listing shows, filtered and sorted.
// The selection is kept until the next change, so that paging through a
// listing of N secrets costs one selection and a page each, not one
// selection per page. Orders by last access are built each time: reads
// change them. The caller holds mu and must not change the result.
func (e *Emulator) selectSecrets(filters []filter, includeDeleted bool, sortBy, order string) []*secret {
	e.purgeExpired(e.clock.Now())
	fj, err := json.Marshal(filters)
	cacheable := err == nil && sortBy != "last-accessed-date"
	q := listingQuery{filters: string(fj), includeDeleted: includeDeleted, sortBy: sortBy, order: order}
	if l, ok := e.listings[q]; cacheable && ok && l.gen == e.gen {
		return l.secrets
	}
	e.listingBuilds++
	var out []*secret
	for _, s := range e.secrets {
		if (includeDeleted || !s.deleted()) && s.matches(e, filters) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *secret) int {
		var r int
		switch sortBy {
		case "name":
			r = strings.Compare(a.name, b.name)
		case "last-accessed-date":
			r = a.lastAccessed.Compare(b.lastAccessed)
		case "last-changed-date":
			r = a.lastChanged.Compare(b.lastChanged)
		default:
			r = a.created.Compare(b.created)
		}
		if r == 0 {
			r = cmp.Compare(a.seq, b.seq)
		}
		if order == "desc" {
			r = -r
		}
		return r
	})
	if cacheable {
		if len(e.listings) >= maxListings {
			clear(e.listings)
		}
		e.listings[q] = listing{gen: e.gen, secrets: out}
	}
	return out
}

// checkSort applies the model's enums to SortBy and SortOrder.
func checkSort(c *checks, sortBy, order *string) {
	if sortBy != nil && !slices.Contains([]string{"created-date", "last-accessed-date", "last-changed-date", "name"}, *sortBy) {
		c.fail("sortBy", "Member must satisfy enum value set: [created-date, last-accessed-date, last-changed-date, name]")
	}
	if order != nil && *order != "asc" && *order != "desc" {
		c.fail("sortOrder", "Member must satisfy enum value set: [asc, desc]")
	}
}

func (e *Emulator) listSecrets(req *listSecretsRequest) (*listSecretsResponse, *Error) {
	var c checks
	c.rangeOf("maxResults", req.MaxResults, 1, 100)
	c.length("nextToken", req.NextToken, 1, 4096)
	checkFilters(&c, req.Filters)
	checkSort(&c, req.SortBy, req.SortOrder)
	if c.err != nil {
		return nil, c.err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	all := e.selectSecrets(req.Filters, deref(req.IncludePlannedDeletion), deref(req.SortBy), deref(req.SortOrder))
	page, next, aerr := paginate(OpListSecrets, all, req.NextToken, req.MaxResults, 100)
	if aerr != nil {
		return nil, aerr
	}
	list := make([]*secretDetails, 0, len(page))
	for _, s := range page {
		d := detailsOf(s)
		d.SecretVersionsToStages, d.VersionIdsToStages = d.VersionIdsToStages, nil
		list = append(list, d)
	}
	return &listSecretsResponse{SecretList: list, NextToken: next}, nil
}

// batchGetSecretValue runs BatchGetSecretValue for caller (nil: no IAM
// model); a secret caller may not read is reported in Errors with
// AccessDeniedException.
func (e *Emulator) batchGetSecretValue(req *batchGetSecretValueRequest, caller *principal) (*batchGetSecretValueResponse, *Error) {
	var c checks
	if req.SecretIdList != nil {
		c.lengthOf("secretIdList", len(req.SecretIdList), 1, 20)
		for _, id := range req.SecretIdList {
			c.lengthOf("secretIdList.member", len(id), 1, maxSecretIDLen)
		}
	}
	c.rangeOf("maxResults", req.MaxResults, 1, 20)
	c.length("nextToken", req.NextToken, 1, 4096)
	checkFilters(&c, req.Filters)
	if c.err != nil {
		return nil, c.err
	}
	if (req.SecretIdList == nil) == (req.Filters == nil) {
		return nil, newError(ErrInvalidParameter, "You must provide either SecretIdList or Filters, but not both.")
	}
	if req.SecretIdList != nil && (req.MaxResults != nil || req.NextToken != nil) {
		return nil, newError(ErrInvalidParameter, "MaxResults and NextToken can only be used with Filters.")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	resp := &batchGetSecretValueResponse{SecretValues: []*secretValue{}}
	today := day(e.clock.Now())
	get := func(id string, s *secret) {
		if caller != nil && !caller.policy.allowsSecret(s.name, s.arn) {
			aerr := errAccessDenied(caller.arn, OpGetSecretValue, id)
			resp.Errors = append(resp.Errors, batchError{SecretId: id, ErrorCode: aerr.Code, Message: aerr.Message})
			return
		}
		if s.deleted() {
			aerr := errMarkedForDeletion()
			resp.Errors = append(resp.Errors, batchError{SecretId: id, ErrorCode: aerr.Code, Message: aerr.Message})
			return
		}
		v, aerr := s.resolve(nil, nil)
		if aerr != nil {
			resp.Errors = append(resp.Errors, batchError{SecretId: id, ErrorCode: aerr.Code, Message: aerr.Message})
			return
		}
		s.lastAccessed, v.lastAccessed = today, today
		resp.SecretValues = append(resp.SecretValues, valueOf(s, v))
	}
	if req.SecretIdList != nil {
		for _, id := range req.SecretIdList {
			s, aerr := e.find(id)
			if aerr != nil && !e.mayReadLocked(caller, id) {
				aerr = errAccessDenied(caller.arn, OpGetSecretValue, id)
			}
			if aerr != nil {
				resp.Errors = append(resp.Errors, batchError{SecretId: id, ErrorCode: aerr.Code, Message: aerr.Message})
				continue
			}
			get(id, s)
		}
		return resp, nil
	}
	all := e.selectSecrets(req.Filters, false, "", "")
	page, next, aerr := paginate(OpBatchGetSecretValue, all, req.NextToken, req.MaxResults, 20)
	if aerr != nil {
		return nil, aerr
	}
	for _, s := range page {
		get(s.name, s)
	}
	resp.NextToken = next
	return resp, nil
}

// paginate cuts one page out of a listing. A NextToken encodes the
// operation and the offset of the next item, so a token from another
// operation or a forged one is refused with InvalidNextTokenException.
func paginate[T any](op string, all []T, token *string, maxResults *int64, defaultSize int) ([]T, *string, *Error) {
	offset := 0
	if token != nil {
		raw, err := base64.RawURLEncoding.DecodeString(*token)
		rest, ok := strings.CutPrefix(string(raw), op+":")
		n, aerr := strconv.Atoi(rest)
		if err != nil || !ok || aerr != nil || n < 0 {
			return nil, nil, newError(ErrInvalidNextToken, "The NextToken value is not valid.")
		}
		offset = n
	}
	size := defaultSize
	if maxResults != nil {
		size = int(*maxResults)
	}
	if offset >= len(all) {
		return nil, nil, nil
	}
	end := min(offset+size, len(all))
	var next *string
	if end < len(all) {
		next = strPtr(base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%s:%d", op, end)))
	}
	return all[offset:end], next, nil
}
