package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/secretsfs/secretsfs/cache"
	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/mount/mapping"
)

// Listing shows what ListSecrets returns, narrowed by name prefixes
// and tags, listed again every interval.
type Listing struct {
	lister   Lister
	describe Describer
	prefixes []string
	tags     []cache.Tag
	opts     Options
	subs     subscribers
	group    singleflight.Group

	lookups *rate.Limiter // Find's calls for names the listing lacks

	mu       sync.Mutex
	listed   []sfs.SecretRef     // guarded by mu; the last listing, sorted by name
	shown    []sfs.SecretRef     // guarded by mu; List's answer, read-only; valid while shownOK
	shownOK  bool                // guarded by mu; shown is up to date
	found    map[string]foundRef // guarded by mu; names Find found that the listing lacked
	misses   *missSet            // guarded by mu; names that are no secret to show
	failures int                 // guarded by mu; consecutive failed listings
	refused  int                 // guarded by mu; lookups refused by the rate limit since last logged
	loggedAt time.Time           // guarded by mu; when refused lookups were last logged
	bg       background
}

type foundRef struct {
	ref sfs.SecretRef
	at  time.Time // when Find asked about it
}

var _ Catalog = (*Listing)(nil)

// NewListing returns a catalog in listing mode: the secrets l lists whose
// names start with one of prefixes and that carry every tag of tags (no
// prefix or no tag: no such rule); d answers Find's lookups.
func NewListing(l Lister, d Describer, prefixes []string, tags []cache.Tag, opts Options) *Listing {
	return &Listing{
		lister:   l,
		describe: d,
		prefixes: slices.Clone(prefixes),
		tags:     slices.Clone(tags),
		opts:     opts,
		lookups:  rate.NewLimiter(opts.LookupRate, opts.LookupBurst),
		found:    make(map[string]foundRef),
		misses:   newMissSet(opts.MissTTL, opts.MaxMisses),
	}
}

// Start makes the first listing and starts re-listing in the background.
func (c *Listing) Start(ctx context.Context) error {
	started := c.opts.Clock.Now()
	if err := c.relist(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.opts.Logger.Error("listing secrets failed; the mount starts without them and retries", "err", err)
	}
	c.bg.start(ctx, func(ctx context.Context) { c.loop(ctx, started) })
	return nil
}

// Stop ends re-listing.
func (c *Listing) Stop() { c.bg.stop() }

// loop lists again one interval after the last listing started (a pass
// of many pages takes a while: timing from its end would list less than
// once per interval), or after the retry delay when it failed.
func (c *Listing) loop(ctx context.Context, started time.Time) {
	for {
		c.mu.Lock()
		next := started.Add(c.opts.Interval)
		if c.failures > 0 {
			next = c.opts.Clock.Now().Add(c.opts.retryDelay(c.failures))
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-c.opts.Clock.Alarm(next):
		}
		started = c.opts.Clock.Now()
		if err := c.relist(ctx); err != nil && ctx.Err() == nil {
			c.opts.Logger.Warn("listing secrets failed; the last listing stays", "err", err)
		}
	}
}

// List returns the last listing plus the names Find found since, sorted by
// name. The slice is shared by every caller until the next change: read it,
// never change it. It is made once per change of the listing (or secret
// found), not per call.
func (c *Listing) List() []sfs.SecretRef {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shownLocked()
}

// Len is len(List()), without a copy.
func (c *Listing) Len() int { return len(c.List()) }

// RefsOf returns the refs under which a secret id is shown (shared,
// read-only), found by a binary search: in listing mode a secret's id is
// its name.
func (c *Listing) RefsOf(id string) []sfs.SecretRef {
	list := c.List()
	i, ok := slices.BinarySearchFunc(list, id, byName)
	if !ok {
		return nil
	}
	return list[i : i+1 : i+1]
}

// shownLocked returns List's answer, made again if it changed since.
func (c *Listing) shownLocked() []sfs.SecretRef {
	if !c.shownOK {
		c.shown, c.shownOK = c.listLocked(), true
	}
	return c.shown
}

// listLocked makes List's answer (a new slice).
func (c *Listing) listLocked() []sfs.SecretRef {
	out := slices.Clone(c.listed)
	for _, f := range c.found {
		out = append(out, f.ref)
	}
	slices.SortFunc(out, cmpName)
	// A name Find found may have been listed meanwhile: show it once.
	return slices.CompactFunc(out, func(a, b sfs.SecretRef) bool { return a.Name == b.Name })
}

// OnChange calls fn after a listing changed List's answer.
func (c *Listing) OnChange(fn func()) (cancel func()) { return c.subs.add(fn) }

// Find asks DescribeSecret about a name the listing lacks. Names outside the
// prefixes and names no secret can have are misses without a call, and so
// are names beyond the rate of LookupRate; a secret without the tags is a
// miss too. A miss is remembered for MissTTL, MaxMisses of them at most.
func (c *Listing) Find(ctx context.Context, name string) (sfs.SecretRef, bool, error) {
	if !mapping.ValidSecretName(name) || !c.matchesPrefix(name) {
		return sfs.SecretRef{}, false, nil
	}
	now := c.opts.Clock.Now()
	c.mu.Lock()
	if i, ok := slices.BinarySearchFunc(c.listed, name, byName); ok {
		ref := c.listed[i]
		c.mu.Unlock()
		return ref, true, nil
	}
	if f, ok := c.found[name]; ok {
		c.mu.Unlock()
		return f.ref, true, nil
	}
	if c.misses.has(name, now) {
		c.mu.Unlock()
		return sfs.SecretRef{}, false, nil
	}
	c.mu.Unlock()

	// One DescribeSecret per name however many lookups wait for it, detached
	// from the first caller so that its interruption does not fail the rest.
	ch := c.group.DoChan(name, func() (any, error) {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), defaultFindTimeout)
		defer cancel()
		return c.find(dctx, name)
	})
	select {
	case <-ctx.Done():
		return sfs.SecretRef{}, false, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return sfs.SecretRef{}, false, r.Err
		}
		f := r.Val.(findResult)
		return f.ref, f.ok, nil
	}
}

type findResult struct {
	ref sfs.SecretRef
	ok  bool
}

func (c *Listing) find(ctx context.Context, name string) (findResult, error) {
	asked := c.opts.Clock.Now()
	if !c.lookups.AllowN(asked, 1) {
		c.refuse(asked)
		return findResult{}, nil
	}
	inScope := func(info cache.SecretInfo) bool { return c.inScope(name, info) }
	info, err := c.describe.Lookup(ctx, name, inScope)
	miss := errors.Is(err, cache.ErrNotFound)
	if err != nil && !miss {
		return findResult{}, fmt.Errorf("find %q: %w", name, err)
	}
	miss = miss || !inScope(info)
	now := c.opts.Clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if miss {
		c.misses.add(name, now)
		return findResult{}, nil
	}
	ref := sfs.SecretRef{Name: name, ID: name}
	c.found[name] = foundRef{ref: ref, at: asked}
	c.shownOK = false
	c.opts.Logger.Debug("found a secret the listing lacks", "name", name)
	return findResult{ref: ref, ok: true}, nil
}

// refuse counts a lookup refused by the rate limit, and logs the count at
// most once a minute.
func (c *Listing) refuse(now time.Time) {
	c.mu.Lock()
	c.refused++
	n := c.refused
	log := now.Sub(c.loggedAt) >= time.Minute
	if log {
		c.refused, c.loggedAt = 0, now
	}
	c.mu.Unlock()
	if log {
		c.opts.Logger.Warn("too many lookups of names the listing lacks; answering ENOENT without asking Secrets Manager",
			"refused", n, "limit_per_second", float64(c.opts.LookupRate), "burst", c.opts.LookupBurst)
	}
}

// inScope reports whether what DescribeSecret says of a name makes it a
// secret to show: that very name, not scheduled for deletion, with every
// tag asked for. (Find checks the prefixes before asking.)
func (c *Listing) inScope(name string, info cache.SecretInfo) bool {
	have := make([]cache.Tag, 0, len(info.Tags))
	for k, v := range info.Tags {
		have = append(have, cache.Tag{Key: k, Value: v})
	}
	return !info.ScheduledForDeletion && info.Name == name && hasTags(have, c.tags)
}

func (c *Listing) matchesPrefix(name string) bool {
	return len(c.prefixes) == 0 || slices.ContainsFunc(c.prefixes, func(p string) bool { return strings.HasPrefix(name, p) })
}

// relist lists the secrets, keeps those that pass the filters, and tells
// the subscribers when List's answer changed.
func (c *Listing) relist(ctx context.Context) error {
	started := c.opts.Clock.Now()
	refs, err := c.listAll(ctx)
	now := c.opts.Clock.Now()
	c.mu.Lock()
	if err != nil {
		c.failures++
		c.mu.Unlock()
		return err
	}
	c.failures = 0
	before := c.shownLocked()
	if slices.Equal(c.listed, refs) {
		// The same secrets: keep the strings the tree already shares, not
		// this pass's (each would keep a block of the SDK's answer).
		refs = c.listed
	}
	c.listed = refs
	for name, f := range c.found {
		_, listed := slices.BinarySearchFunc(refs, name, byName)
		// A listing that started after Find asked is the newer word: a
		// secret it lacks has left the scope (or is gone). One found while
		// this listing was under way is kept until the next one, since
		// ListSecrets may not show a new secret at once.
		if listed || f.at.Before(started) {
			delete(c.found, name)
		}
	}
	c.misses.expire(now)
	for _, r := range refs {
		c.misses.remove(r.Name)
	}
	after := c.listLocked()
	c.shown, c.shownOK = after, true
	c.mu.Unlock()

	changed := !slices.Equal(before, after)
	c.opts.Logger.Debug("listed secrets", "count", len(refs), "changed", changed)
	if changed {
		added, removed := diffRefs(before, after)
		c.opts.Logger.Info("the listing changed", "secrets", len(after), "added", added, "removed", removed)
		c.subs.notify()
	}
	return nil
}

// listAll lists the secrets and returns those that pass the filters,
// sorted by name.
func (c *Listing) listAll(ctx context.Context) ([]sfs.SecretRef, error) {
	listed, err := c.lister.List(ctx, cache.ListFilter{NamePrefixes: c.prefixes, Tags: c.tags})
	if err != nil {
		return nil, listError(err)
	}
	var refs []sfs.SecretRef
	for _, s := range listed {
		if c.keep(s) {
			refs = append(refs, sfs.SecretRef{Name: s.Name, ID: s.Name})
		}
	}
	slices.SortFunc(refs, cmpName)
	return slices.CompactFunc(refs, func(a, b sfs.SecretRef) bool { return a.Name == b.Name }), nil
}

// keep applies the exact filters to one secret of a listing.
func (c *Listing) keep(s cache.Listed) bool {
	return s.Name != "" && !s.Deleted && c.matchesPrefix(s.Name) && (len(c.tags) == 0 || hasTags(s.Tags, c.tags))
}

// hasTags reports whether have holds every tag of want, key and value alike.
func hasTags(have, want []cache.Tag) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// listError adds a hint to a refused listing.
func listError(err error) error {
	if errors.Is(err, cache.ErrAccessDenied) {
		return fmt.Errorf("list secrets: %w (grant secretsmanager:ListSecrets, or name the secrets with --secret)", err)
	}
	return fmt.Errorf("list secrets: %w", err)
}

// diffRefs counts the names added and removed between two sorted lists.
func diffRefs(before, after []sfs.SecretRef) (added, removed int) {
	in := func(refs []sfs.SecretRef, name string) bool {
		_, ok := slices.BinarySearchFunc(refs, name, byName)
		return ok
	}
	for _, r := range after {
		if !in(before, r.Name) {
			added++
		}
	}
	for _, r := range before {
		if !in(after, r.Name) {
			removed++
		}
	}
	return added, removed
}
