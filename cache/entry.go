package cache

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// secretEntry is the cache's state for one secret id: the last
// DescribeSecret answer, its refresh schedule, and the secret's versions.
type secretEntry struct {
	id  string
	key uint64 // unique per entry, names its single flights

	// All fields below are guarded by the Cache's entry lock for this entry
	// (mu); versions' fields too.
	mu          sync.Mutex
	stored      any               // what Hook.Put returned for the answer, or the answer
	meta        secretMeta        // from the raw answer
	stages      map[string]string // stage -> version id, from the raw answer
	described   bool              // an answer is stored
	err         error             // last refresh error; nil after a success
	errCount    int               // consecutive failed refreshes
	nextRetry   time.Time         // while err != nil: when to retry
	nextRefresh time.Time         // while err == nil: when the answer expires
	refreshedAt time.Time         // last successful refresh
	force       bool              // refresh on next use
	seq         uint64            // sequence number of the stored refresh
	attemptSeq  uint64            // sequence number of the last refresh that called DescribeSecret
	forcedAt    time.Time         // when the last forced refresh (RefreshNow, RequestRefresh) started
	versions    *lru[string, *versionEntry]
	served      map[string]string   // stage -> version id last served with a value
	tracked     map[string]struct{} // stages read through this entry
	used        bool                // read since the last refresh started
	read        bool                // a value was ever asked for
	pins        int                 // Pin calls not yet undone
	bgBusy      bool                // a background refresh is in flight
}

// secretMeta is what the cache keeps of a DescribeSecret answer besides the
// stages: nothing secret.
type secretMeta struct {
	arn, name    string
	deleted      bool      // scheduled for deletion
	nextRotation time.Time // zero when none
	tags         map[string]string
}

// versionEntry is one version's value. Versions are immutable, so a value
// once fetched is never fetched again.
type versionEntry struct {
	id        string
	stored    any  // what Hook.Put returned for the answer, or the answer
	hasValue  bool // stored holds an answer
	created   time.Time
	fetchedAt time.Time
	err       error
	errCount  int
	nextRetry time.Time
}

func newSecretEntry(id string, key uint64) *secretEntry {
	return &secretEntry{
		id:       id,
		key:      key,
		force:    true,
		versions: newLRU[string, *versionEntry](versionCacheSize),
		served:   make(map[string]string),
		tracked:  make(map[string]struct{}),
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

// indexStages maps each stage to its version id.
func indexStages(out *secretsmanager.DescribeSecretOutput) map[string]string {
	idx := make(map[string]string)
	for vid, stages := range out.VersionIdsToStages {
		for _, s := range stages {
			idx[s] = vid
		}
	}
	return idx
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

func metaOf(out *secretsmanager.DescribeSecretOutput) secretMeta {
	m := secretMeta{deleted: out.DeletedDate != nil}
	if out.ARN != nil {
		m.arn = *out.ARN
	}
	if out.Name != nil {
		m.name = *out.Name
	}
	if out.NextRotationDate != nil {
		m.nextRotation = *out.NextRotationDate
	}
	if len(out.Tags) > 0 {
		m.tags = make(map[string]string, len(out.Tags))
		for _, t := range out.Tags {
			if t.Key != nil {
				m.tags[*t.Key] = aws.ToString(t.Value)
			}
		}
	}
	return m
}
