package emulator

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Staging labels with a meaning to the service.
const (
	StageCurrent  = "AWSCURRENT"
	StagePrevious = "AWSPREVIOUS"
	StagePending  = "AWSPENDING"
)

// Limits of the service.
const (
	maxNameLen          = 512
	maxSecretIDLen      = 2048
	maxValueBytes       = 65536
	maxDescriptionLen   = 2048
	minTokenLen         = 32
	maxTokenLen         = 64
	maxLabelLen         = 256
	maxLabelsPerVersion = 20
	maxTagKeyLen        = 128
	maxTagValueLen      = 256
	maxTags             = 50
	maxDeprecated       = 100
	arnSuffixLen        = 6
)

// version is one version of a secret's value.
type version struct {
	id           string
	str          *string // SecretString, or nil
	bin          []byte  // SecretBinary, or nil
	stages       []string
	created      time.Time
	lastAccessed time.Time
}

func (v *version) hasStage(label string) bool { return slices.Contains(v.stages, label) }

func (v *version) removeStage(label string) {
	v.stages = slices.DeleteFunc(v.stages, func(s string) bool { return s == label })
}

// sameValue reports whether the version holds exactly this value.
func (v *version) sameValue(str *string, bin []byte) bool {
	if (v.str == nil) != (str == nil) || (v.bin == nil) != (bin == nil) {
		return false
	}
	if str != nil {
		return *v.str == *str
	}
	return bytes.Equal(v.bin, bin)
}

// rotationRules are a secret's RotationRules.
type rotationRules struct {
	AutomaticallyAfterDays *int64  `json:",omitempty"`
	Duration               *string `json:",omitempty"`
	ScheduleExpression     *string `json:",omitempty"`
}

// interval is how long after a rotation the next one is due, when the rules
// tell it.
func (r *rotationRules) interval() (time.Duration, bool) {
	if r == nil {
		return 0, false
	}
	if r.AutomaticallyAfterDays != nil {
		return time.Duration(*r.AutomaticallyAfterDays) * 24 * time.Hour, true
	}
	if r.ScheduleExpression != nil {
		if d, ok := parseRate(*r.ScheduleExpression); ok {
			return d, true
		}
	}
	return 0, false
}

// secret is one secret with its versions. Every field is guarded by the
// Emulator's mu.
type secret struct {
	seq         uint64
	arn         string
	name        string
	description *string
	kmsKeyID    *string
	secretType  *string
	tags        []Tag
	versions    map[string]*version
	order       []*version // oldest first

	created      time.Time
	lastChanged  time.Time
	lastAccessed time.Time
	lastRotated  time.Time
	deletion     time.Time // zero unless scheduled for deletion

	rotationEnabled bool
	rotationLambda  *string
	rules           *rotationRules
}

func (s *secret) deleted() bool { return !s.deletion.IsZero() }

// holder returns the version carrying label, or nil.
func (s *secret) holder(label string) *version {
	for _, v := range s.order {
		if v.hasStage(label) {
			return v
		}
	}
	return nil
}

// attach puts label on v, taking it from the version that had it. When
// AWSCURRENT leaves a version, that version gets AWSPREVIOUS.
func (s *secret) attach(label string, v *version) {
	old := s.holder(label)
	if old == v {
		return
	}
	if old != nil {
		old.removeStage(label)
	}
	v.stages = append(v.stages, label)
	if label == StageCurrent && old != nil {
		s.attach(StagePrevious, old)
	}
}

// stagesByVersion maps each labelled version's id to its labels; deprecated
// versions are left out, as the service does.
func (s *secret) stagesByVersion() map[string][]string {
	m := make(map[string][]string)
	for _, v := range s.order {
		if len(v.stages) > 0 {
			m[v.id] = slices.Clone(v.stages)
		}
	}
	return m
}

// pruneDeprecated drops the oldest unlabelled versions beyond the service's
// limit of 100.
func (s *secret) pruneDeprecated() {
	n := 0
	for _, v := range s.order {
		if len(v.stages) == 0 {
			n++
		}
	}
	for i := 0; n > maxDeprecated && i < len(s.order); {
		if v := s.order[i]; len(v.stages) == 0 {
			delete(s.versions, v.id)
			s.order = slices.Delete(s.order, i, i+1)
			n--
			continue
		}
		i++
	}
}

// nextRotation is when the next rotation is due, or zero.
func (s *secret) nextRotation() time.Time {
	if !s.rotationEnabled {
		return time.Time{}
	}
	d, ok := s.rules.interval()
	if !ok {
		return time.Time{}
	}
	base := s.lastRotated
	if base.IsZero() {
		base = s.created
	}
	return base.Add(d)
}

// Tag is a secret's tag.
type Tag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

// arnPrefix is the ARN of a secret without its name and suffix.
func (e *Emulator) arnPrefix() string {
	return fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:", e.region, e.account)
}

// purgeExpired removes the secrets whose recovery window is over. It looks
// only at the secrets scheduled for deletion, so that finding a secret costs
// the same however many the emulator holds. The caller holds mu.
func (e *Emulator) purgeExpired(now time.Time) {
	for _, s := range e.scheduled {
		if !now.Before(s.deletion) {
			e.removeLocked(s)
		}
	}
}

// removeLocked removes a secret at once. The caller holds mu.
func (e *Emulator) removeLocked(s *secret) {
	delete(e.secrets, s.name)
	delete(e.scheduled, s.name)
	e.gen++
}

// lockForChange locks mu for an operation that may change what a listing
// selects or how it sorts it, and returns the unlock function. Every such
// change goes through it, so that cached listings are dropped.
func (e *Emulator) lockForChange() (unlock func()) {
	e.mu.Lock()
	e.gen++
	return e.mu.Unlock
}

// find resolves a SecretId (name, full ARN or partial ARN) to a secret,
// including one scheduled for deletion. The caller holds mu.
func (e *Emulator) find(id string) (*secret, *Error) {
	e.purgeExpired(e.clock.Now())
	if s, ok := e.secrets[id]; ok {
		return s, nil
	}
	rest, ok := strings.CutPrefix(id, e.arnPrefix())
	if !ok {
		return nil, errSecretNotFound()
	}
	if s, ok := e.secrets[rest]; ok {
		return s, nil // partial ARN
	}
	if i := len(rest) - arnSuffixLen - 1; i > 0 && rest[i] == '-' {
		if s, ok := e.secrets[rest[:i]]; ok && s.arn == id {
			return s, nil
		}
	}
	return nil, errSecretNotFound()
}

// findActive is find for operations that refuse secrets scheduled for
// deletion. The caller holds mu.
func (e *Emulator) findActive(id string) (*secret, *Error) {
	s, aerr := e.find(id)
	if aerr != nil {
		return nil, aerr
	}
	if s.deleted() {
		return nil, errMarkedForDeletion()
	}
	return s, nil
}

// newSecret adds an empty secret. The caller holds mu and has checked that
// the name is free.
func (e *Emulator) newSecret(name string, now time.Time) (*secret, error) {
	suffix, err := e.randomString(arnSuffixLen, alnum)
	if err != nil {
		return nil, err
	}
	e.seq++
	s := &secret{
		seq:         e.seq,
		arn:         e.arnPrefix() + name + "-" + suffix,
		name:        name,
		versions:    make(map[string]*version),
		created:     now,
		lastChanged: now,
	}
	e.secrets[name] = s
	return s, nil
}

// putVersion stores a value as version token (a new id when empty) and
// moves the given labels to it (AWSCURRENT when none; AWSCURRENT too when the
// secret has no current version). A token already used for the same value
// changes nothing; for another value it is ResourceExistsException. The
// caller holds mu.
func (e *Emulator) putVersion(s *secret, token string, str *string, bin []byte, stages []string, now time.Time) (*version, *Error) {
	if token == "" {
		id, err := e.newUUID()
		if err != nil {
			return nil, newError(ErrInternalServiceError, "Could not make a version id.")
		}
		token = id
	}
	if v, ok := s.versions[token]; ok {
		if v.sameValue(str, bin) {
			return v, nil
		}
		return nil, newError(ErrResourceExists, "You can't use ClientRequestToken %s because that value is already in use for a version of secret %s.", token, s.arn)
	}
	if len(stages) == 0 {
		stages = []string{StageCurrent}
	}
	if s.holder(StageCurrent) == nil && !slices.Contains(stages, StageCurrent) {
		stages = append(slices.Clone(stages), StageCurrent)
	}
	v := &version{id: token, created: now}
	if str != nil {
		c := *str
		v.str = &c
	} else {
		v.bin = slices.Clone(bin)
	}
	s.versions[token] = v
	s.order = append(s.order, v)
	for _, label := range stages {
		s.attach(label, v)
	}
	s.lastChanged = now
	s.pruneDeprecated()
	return v, nil
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomString draws n characters of alphabet from the emulator's random
// source.
func (e *Emulator) randomString(n int, alphabet string) (string, error) {
	buf := make([]byte, n)
	if _, err := io.ReadFull(e.random, buf); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	for i, b := range buf {
		buf[i] = alphabet[int(b)%len(alphabet)]
	}
	return string(buf), nil
}

// newUUID draws a random (version 4) UUID from the emulator's random source.
func (e *Emulator) newUUID() (string, error) {
	u, err := uuid.NewRandomFromReader(e.random)
	if err != nil {
		return "", fmt.Errorf("make a version id: %w", err)
	}
	return u.String(), nil
}
