package catalog

import (
	"context"
	"errors"
	"slices"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/secretsfs/secretsfs/cache"
	sfs "github.com/secretsfs/secretsfs/fs"
)

// resolveConcurrency bounds the DescribeSecret calls explicit mode makes at
// once while it resolves ids to names.
const resolveConcurrency = 8

// Explicit shows only the secrets named on the command line, each at
// its name's path. It never lists: an id is resolved to its name with
// DescribeSecret (through the cache, which then holds its metadata for the
// first read). An id that cannot be resolved is shown under the id itself, so
// that reading its files reports why (ENOENT, EACCES, EIO), and is asked for
// again with backoff until it resolves.
type Explicit struct {
	ids      []string
	describe Describer
	opts     Options
	subs     subscribers

	mu       sync.Mutex
	names    []string        // guarded by mu; per id, its resolved name or "" while unresolved
	shown    []sfs.SecretRef // guarded by mu; List's answer, read-only, made again when names change
	shownAt  map[string]int  // guarded by mu; id -> its index in shown
	failures int             // guarded by mu; consecutive rounds with an unresolved id
	bg       background
}

var _ Catalog = (*Explicit)(nil)

// hiddenName marks an id that names the same secret as another one; no
// secret name contains NUL.
const hiddenName = "\x00"

// NewExplicit returns a catalog in explicit mode showing the secrets ids
// name (names or ARNs), resolved with d.
func NewExplicit(ids []string, d Describer, opts Options) *Explicit {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	c := &Explicit{ids: ids, describe: d, opts: opts, names: make([]string, len(ids))}
	c.showLocked()
	return c
}

// Start resolves every id, then keeps resolving those that failed.
func (c *Explicit) Start(ctx context.Context) error {
	c.resolve(ctx)
	if err := ctx.Err(); err != nil {
		return err
	}
	c.bg.start(ctx, c.loop)
	return nil
}

// Stop ends the background resolution.
func (c *Explicit) Stop() { c.bg.stop() }

func (c *Explicit) loop(ctx context.Context) {
	for {
		c.mu.Lock()
		failures := c.failures
		c.mu.Unlock()
		if failures == 0 {
			return // every id is resolved; names never change
		}
		select {
		case <-ctx.Done():
			return
		case <-c.opts.Clock.Alarm(c.opts.Clock.Now().Add(c.opts.retryDelay(failures))):
		}
		c.resolve(ctx)
	}
}

// resolve asks about every unresolved id and tells the subscribers when a
// name was learnt.
func (c *Explicit) resolve(ctx context.Context) {
	c.mu.Lock()
	var todo []int
	for i, n := range c.names {
		if n == "" {
			todo = append(todo, i)
		}
	}
	c.mu.Unlock()

	names := make([]string, len(todo))
	var g errgroup.Group
	g.SetLimit(resolveConcurrency)
	for j, i := range todo {
		g.Go(func() error {
			id := c.ids[i]
			info, err := c.describe.Describe(ctx, id)
			switch {
			case err == nil && info.Name != "":
				names[j] = info.Name
			case err == nil:
				c.opts.Logger.Warn("secret has no name; it is shown under its id", "secret", id)
			case errors.Is(err, cache.ErrNotFound):
				c.opts.Logger.Warn("secret not found; it is shown under its id and its files give ENOENT until it exists", "secret", id)
			case ctx.Err() == nil:
				c.opts.Logger.Warn("secret could not be described; it is shown under its id and asked for again", "secret", id, "err", err)
			}
			return nil // an id left unresolved is retried; it stops no other
		})
	}
	g.Wait()

	c.mu.Lock()
	known := make(map[string]bool, len(c.names)) // names already given to an id
	for _, n := range c.names {
		known[n] = true
	}
	learnt, hidden, unresolved := false, false, 0
	for j, i := range todo {
		if names[j] == "" {
			unresolved++
			continue
		}
		if known[names[j]] {
			c.opts.Logger.Warn("two ids name the same secret; the second is not shown", "secret", c.ids[i], "name", names[j])
			c.names[i] = hiddenName
			hidden = true
			continue
		}
		c.names[i] = names[j]
		known[names[j]] = true
		learnt = true
	}
	if learnt || hidden {
		c.showLocked()
	}
	if unresolved > 0 {
		c.failures++
	} else {
		c.failures = 0
	}
	c.mu.Unlock()
	// Subscribers are told only about changes after Start's first round.
	if learnt && c.bg.running() {
		c.subs.notify()
	}
}

// List returns the secrets to show, sorted by name: each resolved id at
// its name, each unresolved one under the id itself. The slice is shared by
// every caller until the next change: read it, never change it.
func (c *Explicit) List() []sfs.SecretRef {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shown
}

// Len is len(List()), without a copy.
func (c *Explicit) Len() int { return len(c.List()) }

// RefsOf returns the ref under which a secret id is shown, if any (shared,
// read-only).
func (c *Explicit) RefsOf(id string) []sfs.SecretRef {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.shownAt[id]
	if !ok {
		return nil
	}
	return c.shown[i : i+1 : i+1]
}

// showLocked makes List's answer again from the names: once per change.
func (c *Explicit) showLocked() {
	out := make([]sfs.SecretRef, 0, len(c.ids))
	for i, id := range c.ids {
		switch n := c.names[i]; n {
		case hiddenName:
		case "":
			out = append(out, sfs.SecretRef{Name: id, ID: id})
		default:
			out = append(out, sfs.SecretRef{Name: n, ID: id})
		}
	}
	slices.SortFunc(out, cmpName)
	c.shown = slices.CompactFunc(out, func(a, b sfs.SecretRef) bool { return a.Name == b.Name })
	c.shownAt = make(map[string]int, len(c.shown))
	for i, r := range c.shown {
		c.shownAt[r.ID] = i
	}
}

// Find says no: only the named secrets are shown.
func (c *Explicit) Find(context.Context, string) (sfs.SecretRef, bool, error) {
	return sfs.SecretRef{}, false, nil
}

// OnChange calls fn after an id that had failed was resolved.
func (c *Explicit) OnChange(fn func()) (cancel func()) { return c.subs.add(fn) }
