package cache

import (
	"sync/atomic"
	"time"
)

type counters struct {
	hits, misses, errors atomic.Int64
	calls                map[string]*atomic.Int64 // by operation; built by newCallCounters, then read-only
}

// newCallCounters returns one counter per operation the cache calls.
func newCallCounters() map[string]*atomic.Int64 {
	calls := make(map[string]*atomic.Int64)
	for _, op := range apiOps() {
		calls[op] = new(atomic.Int64)
	}
	return calls
}

// called counts one call of op.
func (c *counters) called(op string) { c.calls[op].Add(1) }

// Stats are cache-wide counters since the cache was built.
type Stats struct {
	// Hits counts reads served without waiting for Secrets Manager.
	Hits int64
	// Misses counts reads that waited for a call (or joined one).
	Misses int64
	// APICalls counts calls made, by operation name (OpDescribeSecret,
	// OpGetSecretValue, OpBatchGetSecretValue, OpListSecrets).
	APICalls map[string]int64
	// Errors counts failed calls.
	Errors int64
	// Secrets is how many secrets are cached now.
	Secrets int
}

// Stats returns the cache's counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	n := c.secrets.len()
	c.mu.Unlock()
	calls := make(map[string]int64, len(c.stats.calls))
	for op, n := range c.stats.calls {
		calls[op] = n.Load()
	}
	return Stats{
		Hits:     c.stats.hits.Load(),
		Misses:   c.stats.misses.Load(),
		Errors:   c.stats.errors.Load(),
		APICalls: calls,
		Secrets:  n,
	}
}

// SecretInfo describes what the cache holds for one secret id. Nothing in it
// is secret.
type SecretInfo struct {
	SecretID string
	ARN      string
	Name     string
	// Stages maps each stage to its version id, as last described.
	Stages map[string]string
	// RefreshedAt is when DescribeSecret last succeeded; zero if never.
	RefreshedAt time.Time
	// NextRefresh is when the answer expires (or, in error, the retry time).
	NextRefresh time.Time
	// Stale is true while the last refresh failed and an older answer is in
	// use.
	Stale bool
	// LastError is the last refresh's error; nil after a success.
	LastError error
	// ErrorCount is the number of consecutive failed refreshes.
	ErrorCount int
	// ScheduledForDeletion is true when DescribeSecret reported a DeletedDate.
	ScheduledForDeletion bool
	// Tags are the secret's tags, as last described.
	Tags map[string]string
	// Read is true once a value of the secret was asked for; a secret only
	// described (Describe) is not read.
	Read bool
	// Pinned is true while a Pin of the secret is in force.
	Pinned bool
	// Versions are the cached versions, most recently used first.
	Versions []VersionInfo
}

// VersionInfo describes one cached version.
type VersionInfo struct {
	VersionID   string
	CreatedDate time.Time
	FetchedAt   time.Time // zero if the value was never fetched
	LastError   error
}

// Info reports what the cache holds for a secret id, without making a call
// or changing recency. ok is false when the id is not cached.
func (c *Cache) Info(secretID string) (info SecretInfo, ok bool) {
	c.mu.Lock()
	e, ok := c.secrets.peek(secretID)
	c.mu.Unlock()
	if !ok {
		return SecretInfo{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	info = SecretInfo{
		SecretID:             secretID,
		ARN:                  e.meta.arn,
		Name:                 e.meta.name,
		Stages:               e.stages.toMap(),
		RefreshedAt:          c.timeOf(e.refreshedAt),
		NextRefresh:          c.timeOf(e.nextRefresh),
		Stale:                e.fail != nil && e.described,
		LastError:            e.fail.lastErr(),
		ErrorCount:           e.fail.errCount(),
		ScheduledForDeletion: e.deleted,
		Read:                 e.read,
		Pinned:               e.pins > 0,
	}
	if e.fail != nil {
		info.NextRefresh = e.fail.retry
	}
	if len(e.meta.tags) > 0 {
		info.Tags = make(map[string]string, len(e.meta.tags))
		for k, v := range e.meta.tags {
			info.Tags[k] = v
		}
	}
	e.versions.each(func(_ string, v *versionEntry) {
		info.Versions = append(info.Versions, VersionInfo{
			VersionID: v.id, CreatedDate: v.created.time(), FetchedAt: c.timeOf(v.fetchedAt), LastError: v.fail.lastErr(),
		})
	})
	return info, true
}

// SecretIDs lists the cached secret ids, most recently used first.
func (c *Cache) SecretIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, c.secrets.len())
	c.secrets.each(func(id string, _ *secretEntry) { ids = append(ids, id) })
	return ids
}
