package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// OpListSecrets names the ListSecrets operation, as counted in
// Stats.APICalls and told to the Observer.
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
	// Names, when set, lists exactly these names instead (NamePrefixes and
	// Tags are then ignored): "name" filters of at most 10 names a call,
	// keeping exact matches only, since the service matches prefixes.
	// Names no filter can carry (NameFilterable) are left out: ask
	// DescribeSecret about those.
	Names []string
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
//
// It neither counts its calls nor stores what it lists: (*Cache).List does
// both, and is what the daemon uses.
func (l *Lister) List(ctx context.Context, f ListFilter) ([]Listed, error) {
	var out []Listed
	err := listPages(ctx, f, func(ctx context.Context, in *secretsmanager.ListSecretsInput) (*secretsmanager.ListSecretsOutput, error) {
		page, err := l.api.ListSecrets(ctx, in)
		return page, translateError(OpListSecrets, "", err)
	}, func(entries []types.SecretListEntry) {
		out = appendListed(out, entries)
	})
	return out, err
}

// listPages pages through the listings f needs (one for prefixes and tags,
// one per 10 names for Names), calling page for each request and handing
// each page's entries that f keeps (named; exact names only for Names) to
// each.
func listPages(ctx context.Context, f ListFilter, page func(context.Context, *secretsmanager.ListSecretsInput) (*secretsmanager.ListSecretsOutput, error), each func([]types.SecretListEntry)) error {
	for _, q := range listQueries(f) {
		var token *string
		for {
			out, err := page(ctx, &secretsmanager.ListSecretsInput{
				MaxResults: aws.Int32(listPageSize),
				Filters:    q.filters,
				NextToken:  token,
			})
			if err != nil {
				return err
			}
			// In place: the page is ours, and a copy of every entry per
			// page would cost a few hundred bytes per secret per pass.
			each(slices.DeleteFunc(out.SecretList, func(e types.SecretListEntry) bool {
				name := aws.ToString(e.Name)
				return name == "" || q.exact != nil && !q.exact[name]
			}))
			if aws.ToString(out.NextToken) == "" {
				break
			}
			token = out.NextToken
		}
	}
	return nil
}

// listPageSize is how many secrets one ListSecrets page holds at most.
const listPageSize = 100

// listQuery is one listing: its filters and, for exact names, the names to
// keep (nil keeps every named entry).
type listQuery struct {
	filters []types.Filter
	exact   map[string]bool
}

// listQueries turns a filter into the listings that answer it.
func listQueries(f ListFilter) []listQuery {
	if len(f.Names) == 0 {
		return []listQuery{{filters: serverFilters(f.NamePrefixes, f.Tags)}}
	}
	var names []string
	for _, n := range f.Names {
		if NameFilterable(n) && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	var qs []listQuery
	for chunk := range slices.Chunk(names, maxFilterValues) {
		q := listQuery{
			filters: []types.Filter{{Key: types.FilterNameStringTypeName, Values: slices.Clone(chunk)}},
			exact:   make(map[string]bool, len(chunk)),
		}
		for _, n := range chunk {
			q.exact[n] = true
		}
		qs = append(qs, q)
	}
	return qs
}

// NameFilterable reports whether a secret id can be listed by name with a
// "name" filter (ListFilter.Names): a name the filter's pattern takes, not
// an ARN.
func NameFilterable(id string) bool {
	return !strings.HasPrefix(id, "arn:") && allFilterable(id)
}

// appendListed converts listing entries.
func appendListed(out []Listed, entries []types.SecretListEntry) []Listed {
	for _, e := range entries {
		s := Listed{Name: aws.ToString(e.Name), Deleted: e.DeletedDate != nil}
		for _, t := range e.Tags {
			s.Tags = append(s.Tags, Tag{Key: aws.ToString(t.Key), Value: aws.ToString(t.Value)})
		}
		out = append(out, s)
	}
	return out
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

// listPageGap is the least time between two pages of one listing (at most
// 20 pages, 2 000 secrets, a second), so that a large account is listed
// at a steady pace rather than in a burst.
const listPageGap = 50 * time.Millisecond

// List lists secrets with ListSecrets, as (*Lister).List does, and stores
// what each page says as it arrives, so that the listing is the cache's
// change detector:
//
//   - A listed secret's metadata (version -> stages, name, ARN, tags,
//     deletion, next rotation, last change) is stored as a DescribeSecret
//     answer would be, under the secret's name (and its ARN, when that id is
//     cached). It then needs no DescribeSecret until 1.5 to 2 refresh
//     intervals after the listing (uniformly spread, and still shortly
//     after a NextRotationDate), so listings every refresh interval or more
//     often replace DescribeSecret altogether, and when they stop, the
//     DescribeSecret refreshes resume spread over half an interval.
//   - A listing may trail the service (by minutes, its documentation says):
//     an entry whose LastChangedDate is older than what the cache stored, or
//     one that a refresh started after the page was asked for has already
//     answered (without a newer LastChangedDate), moves nothing.
//   - A secret whose stages in use moved has its new values fetched at once,
//     batched (BatchGetSecretValue, 20 a call); a version already cached is
//     never fetched again. Then the Change is told to subscribers.
//   - After a complete listing, a cached secret that the filter covers but
//     the listing no longer names is refreshed at once with one
//     DescribeSecret, so that a deleted secret disappears.
//   - Every secret the last complete listing of a filter named is kept on
//     top of MaxCacheSize: the cache holds at most MaxCacheSize secrets plus
//     those its listings name, so a mount of many listed secrets does not
//     thrash the LRU.
//
// A listing is background work: its calls take the background call slots
// and yield to readers' under the throttling pace (see Config.MaxInFlight),
// and the values it fetches are fetched on the cache's background context,
// given up when the cache closes. Pages are also paced (listPageGap apart)
// on the cache's clock. A client that cannot list gives an error matching
// errors.ErrUnsupported; others match the domain errors.
func (c *Cache) List(ctx context.Context, f ListFilter) ([]Listed, error) {
	api, ok := c.client.(ListClient)
	if !ok {
		return nil, fmt.Errorf("list secrets: the client has no ListSecrets: %w", errors.ErrUnsupported)
	}
	ctx = backgroundCtx(ctx) // its calls yield to readers'
	run := &listRun{key: filterKey(f), id: c.listRuns.Add(1), startSeq: c.seq.Load()}
	c.mu.Lock()
	out := make([]Listed, 0, c.listed[run.key]) // as many as last time
	c.mu.Unlock()
	pages := 0
	err := listPages(ctx, f, func(ctx context.Context, in *secretsmanager.ListSecretsInput) (*secretsmanager.ListSecretsOutput, error) {
		if pages > 0 {
			select {
			case <-c.clock.Alarm(c.clock.Now().Add(listPageGap)):
			case <-ctx.Done():
				return nil, fmt.Errorf("list secrets: %w", ctx.Err())
			}
		}
		pages++
		run.pageSeq = c.seq.Add(1)
		var page *secretsmanager.ListSecretsOutput
		err := c.call(ctx, OpListSecrets, "", func(ctx context.Context) (err error) {
			page, err = api.ListSecrets(ctx, in)
			if err == nil && page == nil {
				err = errors.New("empty answer")
			}
			return err
		})
		return page, err
	}, func(entries []types.SecretListEntry) {
		out = appendListed(out, entries)
		c.applyListing(run, entries)
	})
	if err != nil {
		return nil, err
	}
	c.endListing(run, f)
	return out, nil
}

// listRun is one listing under way.
type listRun struct {
	key string // the filter's identity, for the size bound
	// id orders runs: the entries a run names are marked with it
	// (secretEntry.listedBy), unless a later run marked them already.
	id       uint64
	startSeq uint64 // refresh sequence when the listing began
	pageSeq  uint64 // refresh sequence when the current page was asked for
	count    int    // secrets listed so far
}

// filterKey identifies a filter: listings of one filter replace each other
// in the size bound.
func filterKey(f ListFilter) string {
	return fmt.Sprintf("%q|%q|%q", f.NamePrefixes, f.Tags, f.Names)
}

// applyListing stores one page's metadata, fetches the values that moved
// (as background work), then tells subscribers what moved.
func (c *Cache) applyListing(run *listRun, entries []types.SecretListEntry) {
	now := c.clock.Now()
	var (
		changes []Change
		fetch   []fetchItem
	)
	run.count += len(entries)
	c.growBound(run)
	for i := range entries {
		le := &entries[i]
		a := answerOfListed(le)
		// A secret that says nothing of versions is left to DescribeSecret.
		versions := le.SecretVersionsToStages != nil
		byName, byARN := c.listedEntries(aws.ToString(le.Name), aws.ToString(le.ARN), versions && le.DeletedDate == nil)
		for _, e := range [2]*secretEntry{byName, byARN} {
			if e == nil {
				continue
			}
			e.markListed(run.id)
			e.mu.Lock()
			if versions {
				var ch []Change
				ch, fetch = c.storeListedLocked(e, a, run.pageSeq, now, fetch)
				changes = append(changes, ch...)
			}
			e.mu.Unlock()
		}
	}
	if len(fetch) > 0 {
		c.fetchVersions(c.newBatchWork(), fetch)
	}
	c.emit(changes)
}

// listedEntries returns the entries a listed secret updates: the one under
// its name, made if needed and create allows it, and the one under its
// ARN if cached (each nil if none). Recency is left alone: a listing is no
// use.
func (c *Cache) listedEntries(name, arn string, create bool) (byName, byARN *secretEntry) {
	var evicted **secretEntry
	c.mu.Lock()
	if e, ok := c.secrets.peek(name); ok {
		byName = e
	} else if create {
		c.nextKey++
		// The id is kept for the entry's life: a string of its own, not
		// one cut out of the page's answer (see indexStages).
		name = strings.Clone(name)
		byName = newSecretEntry(name, c.nextKey)
		_, evicted = c.secrets.putIfAbsent(name, byName)
	}
	if e, ok := c.secrets.peek(arn); ok && arn != "" && arn != name {
		byARN = e
	}
	c.mu.Unlock()
	if evicted != nil {
		c.evict(*evicted)
	}
	return byName, byARN
}

// storeListedLocked stores a listed secret's metadata in e, unless the
// cache already holds a newer word, and returns the stages that moved, and
// fetch with the values to fetch for the stages in use added.
func (c *Cache) storeListedLocked(e *secretEntry, a answer, pageSeq uint64, now time.Time, fetch []fetchItem) ([]Change, []fetchItem) {
	listedChange := wallOf(a.lastChangedDate)
	if e.described {
		known := e.meta.lastChanged
		newer := listedChange != 0 && known != 0 && listedChange > known
		switch {
		case listedChange != 0 && known != 0 && listedChange < known:
			return nil, fetch // the listing trails what a refresh already saw
		case e.seq > pageSeq && !newer:
			return nil, fetch // a refresh that started after this page has answered
		}
	}
	stages := indexStages(a.versions, e.stages)
	var changes []Change
	if e.described {
		changes = diffStages(e.id, e.stages, stages)
	}
	e.force = false
	c.storeLocked(e, a, stages, now, true)
	for _, u := range e.uses {
		vid := stages.get(u.stage)
		if vid == "" || e.deleted {
			continue
		}
		if ve, ok := e.versions.peek(vid); !ok || ve.needsFetch(now) {
			fetch = append(fetch, fetchItem{e: e, vid: vid})
		}
	}
	return changes, fetch
}

// listedRefreshTime is when metadata a listing gave e now expires:
// uniformly in [3T/2, 2T] after now (T = SecretRefreshInterval), so that a
// listing every T keeps a listed secret from needing DescribeSecret even at
// the end of the background refresh's lead, and no later than RotationGrace
// after a scheduled rotation still to come (e.meta is the listing's). It
// reports whether the time is a draw, not shortened by a rotation.
//
// The draw is made when a listing first vouches for the entry; each later
// listing keeps its offset and moves it on by the time passed, so that the
// expiry only ever moves later while listings come: a listing that changes
// nothing then leaves the entry's place in the background schedule alone
// (see schedule.set), rather than move it back and forth at random.
func (c *Cache) listedRefreshTime(e *secretEntry, now time.Time) (time.Time, bool) {
	var next time.Time
	if e.listedExpiry && !e.force && e.fail == nil && c.stamp(now) >= e.refreshedAt {
		next = now.Add(time.Duration(e.nextRefresh - e.refreshedAt))
	} else {
		t := int64(c.cfg.SecretRefreshInterval)
		half := t / 2
		next = now.Add(time.Duration(t + half + c.rand.Int64N(t-half+1)))
	}
	if r := e.meta.nextRotation.time(); !r.IsZero() && r.After(now) {
		if r = r.Add(c.cfg.RotationGrace); r.Before(next) {
			return r, false
		}
	}
	return next, true
}

// describeOfListed is the DescribeSecret answer a listing entry stands for.
func describeOfListed(le types.SecretListEntry) *secretsmanager.DescribeSecretOutput {
	return &secretsmanager.DescribeSecretOutput{
		ARN:                le.ARN,
		Name:               le.Name,
		Description:        le.Description,
		KmsKeyId:           le.KmsKeyId,
		CreatedDate:        le.CreatedDate,
		DeletedDate:        le.DeletedDate,
		LastAccessedDate:   le.LastAccessedDate,
		LastChangedDate:    le.LastChangedDate,
		LastRotatedDate:    le.LastRotatedDate,
		NextRotationDate:   le.NextRotationDate,
		OwningService:      le.OwningService,
		PrimaryRegion:      le.PrimaryRegion,
		RotationEnabled:    le.RotationEnabled,
		RotationLambdaARN:  le.RotationLambdaARN,
		RotationRules:      le.RotationRules,
		Tags:               le.Tags,
		VersionIdsToStages: le.SecretVersionsToStages,
	}
}

// growBound raises the size bound while a listing names more secrets than
// its filter's last one did, so that its own entries do not evict each
// other.
func (c *Cache) growBound(run *listRun) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if run.count > c.listed[run.key] {
		c.listed[run.key] = run.count
		c.secrets.max = c.boundLocked()
	}
}

// boundLocked is the LRU's bound: MaxCacheSize plus the secrets the last
// listing of each filter named (counted once per filter; filters that
// overlap count their common secrets twice, which only leaves room).
func (c *Cache) boundLocked() int {
	n := c.cfg.MaxCacheSize
	for _, k := range c.listed {
		n += k
	}
	return n
}

// endListing, after a complete listing, sets the size bound to what it
// named, and refreshes at once each cached secret the filter covers that it
// no longer names.
func (c *Cache) endListing(run *listRun, f ListFilter) {
	var gone []*secretEntry
	c.mu.Lock()
	c.listed[run.key] = run.count
	c.secrets.max = c.boundLocked()
	evicted := c.secrets.shrink()
	c.secrets.each(func(_ string, e *secretEntry) {
		if e.listedBy.Load() < run.id {
			gone = append(gone, e)
		}
	})
	c.mu.Unlock()
	for _, e := range evicted {
		c.evict(e)
	}
	for _, e := range gone {
		e.mu.Lock()
		stale := e.described && !e.deleted && e.seq <= run.startSeq && covers(f, e.meta)
		name := e.meta.name
		e.mu.Unlock()
		if stale && name != e.id && c.namedBy(name, run) {
			stale = false // listed under its name; cached under its ARN
		}
		if !stale {
			continue
		}
		c.goBackground(func() {
			select {
			case <-c.backgroundFlight(e, func(e *secretEntry, _ time.Time) bool { return e.seq <= run.startSeq }):
			case <-c.done:
			}
		})
	}
}

// namedBy reports whether the entry cached under id, if any, was named by
// run or a later listing.
func (c *Cache) namedBy(id string, run *listRun) bool {
	c.mu.Lock()
	e, ok := c.secrets.peek(id)
	c.mu.Unlock()
	if !ok {
		return false
	}
	return e.listedBy.Load() >= run.id
}

// covers reports whether a listing of f would name a secret with this
// metadata, were it still there.
func covers(f ListFilter, m secretMeta) bool {
	if len(f.Names) > 0 {
		return NameFilterable(m.name) && slices.Contains(f.Names, m.name)
	}
	if len(f.NamePrefixes) > 0 && !slices.ContainsFunc(f.NamePrefixes, func(p string) bool { return strings.HasPrefix(m.name, p) }) {
		return false
	}
	for _, t := range f.Tags {
		if v, ok := m.tags[t.Key]; !ok || v != t.Value {
			return false
		}
	}
	return true
}
