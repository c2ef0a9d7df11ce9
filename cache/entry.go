package cache

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// secretEntry is the cache's state for one secret id: what it keeps of the
// last DescribeSecret answer, its refresh schedule, and the secret's
// versions. It is kept small: without a Hook no SDK answer is kept, only
// what is served, and its lists are made when first needed.
type secretEntry struct {
	id  string
	key uint64 // unique per entry, names its single flights

	sched schedItem // guarded by the Cache's schedule.mu

	// All fields below are guarded by the Cache's entry lock for this entry
	// (mu); versions' fields too.
	mu          sync.Mutex
	stored      any               // with a Hook: what Hook.Put returned for the answer
	meta        secretMeta        // from the raw answer
	stages      map[string]string // stage -> version id, from the raw answer
	err         error             // last refresh error; nil after a success
	errCount    int               // consecutive failed refreshes
	nextRetry   time.Time         // while err != nil: when to retry
	nextRefresh time.Time         // while err == nil: when the answer expires
	refreshedAt time.Time         // last successful refresh
	seq         uint64            // sequence number of the stored refresh
	attemptSeq  uint64            // sequence number of the last refresh that called DescribeSecret
	forcedAt    time.Time         // when the last forced refresh (RefreshNow, RequestRefresh) started
	versions    versionLRU
	served      []stageVersion // stage -> version id last served with a value
	tracked     []string       // stages read through this entry
	pins        int            // Pin calls not yet undone
	promote     chan struct{}  // closed when a reader joins the background refresh in flight; nil if none
	described   bool           // an answer is stored
	force       bool           // refresh on next use
	used        bool           // read since the last refresh started
	read        bool           // a value was ever asked for
	evicted     bool           // dropped by the LRU: no longer scheduled
	// listedExpiry: nextRefresh is a listing's, drawn by listedRefreshTime
	// after refreshedAt, not shortened by a rotation.
	listedExpiry bool
	listedBy     atomic.Uint64 // the latest listing run that named the secret (listRun.id)
}

// markListed records that listing run id named the secret, unless a later
// run did already.
func (e *secretEntry) markListed(id uint64) {
	for {
		old := e.listedBy.Load()
		if old >= id || e.listedBy.CompareAndSwap(old, id) {
			return
		}
	}
}

// stageVersion says which version a stage was served from.
type stageVersion struct{ stage, vid string }

// secretMeta is what the cache keeps of a DescribeSecret answer besides the
// stages: nothing secret.
type secretMeta struct {
	arn, name    string
	deleted      bool      // scheduled for deletion
	nextRotation time.Time // zero when none
	lastChanged  time.Time // LastChangedDate; zero when not given
	tags         map[string]string
}

// versionEntry is one version's value. Versions are immutable, so a value
// once fetched is never fetched again.
type versionEntry struct {
	id        string
	stored    any         // with a Hook: what Hook.Put returned for the answer
	val       secretValue // without a Hook: the value
	hasValue  bool        // stored or val holds the answer's value
	created   time.Time
	fetchedAt time.Time
	err       error
	errCount  int
	nextRetry time.Time
	busy      *claim // while a fetch of the value is under way
}

// secretValue is a version's value as it is served: the answer's
// SecretString or SecretBinary (the answer has one, or neither).
type secretValue struct {
	str            string
	bin            []byte // the cache's own: zeroed on eviction
	hasStr, hasBin bool
}

// valueOfAnswer is what is served of a GetSecretValue answer. It keeps the
// answer's buffers, not the answer.
func valueOfAnswer(out *secretsmanager.GetSecretValueOutput) secretValue {
	var v secretValue
	if out.SecretString != nil {
		v.str, v.hasStr = *out.SecretString, true
	}
	if out.SecretBinary != nil {
		v.bin, v.hasBin = out.SecretBinary, true
	}
	return v
}

func newSecretEntry(id string, key uint64) *secretEntry {
	return &secretEntry{
		id:       id,
		key:      key,
		force:    true,
		sched:    schedItem{idx: -1},
		versions: versionLRU{max: versionCacheSize},
	}
}

// track records that a stage is read through the entry.
func (e *secretEntry) track(stage string) {
	if !slices.Contains(e.tracked, stage) {
		e.tracked = append(e.tracked, stage)
	}
}

// servedVersion tells which version a stage was last served from.
func (e *secretEntry) servedVersion(stage string) (string, bool) {
	for _, sv := range e.served {
		if sv.stage == stage {
			return sv.vid, true
		}
	}
	return "", false
}

// setServed records that a stage was served from version vid.
func (e *secretEntry) setServed(stage, vid string) {
	for i := range e.served {
		if e.served[i].stage == stage {
			e.served[i].vid = vid
			return
		}
	}
	e.served = append(e.served, stageVersion{stage, vid})
}

// versionLRU is a secret's versions, most recently used first: the rules of
// lru, in a slice, as a secret holds one or two versions and at most
// versionCacheSize. It is not safe for concurrent use.
type versionLRU struct {
	max   int
	items []*versionEntry
}

func (l *versionLRU) find(vid string) int {
	for i, v := range l.items {
		if v.id == vid {
			return i
		}
	}
	return -1
}

// get returns the version vid and marks it most recently used.
func (l *versionLRU) get(vid string) (*versionEntry, bool) {
	i := l.find(vid)
	if i < 0 {
		return nil, false
	}
	v := l.items[i]
	copy(l.items[1:i+1], l.items[:i])
	l.items[0] = v
	return v, true
}

// peek returns the version vid without changing its recency.
func (l *versionLRU) peek(vid string) (*versionEntry, bool) {
	if i := l.find(vid); i >= 0 {
		return l.items[i], true
	}
	return nil, false
}

// putIfAbsent inserts v as vid unless vid is present. It reports whether it
// inserted, and returns the version evicted to make room, if any.
func (l *versionLRU) putIfAbsent(vid string, v *versionEntry) (inserted bool, evicted **versionEntry) {
	if l.find(vid) >= 0 {
		return false, nil
	}
	if len(l.items) < l.max {
		l.items = append(l.items, nil)
	} else {
		old := l.items[len(l.items)-1]
		evicted = &old
	}
	copy(l.items[1:], l.items)
	l.items[0] = v
	return true, evicted
}

// len reports the number of versions.
func (l *versionLRU) len() int { return len(l.items) }

// each calls f for every version, most recently used first.
func (l *versionLRU) each(f func(string, *versionEntry)) {
	for _, v := range l.items {
		f(v.id, v)
	}
}

// needsRefresh reports whether the secret's metadata must be asked for
// again: on first use or when forced; while in error, once the retry time
// has come (the refresh interval is ignored then); otherwise once expired.
func (e *secretEntry) needsRefresh(now time.Time) bool {
	switch {
	case e.force:
		return true
	case e.err != nil:
		return !now.Before(e.nextRetry)
	default:
		return !now.Before(e.nextRefresh)
	}
}

// needsFetch reports whether a version's value must be fetched: when it has
// none and either was never tried or its retry time has come.
func (v *versionEntry) needsFetch(now time.Time) bool {
	if v.hasValue {
		return false
	}
	return v.err == nil || !now.Before(v.nextRetry)
}

// answer is what the cache reads of a DescribeSecret answer, or of the
// listing entry that stands for one, without copying either: a listing
// pass that changes nothing then makes nothing per secret.
type answer struct {
	arn, name                                  *string
	deletedDate, nextRotation, lastChangedDate *time.Time
	tags                                       []types.Tag
	versions                                   map[string][]string
	out                                        *secretsmanager.DescribeSecretOutput // the answer, if it is one
	listed                                     *types.SecretListEntry               // the listing entry, if it is one
}

func answerOfDescribe(out *secretsmanager.DescribeSecretOutput) answer {
	return answer{
		arn: out.ARN, name: out.Name,
		deletedDate: out.DeletedDate, nextRotation: out.NextRotationDate, lastChangedDate: out.LastChangedDate,
		tags: out.Tags, versions: out.VersionIdsToStages, out: out,
	}
}

func answerOfListed(le *types.SecretListEntry) answer {
	return answer{
		arn: le.ARN, name: le.Name,
		deletedDate: le.DeletedDate, nextRotation: le.NextRotationDate, lastChangedDate: le.LastChangedDate,
		tags: le.Tags, versions: le.SecretVersionsToStages, listed: le,
	}
}

// describeOutput is the DescribeSecret answer, as a Hook receives it: a
// listing entry's is made on demand.
func (a answer) describeOutput() *secretsmanager.DescribeSecretOutput {
	if a.out != nil {
		return a.out
	}
	return describeOfListed(*a.listed)
}

// indexStages maps each stage to its version id. An answer that says what
// prev (the entry's map, nil if none) says returns prev itself, so that a
// listing every few seconds that changes nothing allocates no map per secret.
// Strings are copies, or prev's own: the SDK cuts an answer's strings out of
// shared blocks, and one string kept would keep its whole block.
func indexStages(versions map[string][]string, prev map[string]string) map[string]string {
	if sameStages(versions, prev) {
		return prev
	}
	idx := make(map[string]string, len(versions))
	for vid, stages := range versions {
		for _, s := range stages {
			stage := internStage(s)
			if old, ok := prev[stage]; ok && old == vid {
				idx[stage] = old
				continue
			}
			if stage == s {
				stage = strings.Clone(s)
			}
			idx[stage] = strings.Clone(vid)
		}
	}
	return idx
}

// sameStages reports whether an answer's versions and stages are those of
// idx.
func sameStages(versions map[string][]string, idx map[string]string) bool {
	if idx == nil {
		return false
	}
	n := 0
	for vid, stages := range versions {
		for _, s := range stages {
			if got, ok := idx[s]; !ok || got != vid {
				return false
			}
			n++
		}
	}
	return n == len(idx)
}

// internStage returns the service's own stages as constants, so that every
// entry does not keep its own copy of their names.
func internStage(s string) string {
	switch s {
	case "AWSCURRENT":
		return "AWSCURRENT"
	case "AWSPREVIOUS":
		return "AWSPREVIOUS"
	case "AWSPENDING":
		return "AWSPENDING"
	}
	return s
}

// versionForStage finds the version id a DescribeSecret answer gives a stage.
func versionForStage(out *secretsmanager.DescribeSecretOutput, stage string) string {
	for vid, stages := range out.VersionIdsToStages {
		for _, s := range stages {
			if s == stage {
				return vid
			}
		}
	}
	return ""
}

// metaOf is what an entry keeps of an answer; what prev (the entry's) holds
// already is kept, not copied again.
func metaOf(a answer, prev secretMeta) secretMeta {
	m := secretMeta{deleted: a.deletedDate != nil}
	m.arn = keep(prev.arn, aws.ToString(a.arn))
	m.name = keep(prev.name, aws.ToString(a.name))
	if a.nextRotation != nil {
		m.nextRotation = *a.nextRotation
	}
	if a.lastChangedDate != nil {
		m.lastChanged = *a.lastChangedDate
	}
	switch {
	case len(a.tags) == 0:
	case sameTags(a.tags, prev.tags):
		m.tags = prev.tags
	default:
		m.tags = make(map[string]string, len(a.tags))
		for _, t := range a.tags {
			if t.Key != nil {
				m.tags[strings.Clone(*t.Key)] = strings.Clone(aws.ToString(t.Value))
			}
		}
	}
	return m
}

// sameTags reports whether an answer's tags are those of m.
func sameTags(tags []types.Tag, m map[string]string) bool {
	n := 0
	for _, t := range tags {
		if t.Key == nil {
			continue
		}
		if v, ok := m[*t.Key]; !ok || v != aws.ToString(t.Value) {
			return false
		}
		n++
	}
	return n == len(m)
}

// keep returns s as a string of its own: old when equal (an entry's string,
// kept across answers that repeat it), else a copy (see indexStages).
func keep(old, s string) string {
	if s == old {
		return old
	}
	return strings.Clone(s)
}
