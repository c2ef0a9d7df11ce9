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
// last DescribeSecret answer (or listing), its refresh schedule, and the
// secret's versions. It is kept small, as a daemon holds one per secret:
// without a Hook no SDK answer is kept, only what is served; stages are a
// few pairs sharing one string per version id; what only some entries need
// (a failure, a Hook's answer, a forced refresh) is in a side struct made
// when first needed; its lists are made when first needed.
type secretEntry struct {
	id string

	sched schedItem // guarded by the Cache's schedule.mu

	// listedBy is the latest listing run that named the secret
	// (listRun.id).
	listedBy atomic.Uint64

	// All fields below are guarded by the Cache's entry lock for this entry
	// (mu); versions' fields too.
	mu          sync.Mutex
	meta        secretMeta    // from the raw answer
	stages      stageVersions // from the raw answer
	uses        []stageUse    // stages read through this entry
	versions    versionLRU
	nextRefresh stamp         // while fail is nil: when the answer expires
	refreshedAt stamp         // last successful refresh
	seq         uint64        // sequence number of the stored refresh
	attemptSeq  uint64        // sequence number of the last refresh that called DescribeSecret
	fail        *failure      // the last refresh's failure; nil after a success
	rare        *entryRare    // nil until needed
	promote     chan struct{} // closed when a reader joins the background refresh in flight; nil if none
	key         uint32        // unique per live entry, names its single flights; set once
	pins        int32         // Pin calls not yet undone
	deleted     bool          // scheduled for deletion
	described   bool          // an answer is stored
	force       bool          // refresh on next use
	used        bool          // read since the last refresh started
	read        bool          // a value was ever asked for
	evicted     bool          // dropped by the LRU: no longer scheduled
	// listedExpiry: nextRefresh is a listing's, drawn by listedRefreshTime
	// after refreshedAt, not shortened by a rotation.
	listedExpiry bool
}

// entryRare is what only some entries need; guarded by the entry's lock.
type entryRare struct {
	stored   any       // with a Hook: what Hook.Put returned for the answer
	forcedAt time.Time // when the last forced refresh (RefreshNow, RequestRefresh) started
}

// rareLocked returns the entry's side struct, making it if needed.
func (e *secretEntry) rareLocked() *entryRare {
	if e.rare == nil {
		e.rare = &entryRare{}
	}
	return e.rare
}

// storedLocked is what Hook.Put returned for the stored answer, if any.
func (e *secretEntry) storedLocked() any {
	if e.rare == nil {
		return nil
	}
	return e.rare.stored
}

// setStoredLocked keeps what Hook.Put returned (nil: nothing).
func (e *secretEntry) setStoredLocked(stored any) {
	if stored != nil || e.rare != nil {
		e.rareLocked().stored = stored
	}
}

// forcedAtLocked is when the last forced refresh started; zero if none.
func (e *secretEntry) forcedAtLocked() time.Time {
	if e.rare == nil {
		return time.Time{}
	}
	return e.rare.forcedAt
}

// failure is the state of an entry (or version) whose last call failed.
type failure struct {
	err   error     // the last call's error
	count int       // consecutive failed calls
	retry time.Time // when to call again
}

// lastErr is the failure's error; nil when there is none.
func (f *failure) lastErr() error {
	if f == nil {
		return nil
	}
	return f.err
}

// errCount is the number of consecutive failures; 0 when there is none.
func (f *failure) errCount() int {
	if f == nil {
		return 0
	}
	return f.count
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

// stageVersion is a stage and the version id it points at.
type stageVersion struct{ stage, vid string }

// stageVersions maps stages to version ids: a few pairs (typically
// AWSCURRENT and AWSPREVIOUS), sorted by stage, the pairs of one version
// sharing its id string. Far smaller than a map.
type stageVersions []stageVersion

// get returns the version id of a stage; "" if none.
func (s stageVersions) get(stage string) string {
	for _, sv := range s {
		if sv.stage == stage {
			return sv.vid
		}
	}
	return ""
}

// stagesOf lists the stages pointing at version vid.
func (s stageVersions) stagesOf(vid string) []string {
	var out []string
	for _, sv := range s {
		if sv.vid == vid {
			out = append(out, sv.stage)
		}
	}
	return out
}

// toMap returns the pairs as a map of the caller's.
func (s stageVersions) toMap() map[string]string {
	m := make(map[string]string, len(s))
	for _, sv := range s {
		m[sv.stage] = sv.vid
	}
	return m
}

// stageUse is a stage read through an entry, and the version it was last
// served from ("" until a value was served).
type stageUse struct{ stage, served string }

// secretMeta is what the cache keeps of a DescribeSecret answer besides the
// stages: nothing secret.
type secretMeta struct {
	arn, name    string
	nextRotation wallTime // zero when none
	lastChanged  wallTime // LastChangedDate; zero when not given
	tags         map[string]string
}

// versionEntry is one version's value. Versions are immutable, so a value
// once fetched is never fetched again.
type versionEntry struct {
	id        string      // the entry's stages' own string for it
	stored    any         // with a Hook: what Hook.Put returned for the answer
	val       secretValue // without a Hook: the value
	created   wallTime
	fetchedAt stamp
	fail      *failure // the last fetch's failure; nil after a success
	busy      *claim   // while a fetch of the value is under way
	hasValue  bool     // stored or val holds the answer's value
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

func newSecretEntry(id string, key uint32) *secretEntry {
	return &secretEntry{
		id:    id,
		key:   key,
		force: true,
		sched: schedItem{idx: -1},
	}
}

// use returns the entry's record of a stage read through it, if any.
func (e *secretEntry) use(stage string) *stageUse {
	for i := range e.uses {
		if e.uses[i].stage == stage {
			return &e.uses[i]
		}
	}
	return nil
}

// track records that a stage is read through the entry.
func (e *secretEntry) track(stage string) {
	if e.use(stage) == nil {
		e.uses = append(e.uses, stageUse{stage: internStage(stage)})
	}
}

// servedVersion tells which version a stage was last served from.
func (e *secretEntry) servedVersion(stage string) (string, bool) {
	if u := e.use(stage); u != nil && u.served != "" {
		return u.served, true
	}
	return "", false
}

// setServed records that a stage was served from version vid.
func (e *secretEntry) setServed(stage, vid string) {
	if u := e.use(stage); u != nil {
		u.served = vid
		return
	}
	e.uses = append(e.uses, stageUse{stage: internStage(stage), served: vid})
}

// versionLRU is a secret's versions, most recently used first: the rules of
// lru, in a slice, as a secret holds one or two versions and at most
// versionCacheSize. It is not safe for concurrent use.
type versionLRU struct {
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
	if len(l.items) < versionCacheSize {
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
// The entry is locked.
func (c *Cache) needsRefresh(e *secretEntry, now time.Time) bool {
	switch {
	case e.force:
		return true
	case e.fail != nil:
		return !now.Before(e.fail.retry)
	default:
		return c.stamp(now) >= e.nextRefresh
	}
}

// needsFetch reports whether a version's value must be fetched: when it has
// none and either was never tried or its retry time has come.
func (v *versionEntry) needsFetch(now time.Time) bool {
	if v.hasValue {
		return false
	}
	return v.fail == nil || !now.Before(v.fail.retry)
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

// indexStages pairs each stage with its version id. An answer that says
// what prev (the entry's, nil if none) says returns prev itself, so that a
// listing every few seconds that changes nothing makes nothing per secret.
// Strings are copies, or prev's own, one per version id: the SDK cuts an
// answer's strings out of shared blocks, and one string kept would keep its
// whole block.
func indexStages(versions map[string][]string, prev stageVersions) stageVersions {
	if sameStages(versions, prev) {
		return prev
	}
	n := 0
	for _, stages := range versions {
		n += len(stages)
	}
	idx := make(stageVersions, 0, n)
	for vid, stages := range versions {
		own := ""
		for _, sv := range prev {
			if sv.vid == vid {
				own = sv.vid
				break
			}
		}
		if own == "" {
			own = strings.Clone(vid)
		}
		for _, s := range stages {
			if idx.get(s) != "" {
				continue // named twice: the service does not
			}
			stage := internStage(s)
			if stage == s {
				stage = strings.Clone(s)
				for _, sv := range prev {
					if sv.stage == s {
						stage = sv.stage
						break
					}
				}
			}
			idx = append(idx, stageVersion{stage: stage, vid: own})
		}
	}
	slices.SortFunc(idx, func(a, b stageVersion) int { return strings.Compare(a.stage, b.stage) })
	return idx
}

// sameStages reports whether an answer's versions and stages are those of
// idx.
func sameStages(versions map[string][]string, idx stageVersions) bool {
	if idx == nil {
		return false
	}
	n := 0
	for vid, stages := range versions {
		for _, s := range stages {
			if got := idx.get(s); got == "" || got != vid {
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
func metaOf(a answer, id string, prev secretMeta) secretMeta {
	var m secretMeta
	m.arn = keepAs(id, prev.arn, aws.ToString(a.arn))
	m.name = keepAs(id, prev.name, aws.ToString(a.name))
	m.nextRotation, m.lastChanged = wallOf(a.nextRotation), wallOf(a.lastChangedDate)
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

// keepAs is keep, giving the entry's id itself when s is the same string
// (a secret cached under its name, or its ARN), rather than a copy.
func keepAs(id, old, s string) string {
	if s == id {
		return id
	}
	return keep(old, s)
}
