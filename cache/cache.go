package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"golang.org/x/sync/singleflight"
)

// Cache is an in-memory cache of Secrets Manager secrets. It is safe for
// concurrent use. Create it with New.
type Cache struct {
	client Client
	cfg    Config
	clock  Clock
	epoch  time.Time // the clock's time when built: stamps count from it
	rand   Rand
	log    *slog.Logger
	obs    Observer

	mu      sync.Mutex
	secrets *lru[string, *secretEntry] // guarded by mu
	nextKey uint32                     // guarded by mu; wraps after 4 billion entries made
	listed  map[string]int             // guarded by mu; per listing filter, the secrets its last listing named
	batch   batcher

	flights  singleflight.Group
	seq      atomic.Uint64 // orders refreshes of one entry
	listRuns atomic.Uint64 // numbers listing runs (listRun.id)
	stats    counters
	waiting  atomic.Int64 // callers waiting for a flight now

	slots slots    // bounds the calls under way (Config.MaxInFlight)
	pacer pacer    // paces calls after throttling answers
	sched schedule // the background refresh schedule
	// bgCtx is the context of background work: marked by backgroundCtx,
	// cancelled by Close with errClosed.
	bgCtx    context.Context
	bgCancel context.CancelCauseFunc

	subsMu sync.Mutex
	subs   map[*subscriber]struct{} // guarded by subsMu

	wake      chan struct{} // nudges the background scheduler
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	bgWG      sync.WaitGroup
	bgMu      sync.Mutex // orders goBackground's Add before Close's Wait
	closed    bool       // guarded by bgMu
}

// New builds a cache that reads through client. It rejects an invalid
// configuration with an error naming each bad field. With background refresh
// on (Config.RefreshAhead > 0) it starts a goroutine; Close stops it.
func New(client Client, cfg Config) (*Cache, error) {
	if client == nil {
		return nil, errors.New("cache: client is nil")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &Cache{
		client:  client,
		cfg:     cfg,
		clock:   cfg.Clock,
		rand:    cfg.Rand,
		log:     cfg.Logger,
		secrets: newLRU[string, *secretEntry](cfg.MaxCacheSize),
		listed:  make(map[string]int),
		batch:   newBatcher(),
		stats:   counters{calls: newCallCounters()},
		subs:    make(map[*subscriber]struct{}),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
		slots:   newSlots(cfg),
	}
	c.bgCtx, c.bgCancel = context.WithCancelCause(backgroundCtx(context.Background()))
	if c.clock == nil {
		c.clock = systemClock{}
	}
	c.epoch = c.clock.Now()
	if c.rand == nil {
		c.rand = globalRand{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.obs = cfg.Observer
	if c.obs == nil {
		c.obs = nopObserver{}
	}
	if cfg.RefreshAhead > 0 {
		c.bgWG.Add(1)
		go c.scheduleLoop()
	}
	return c, nil
}

// Close stops background refreshes, waits for the scheduler to end and
// zeroes the values the cache holds, so that they do not linger in memory
// once nobody uses the cache. Reads keep working afterwards, fetching on
// demand as the reference does.
func (c *Cache) Close() error {
	first := false
	c.closeOnce.Do(func() {
		first = true
		c.bgMu.Lock()
		c.closed = true
		c.bgMu.Unlock()
		close(c.done)
		c.bgCancel(errClosed)
	})
	c.bgWG.Wait()
	if first {
		c.wipeAll()
	}
	return nil
}

// goBackground runs f on a goroutine of its own that Close waits for,
// unless the cache is closed; it reports whether it did.
func (c *Cache) goBackground(f func()) bool {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.closed {
		return false
	}
	c.bgWG.Add(1)
	go func() {
		defer c.bgWG.Done()
		f()
	}()
	return true
}

// GetSecretString returns the string value of the secret's default stage.
func (c *Cache) GetSecretString(ctx context.Context, secretID string) (string, error) {
	return c.GetSecretStringWithStage(ctx, secretID, "")
}

// GetSecretStringWithStage returns the string value of a stage of the
// secret; an empty stage means Config.DefaultVersionStage. A binary secret
// gives an error matching ErrNotFound.
func (c *Cache) GetSecretStringWithStage(ctx context.Context, secretID, stage string) (string, error) {
	var s string
	err := c.lookup(ctx, secretID, target{stage: stage}, func(v secretValue, _ *secretEntry, _ *versionEntry, _ bool) error {
		if !v.hasStr {
			return fmt.Errorf("secret %q stage %q has no string value: %w", secretID, c.stageOrDefault(stage), ErrNotFound)
		}
		s = v.str
		return nil
	})
	return s, err
}

// GetSecretBinary returns the binary value of the secret's default stage.
func (c *Cache) GetSecretBinary(ctx context.Context, secretID string) ([]byte, error) {
	return c.GetSecretBinaryWithStage(ctx, secretID, "")
}

// GetSecretBinaryWithStage returns a copy of the binary value of a stage of
// the secret; an empty stage means Config.DefaultVersionStage. A string
// secret gives an error matching ErrNotFound.
func (c *Cache) GetSecretBinaryWithStage(ctx context.Context, secretID, stage string) ([]byte, error) {
	var b []byte
	err := c.lookup(ctx, secretID, target{stage: stage}, func(v secretValue, _ *secretEntry, _ *versionEntry, _ bool) error {
		if !v.hasBin {
			return fmt.Errorf("secret %q stage %q has no binary value: %w", secretID, c.stageOrDefault(stage), ErrNotFound)
		}
		b = append([]byte(nil), v.bin...)
		return nil
	})
	return b, err
}

// Value is a snapshot of one version of a secret as served to a reader.
type Value struct {
	SecretID    string    // the id as the caller gave it
	ARN         string    // from DescribeSecret
	Name        string    // from DescribeSecret
	Stage       string    // the stage read
	VersionID   string    // the version served
	Stages      []string  // every stage pointing at this version
	CreatedDate time.Time // when the version was created
	FetchedAt   time.Time // when the cache fetched this version
	// RefreshedAt is when DescribeSecret last succeeded for the secret: while
	// refreshes fail, the value is as old as this at best.
	RefreshedAt time.Time
	// Stale is true when the value may be outdated: the last refresh failed,
	// or the stage's current version could not be fetched and the last good
	// one is served instead.
	Stale bool
	// Binary tells whether Data is the SecretBinary (true) or the
	// SecretString's UTF-8 bytes (false).
	Binary bool
	Data   []byte // a copy; the caller may keep and change it
}

// GetValue returns a snapshot of a stage of the secret, string or binary,
// with the metadata a filesystem shows. An empty stage means
// Config.DefaultVersionStage.
func (c *Cache) GetValue(ctx context.Context, secretID, stage string) (Value, error) {
	return c.value(ctx, secretID, target{stage: stage})
}

// value reads a Value of what want names.
func (c *Cache) value(ctx context.Context, secretID string, want target) (Value, error) {
	stage := ""
	if want.versionID == "" {
		stage = c.stageOrDefault(want.stage)
	}
	var val Value
	err := c.lookup(ctx, secretID, want, func(v secretValue, e *secretEntry, ve *versionEntry, stale bool) error {
		var err error
		val, err = c.valueOf(secretID, stage, v, e, ve, stale)
		return err
	})
	return val, err
}

// valueOf builds the Value of a version's answer; the entry is locked.
func (c *Cache) valueOf(secretID, stage string, v secretValue, e *secretEntry, ve *versionEntry, stale bool) (Value, error) {
	val := Value{
		SecretID:    secretID,
		ARN:         e.meta.arn,
		Name:        e.meta.name,
		Stage:       stage,
		VersionID:   ve.id,
		CreatedDate: ve.created.time(),
		FetchedAt:   c.timeOf(ve.fetchedAt),
		RefreshedAt: c.timeOf(e.refreshedAt),
		Stale:       stale,
	}
	val.Stages = e.stages.stagesOf(ve.id)
	switch {
	case v.hasStr:
		val.Data = []byte(v.str)
	case v.hasBin:
		val.Binary = true
		val.Data = append([]byte(nil), v.bin...)
	default:
		return Value{}, fmt.Errorf("secret %q version %q has neither a string nor a binary value: %w", secretID, ve.id, ErrNotFound)
	}
	return val, nil
}

func (c *Cache) stageOrDefault(stage string) string {
	if stage == "" {
		return c.cfg.DefaultVersionStage
	}
	return stage
}

// entry returns the secret's entry, creating it if needed.
func (c *Cache) entry(id string) *secretEntry {
	var evicted **secretEntry
	c.mu.Lock()
	e, ok := c.secrets.get(id)
	if !ok {
		c.nextKey++
		e = newSecretEntry(id, c.nextKey)
		_, evicted = c.secrets.putIfAbsent(id, e)
	}
	c.mu.Unlock()
	if evicted != nil {
		c.evict(*evicted)
	}
	return e
}

// extractFunc reads what a caller needs from a version's value while the
// entry is locked; it must not keep v's buffers.
type extractFunc func(v secretValue, e *secretEntry, ve *versionEntry, stale bool) error

// target names what a read wants: a stage (empty: the default stage), or
// one version by id.
type target struct {
	stage     string
	versionID string
}

// lookup resolves a stage of a secret (or a version id) to a cached version
// value, refreshing and fetching as needed, and hands the value to extract.
func (c *Cache) lookup(ctx context.Context, id string, want target, extract extractFunc) error {
	stage := ""
	if want.versionID == "" {
		stage = c.stageOrDefault(want.stage)
	}
	e := c.entry(id)
	waited := false
	for attempt := 1; ; attempt++ {
		now := c.clock.Now()
		e.mu.Lock()
		if !e.read {
			e.read = true
			c.scheduleLocked(e) // a secret in error is now retried in the background
		}
		if c.needsRefresh(e, now) {
			e.mu.Unlock()
			waited = true
			if err := c.waitFlight(ctx, c.secretFlight(e, c.needsRefresh)); err != nil && ctx.Err() != nil {
				return fmt.Errorf("read %q: %w", id, ctx.Err())
			}
			e.mu.Lock()
			now = c.clock.Now()
		}
		if !e.used {
			e.used = true
			c.scheduleLocked(e) // in use: refreshed ahead of expiry
		}
		vid, err := want.versionID, error(nil)
		if vid == "" {
			e.track(stage)
			vid, err = c.resolveLocked(e, stage)
		} else {
			_, err = c.resolveMetaLocked(e)
		}
		if err != nil {
			e.mu.Unlock()
			c.count(waited)
			return err
		}
		ve, ok := e.versions.get(vid)
		if !ok || ve.needsFetch(now) {
			e.mu.Unlock()
			waited = true
			if err := c.waitFlight(ctx, c.versionFlight(context.Background(), e, vid)); err != nil && ctx.Err() != nil {
				return fmt.Errorf("read %q: %w", id, ctx.Err())
			}
			e.mu.Lock()
			ve, ok = e.versions.get(vid)
			if (!ok || !ve.hasValue && ve.fail == nil) && attempt < maxLookups {
				// Fetched, then evicted by newer versions before this
				// reader got to it: the stage has moved on since; look
				// it up again.
				e.mu.Unlock()
				continue
			}
		}
		err = c.serveLocked(e, stage, vid, ve, ok, extract)
		e.mu.Unlock()
		c.count(waited)
		return err
	}
}

// maxLookups bounds how often one read starts over after the version it
// waited for was evicted by a burst of rotations.
const maxLookups = 3

// serveLocked hands the value of version vid (ve, if ok) to extract. When the
// version has no value, it serves the stage's last good value, marked stale,
// rather than fail (the reference would fail).
func (c *Cache) serveLocked(e *secretEntry, stage, vid string, ve *versionEntry, ok bool, extract extractFunc) error {
	if ok && ve.hasValue {
		if stage != "" {
			e.setServed(stage, vid)
		}
		return c.extractLocked(ve, e, e.fail != nil, extract)
	}
	if last, found := e.servedVersion(stage); found && stage != "" && last != vid {
		if lv, found := e.versions.get(last); found && lv.hasValue {
			c.log.Warn("serving the previous version of a stage: its current version cannot be fetched",
				"secret", e.id, "stage", stage, "served_version", last, "current_version", vid)
			return c.extractLocked(lv, e, true, extract)
		}
	}
	if ok && ve.fail != nil {
		return ve.fail.err
	}
	return fmt.Errorf("secret %q version %q: no value: %w", e.id, vid, ErrUnavailable)
}

func (c *Cache) count(waited bool) {
	if waited {
		c.stats.misses.Add(1)
	} else {
		c.stats.hits.Add(1)
	}
}

// extractLocked hands a version's value, read back through the hook if
// there is one, to extract.
func (c *Cache) extractLocked(ve *versionEntry, e *secretEntry, stale bool, extract extractFunc) error {
	if c.cfg.Hook == nil {
		return extract(ve.val, e, ve, stale)
	}
	stored := c.cfg.Hook.Get(ve.stored)
	out, ok := stored.(*secretsmanager.GetSecretValueOutput)
	if !ok || out == nil {
		return fmt.Errorf("secret %q version %q: hook returned %T, want *secretsmanager.GetSecretValueOutput", e.id, ve.id, stored)
	}
	return extract(valueOfAnswer(out), e, ve, stale)
}

// resolveLocked finds the version id of a stage from the stored answer.
func (c *Cache) resolveLocked(e *secretEntry, stage string) (string, error) {
	if _, err := c.resolveMetaLocked(e); err != nil {
		return "", err
	}
	var vid string
	if c.cfg.Hook != nil {
		got := c.cfg.Hook.Get(e.storedLocked())
		out, ok := got.(*secretsmanager.DescribeSecretOutput)
		if !ok || out == nil {
			return "", fmt.Errorf("secret %q: hook returned %T, want *secretsmanager.DescribeSecretOutput", e.id, got)
		}
		vid = versionForStage(out, stage)
	} else {
		vid = e.stages.get(stage)
	}
	if vid == "" {
		return "", fmt.Errorf("secret %q has no stage %q: %w", e.id, stage, ErrNotFound)
	}
	return vid, nil
}

// resolveMetaLocked checks that the entry has usable metadata.
func (c *Cache) resolveMetaLocked(e *secretEntry) (secretMeta, error) {
	if !e.described {
		if e.fail != nil {
			return secretMeta{}, e.fail.err
		}
		return secretMeta{}, fmt.Errorf("secret %q: no metadata: %w", e.id, ErrUnavailable)
	}
	if e.deleted {
		return secretMeta{}, fmt.Errorf("secret %q is scheduled for deletion: %w", e.id, ErrNotFound)
	}
	return e.meta, nil
}

// waitFlight waits for a flight to end or for ctx to be done. The flight
// goes on either way: its result is stored in the entry for everyone. A
// caller whose ctx is done already gets its error, even when the flight has
// ended too (a select between two ready channels would pick either).
func (c *Cache) waitFlight(ctx context.Context, ch <-chan singleflight.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// refreshCond tells a refresh flight, as it starts, whether there is still
// something to do: a caller that decided to refresh may find that a flight
// which ended a moment ago already did it.
type refreshCond func(e *secretEntry, now time.Time) bool

func alwaysRefresh(*secretEntry, time.Time) bool { return true }

// secretFlight starts, or joins, the refresh of a secret's metadata. A
// flight started here is foreground work, bounded by Config.FetchTimeout.
func (c *Cache) secretFlight(e *secretEntry, cond refreshCond) <-chan singleflight.Result {
	ch := c.flights.DoChan(e.flightKey(), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.FetchTimeout)
		defer cancel()
		return nil, c.refreshSecret(ctx, e, cond)
	})
	c.promote(e) // if it joined a background refresh, a reader now waits for it
	return ch
}

// backgroundFlight starts, or joins, a background refresh of a secret's
// metadata, if cond still holds when it starts. Its calls are background
// work: they wait for their turn without a deadline (each call still has
// Config.FetchTimeout), until Close.
func (c *Cache) backgroundFlight(e *secretEntry, cond refreshCond) <-chan singleflight.Result {
	promote := make(chan struct{})
	e.mu.Lock()
	e.promote = promote // set before the flight exists, for readers who join it
	e.mu.Unlock()
	return c.flights.DoChan(e.flightKey(), func() (any, error) {
		defer func() {
			e.mu.Lock()
			if e.promote == promote {
				e.promote = nil
			}
			e.mu.Unlock()
		}()
		return nil, c.refreshSecret(promotableCtx(c.bgCtx, promote), e, cond)
	})
}

// promote makes the background refresh of e in flight, if any, a reader's:
// its calls stop yielding to other readers'.
func (c *Cache) promote(e *secretEntry) {
	e.mu.Lock()
	if e.promote != nil {
		close(e.promote)
		e.promote = nil
	}
	e.mu.Unlock()
}

func (e *secretEntry) flightKey() string { return "s" + strconv.FormatUint(uint64(e.key), 10) }

// versionFlight starts, or joins, the fetch of a version's value. ctx says
// whose work a flight started here is: background (see backgroundFlight)
// or foreground, then bounded by Config.FetchTimeout.
func (c *Cache) versionFlight(ctx context.Context, e *secretEntry, vid string) <-chan singleflight.Result {
	bg := isBackground(ctx)
	ch := c.flights.DoChan("v"+strconv.FormatUint(uint64(e.key), 10)+"/"+vid, func() (any, error) {
		ctx := ctx
		if !bg {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(context.Background(), c.cfg.FetchTimeout)
			defer cancel()
		}
		return nil, c.fetchVersion(ctx, e, vid)
	})
	if !bg {
		c.promote(e) // a reader waits for the background refresh's fetch
	}
	return ch
}

// refreshSecret asks DescribeSecret for the secret, stores the answer or the
// error, fetches the values that the stages in use now point at, and tells
// subscribers what moved. It runs detached from any caller, on ctx: a
// flight's (secretFlight, backgroundFlight).
func (c *Cache) refreshSecret(ctx context.Context, e *secretEntry, cond refreshCond) (err error) {
	seq := c.seq.Add(1)
	start := c.clock.Now()
	e.mu.Lock()
	if !cond(e, start) {
		err := e.fail.lastErr()
		e.mu.Unlock()
		return err
	}
	e.force = false
	e.used = false
	e.attemptSeq = seq
	c.scheduleLocked(e)
	e.mu.Unlock()
	defer func() { c.obs.Refresh(e.id, err, c.clock.Now().Sub(start)) }()

	out, err := c.describe(ctx, e.id)
	now := c.clock.Now()
	if errors.Is(err, errClosed) {
		return err // the cache closed while the call waited: nothing to store
	}

	e.mu.Lock()
	if seq < e.seq {
		// A refresh that started later has already stored its answer.
		e.mu.Unlock()
		return err
	}
	e.seq = seq
	if err != nil {
		var changes []Change
		if errors.Is(err, ErrNotFound) && e.described {
			// The service says the secret is gone: forget its answer.
			changes = diffStages(e.id, e.stages, nil)
			e.setStoredLocked(nil)
			e.stages, e.described = nil, false
		}
		c.failLocked(&e.fail, err, now)
		c.scheduleLocked(e)
		hadValue, retryAt := e.described, e.fail.retry
		e.mu.Unlock()
		if hadValue {
			c.log.Warn("refresh failed; serving the cached value", "secret", e.id, "error", err,
				"retry_in", retryAt.Sub(now), "retry_at", retryAt.UTC())
		}
		c.emit(changes)
		return err
	}
	a := answerOfDescribe(out)
	stages := indexStages(a.versions, e.stages)
	changes := diffStages(e.id, e.stages, stages)
	if !e.described {
		changes = nil // a first answer moves nothing
	}
	c.storeLocked(e, a, stages, now, false)
	var fetch []string
	for _, u := range e.uses {
		vid := stages.get(u.stage)
		if vid == "" {
			continue
		}
		if ve, ok := e.versions.peek(vid); !ok || ve.needsFetch(now) {
			fetch = append(fetch, vid)
		}
	}
	e.mu.Unlock()

	for _, vid := range fetch {
		// Errors are stored in the version entry and surface on read.
		_ = c.waitFlight(context.Background(), c.versionFlight(ctx, e, vid))
	}
	c.emit(changes)
	return nil
}

// storeLocked stores a successful DescribeSecret answer (or, listed, a
// listing entry) in the entry and schedules its next refresh: see
// nextRefreshTime and listedRefreshTime. Without a Hook only the meta and
// stages are kept, not the answer.
func (c *Cache) storeLocked(e *secretEntry, a answer, stages stageVersions, now time.Time, listed bool) {
	var stored any
	if c.cfg.Hook != nil {
		stored = c.cfg.Hook.Put(a.describeOutput())
	}
	e.setStoredLocked(stored)
	e.stages, e.meta, e.described = stages, metaOf(a, e.id, e.meta), true
	e.deleted = a.deletedDate != nil
	e.fail = nil
	var next time.Time
	if listed {
		next, e.listedExpiry = c.listedRefreshTime(e, now)
	} else {
		next, e.listedExpiry = c.nextRefreshTime(now, e.meta.nextRotation.time()), false
	}
	e.nextRefresh, e.refreshedAt = c.stamp(next), c.stamp(now)
	c.scheduleLocked(e)
}

// nextRefreshTime picks when an answer fetched now expires: uniformly in
// [T/2, T] after now, and no later than RotationGrace after a scheduled
// rotation that is still to come.
func (c *Cache) nextRefreshTime(now, nextRotation time.Time) time.Time {
	t := int64(c.cfg.SecretRefreshInterval)
	half := t / 2
	next := now.Add(time.Duration(half + c.rand.Int64N(t-half+1)))
	if !nextRotation.IsZero() && nextRotation.After(now) {
		if r := nextRotation.Add(c.cfg.RotationGrace); r.Before(next) {
			next = r
		}
	}
	return next
}

// failLocked records a failed call in *f (made if nil) and schedules its
// retry after retryWait(n), n being the failures before it.
func (c *Cache) failLocked(f **failure, err error, now time.Time) {
	if *f == nil {
		*f = &failure{}
	}
	(*f).err = err
	(*f).retry = now.Add(c.retryWait((*f).count))
	(*f).count++
	c.stats.errors.Add(1)
}

// retryWait draws the wait after a failure preceded by n consecutive
// failures uniformly in [3w/4, w], w = min(base * growth^n, max) being the
// reference's wait, as refresh times are drawn in [T/2, T]: secrets that
// failed together (an outage) are then not retried in step.
func (c *Cache) retryWait(n int) time.Duration {
	w := c.cfg.retryDelay(n)
	q := int64(w / 4)
	if q <= 0 {
		return w
	}
	return w - time.Duration(q) + time.Duration(c.rand.Int64N(q+1))
}

// fetchVersion asks GetSecretValue for one version by id and stores the
// answer or the error. It runs detached from any caller, on ctx: a
// flight's (versionFlight). While a batch (fetchVersions) is fetching the
// version, it waits for that instead, promoting the batch if it waits for a
// reader.
func (c *Cache) fetchVersion(ctx context.Context, e *secretEntry, vid string) error {
	e.mu.Lock()
	ve := c.versionLocked(e, vid)
	if ve.busy != nil {
		busy := ve.busy
		e.mu.Unlock()
		if busy.work != nil && !isBackground(ctx) {
			busy.work.promoteNow()
		}
		select {
		case <-busy.done:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		e.mu.Lock()
		ve = c.versionLocked(e, vid)
	}
	if !ve.needsFetch(c.clock.Now()) || ve.busy != nil {
		// A flight that ended a moment ago fetched it (or failed recently).
		err := ve.fail.lastErr()
		e.mu.Unlock()
		return err
	}
	busy := &claim{done: make(chan struct{})}
	ve.busy = busy
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		if ve.busy == busy {
			ve.busy = nil
		}
		e.mu.Unlock()
		close(busy.done)
	}()

	out, err := c.getValue(ctx, e.id, vid)
	now := c.clock.Now()
	if errors.Is(err, errClosed) {
		return err // the cache closed while the call waited: nothing to store
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	ve = c.versionLocked(e, vid) // evicted meanwhile: stored again
	if err != nil {
		c.failLocked(&ve.fail, err, now)
		return err
	}
	c.storeVersionLocked(ve, out, now)
	return nil
}

// versionLocked returns the entry of version vid, creating it if needed.
func (c *Cache) versionLocked(e *secretEntry, vid string) *versionEntry {
	ve, ok := e.versions.get(vid)
	if !ok {
		ve = &versionEntry{id: vid}
		if _, evicted := e.versions.putIfAbsent(vid, ve); evicted != nil {
			(*evicted).wipe()
		}
	}
	return ve
}

// storeVersionLocked stores a version's value, fetched now; the entry is
// locked. Every value the cache gets, whatever the call, is stored here.
// Without a Hook only the value is kept, not the answer.
func (c *Cache) storeVersionLocked(ve *versionEntry, out *secretsmanager.GetSecretValueOutput, now time.Time) {
	if out.CreatedDate != nil {
		ve.created = wallOf(out.CreatedDate)
	}
	if c.cfg.Hook != nil {
		ve.stored = c.cfg.Hook.Put(out)
	} else {
		ve.val = valueOfAnswer(out)
		// A string of its own: the SDK may have cut it out of a block
		// shared with other strings of the answer (see indexStages).
		ve.val.str = strings.Clone(ve.val.str)
	}
	ve.hasValue, ve.fetchedAt = true, c.stamp(now)
	ve.fail = nil
}
