package hooks

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/secretsfs/secretsfs/cache"
	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/mount/mapping"
)

// hookTimeout bounds one run of an on_change command; the command's process
// group is killed beyond it.
const hookTimeout = time.Minute

// maxHookRuns bounds the hook runs (commands or signals) under way at once,
// across every hook of the daemon; a run that finds them all busy waits.
const maxHookRuns = 4

// maxPathsEnv bounds SECRETSFS_PATHS, below the kernel's limit on one
// environment string (128 KiB), so that a burst of many files cannot make
// the command fail to start.
const maxPathsEnv = 64 << 10

// Source is the cache the runner follows; *cache.Cache is one.
type Source interface {
	Subscribe(fn func(cache.Change)) (cancel func())
	Pin(secretID string) (unpin func())
	Info(secretID string) (info cache.SecretInfo, ok bool)
	GetValueByVersion(ctx context.Context, secretID, versionID string) (cache.Value, error)
}

// Shown says which secrets the default layout shows, and under which
// names; the catalogs of mount/catalog are.
type Shown interface {
	// List returns every secret shown (read-only); the runner calls it
	// once per change of the catalog, never per change of a secret.
	List() []sfs.SecretRef
	// RefsOf returns the refs under which a secret id is shown
	// (read-only), without a walk of the catalog: it is called per change.
	RefsOf(id string) []sfs.SecretRef
	OnChange(fn func()) (cancel func())
}

// Config is what the runner needs of one mount.
type Config struct {
	// MountDir is the mount's absolute path; DefaultStage the cache's.
	MountDir, DefaultStage string
	// Hook runs for the files of the default layout; nil means none. The
	// secrets those files show are pinned in the cache while it runs, so
	// that a change is noticed whether anything reads them or not.
	Hook *mapping.OnChange
	// Shown is the catalog of the default layout; needed with Hook.
	Shown Shown
	// Watches are the mapped files that have a hook.
	Watches []Watch
	Source  Source
	// Clock times the debounce and the runs.
	Clock  cache.Clock
	Logger *slog.Logger // nil: no logs
	// Ran, when set, is told of every run (for metrics).
	Ran func(ok bool)
	// Exec runs a command; nil runs the process (tests replace it).
	Exec func(ctx context.Context, argv, env []string) error
}

// Start runs the hooks of cfg until stop is called; stop waits for the
// runs under way to end (a command is killed). With no hook and no watch
// it does nothing.
func Start(cfg Config) (stop func()) {
	if cfg.Hook == nil && len(cfg.Watches) == 0 {
		return func() {}
	}
	return newRunner(cfg).start()
}

// runner runs change hooks for the files whose content a change of the
// cache altered. It subscribes to the cache, works out which files' bytes
// really changed, and runs each hook once per burst of changes: once
// Debounce has passed without another change of a file it covers, with
// every file changed since its last run named in the environment. Runs of
// one hook never overlap, and at most maxHookRuns run at once. A failing
// hook is logged, never fatal. Neither logs nor the hook's environment ever
// carry a value; the hook's output is discarded for the same reason.
type runner struct {
	log          *slog.Logger
	c            Source
	clock        cache.Clock
	mountDir     string
	defaultStage string
	// catalog says which secrets the default layout shows, and where.
	catalog Shown
	// hook runs for the files of the default layout; nil means none.
	hook *mapping.OnChange
	// mapped are the mapped files that have a hook; files that share an
	// on_change share its *mapping.OnChange, and so its runs.
	mapped []*mappedWatch
	// ran, when set, is told of every run, for metrics.
	ran func(ok bool)
	// exec runs a command.
	exec func(ctx context.Context, argv, env []string) error

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	slots  *semaphore.Weighted // maxHookRuns

	mu      sync.Mutex
	bursts  map[*mapping.OnChange]*burst // guarded by mu
	stopped bool                         // guarded by mu

	pinMu      sync.Mutex
	pins       map[string]func() // secret id -> unpin; guarded by pinMu
	pinsClosed bool              // guarded by pinMu
}

// newRunner builds the runner of cfg; start runs it.
func newRunner(cfg Config) *runner {
	r := &runner{
		log:          cfg.Logger,
		c:            cfg.Source,
		clock:        cfg.Clock,
		mountDir:     cfg.MountDir,
		defaultStage: cfg.DefaultStage,
		catalog:      cfg.Shown,
		hook:         cfg.Hook,
		ran:          cfg.Ran,
		exec:         cfg.Exec,
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.exec == nil {
		r.exec = runProcess
	}
	for _, w := range cfg.Watches {
		r.mapped = append(r.mapped, newMappedWatch(w))
	}
	return r
}

// burst is what a hook has to run for: the files changed since its last
// run started.
type burst struct {
	hook *mapping.OnChange
	// The fields below are guarded by the runner's mu.
	files  map[string]fileRef // absolute path -> what it shows
	last   time.Time          // when a file last changed
	active bool               // a goroutine waits out the debounce and runs it
}

// fileRef is what a file shows: a stage of a secret, or one version.
type fileRef struct {
	secretID, stage, versionID string
}

// start subscribes the runner to the cache.
func (r *runner) start() (stop func()) {
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.bursts = make(map[*mapping.OnChange]*burst)
	r.slots = semaphore.NewWeighted(maxHookRuns)
	for _, w := range r.mapped {
		w.changed(r.ctx) // the content to compare the first change with
	}
	unsubscribe := r.c.Subscribe(r.handle)
	unfollow := func() {}
	if r.hook != nil {
		r.pins = make(map[string]func())
		unfollow = r.catalog.OnChange(r.pinShown)
		r.pinShown()
	}
	return func() {
		unfollow()
		r.unpinAll()
		unsubscribe()
		r.mu.Lock()
		r.stopped = true
		r.mu.Unlock()
		r.cancel()
		r.wg.Wait()
	}
}

// pinShown keeps exactly the secrets the default layout shows pinned: the
// cache refreshes a secret in the background only while it is read or
// pinned, and an application that read its secret once at start-up must
// still have its hook run after a rotation. Mapped files need nothing
// here: the filesystem pins every secret they use.
func (r *runner) pinShown() {
	shown := make(map[string]bool)
	for _, ref := range r.catalog.List() {
		if _, ok := sfs.DirOf(ref.Name); ok {
			shown[ref.ID] = true
		}
	}
	r.pinMu.Lock()
	defer r.pinMu.Unlock()
	if r.pinsClosed {
		return
	}
	for id := range shown {
		if r.pins[id] == nil {
			r.pins[id] = r.c.Pin(id)
		}
	}
	for id, unpin := range r.pins {
		if !shown[id] {
			unpin()
			delete(r.pins, id)
		}
	}
}

// unpinAll undoes pinShown for good.
func (r *runner) unpinAll() {
	r.pinMu.Lock()
	defer r.pinMu.Unlock()
	r.pinsClosed = true
	for id, unpin := range r.pins {
		unpin()
		delete(r.pins, id)
	}
}

// dirs returns the directories (relative to the mount, "/"-separated)
// where the default layout shows a secret: fs decides (DirOf), so a name
// the mount hides has none, and none is cleaned into another's path.
func (r *runner) dirs(id string) []string {
	var out []string
	for _, ref := range r.catalog.RefsOf(id) {
		if dir, ok := sfs.DirOf(ref.Name); ok && ref.ID == id {
			out = append(out, dir)
		}
	}
	return out
}

// handle schedules the hooks of every file the change altered.
func (r *runner) handle(ch cache.Change) {
	for _, w := range r.mapped {
		if slices.Contains(w.ids, ch.SecretID) && w.changed(r.ctx) {
			r.schedule(w.hook, []string{w.path}, w.ref)
		}
	}
	if r.hook == nil {
		return
	}
	dirs := r.dirs(ch.SecretID)
	if len(dirs) == 0 {
		return
	}
	var paths []string
	for _, name := range r.changedFiles(ch) {
		for _, d := range dirs {
			paths = append(paths, absPath(r.mountDir, d+"/"+name))
		}
	}
	r.schedule(r.hook, paths, fileRef{secretID: ch.SecretID, stage: ch.Stage})
}

// changedFiles lists the names, in the secret's directory, whose bytes the
// change altered, as fs decides (ChangedFiles). The old version is compared
// only when the cache still holds its value (no call is made for it);
// otherwise every file of the new version counts as changed.
func (r *runner) changedFiles(ch cache.Change) []string {
	var oldSnap, newSnap sfs.Snapshot
	oldSnap.Data, oldSnap.Known = r.cachedValue(ch.SecretID, ch.OldVersionID)
	oldSnap.Exists = ch.OldVersionID != ""
	defer clear(oldSnap.Data)
	if ch.NewVersionID != "" {
		ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
		v, err := r.c.GetValueByVersion(ctx, ch.SecretID, ch.NewVersionID)
		cancel()
		if err != nil {
			// Readers still get the old value: nothing changed for them.
			r.log.Warn("on_change: the new version cannot be read; not running the hook", "secret", ch.SecretID, "stage", ch.Stage, "version", ch.NewVersionID, "error", err)
			return nil
		}
		newSnap = sfs.Snapshot{Exists: true, Known: true, Data: v.Data}
		defer clear(newSnap.Data)
	}
	return sfs.ChangedFiles(ch.Stage, r.defaultStage, oldSnap, newSnap)
}

// cachedValue returns a version's value if the cache holds it; ok is true
// with no data for an empty version id.
func (r *runner) cachedValue(id, vid string) ([]byte, bool) {
	if vid == "" {
		return nil, true
	}
	info, ok := r.c.Info(id)
	if !ok {
		return nil, false
	}
	for _, v := range info.Versions {
		if v.VersionID == vid && !v.FetchedAt.IsZero() {
			val, err := r.c.GetValueByVersion(r.ctx, id, vid)
			if err != nil {
				return nil, false
			}
			return val.Data, true
		}
	}
	return nil, false
}

// schedule adds changed files to the hook's burst and makes sure a
// goroutine will run the hook once the burst is over.
func (r *runner) schedule(hook *mapping.OnChange, paths []string, ref fileRef) {
	if len(paths) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	b := r.bursts[hook]
	if b == nil {
		b = &burst{hook: hook, files: make(map[string]fileRef)}
		r.bursts[hook] = b
	}
	for _, p := range paths {
		b.files[p] = ref
	}
	b.last = r.clock.Now()
	if !b.active {
		b.active = true
		r.wg.Go(func() { r.drive(b) })
	}
}

// drive runs a hook once its burst is over, and again for as long as files
// changed during the run, until the daemon stops.
func (r *runner) drive(b *burst) {
	for {
		if !r.quiet(b) || !r.acquire(b.hook) {
			return
		}
		r.mu.Lock()
		files := b.files
		b.files = make(map[string]fileRef)
		r.mu.Unlock()
		r.run(b.hook, files)
		r.slots.Release(1)
		r.mu.Lock()
		if len(b.files) == 0 {
			b.active = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
	}
}

// quiet waits until no file of the burst has changed for the hook's
// debounce; false when the daemon stops first.
func (r *runner) quiet(b *burst) bool {
	d := b.hook.Debounce
	if d == 0 {
		d = mapping.DefaultDebounce
	}
	for {
		r.mu.Lock()
		due := b.last.Add(d)
		r.mu.Unlock()
		if !r.clock.Now().Before(due) {
			return true
		}
		select {
		case <-r.clock.Alarm(due):
		case <-r.ctx.Done():
			return false
		}
	}
}

// acquire takes one of the maxHookRuns slots, waiting while all are busy;
// false when the daemon stops first.
func (r *runner) acquire(hook *mapping.OnChange) bool {
	if r.slots.TryAcquire(1) {
		return true
	}
	r.log.Debug("on_change: waiting for a free hook slot", "hook", describe(hook), "slots", maxHookRuns)
	return r.slots.Acquire(r.ctx, 1) == nil
}

// run runs the hook once for the files of a burst. The environment
// describes the files as they are when it starts: a later change than the
// one that put a file in the burst may have moved its stage on since.
func (r *runner) run(hook *mapping.OnChange, files map[string]fileRef) {
	start := r.clock.Now()
	var err error
	if hook.Signal != "" {
		err = signalPIDFile(hook.Signal, hook.PIDFile)
	} else {
		argv := hook.Command
		if hook.Shell {
			argv = []string{"/bin/sh", "-c", argv[0]}
		}
		paths := slices.Sorted(maps.Keys(files))
		var one *changedFile
		if len(paths) == 1 {
			ref := files[paths[0]]
			one = &changedFile{path: paths[0], secretID: ref.secretID, stage: ref.stage, versionID: r.versionOf(ref)}
		}
		err = r.exec(r.ctx, argv, hookEnv(os.Environ(), paths, one))
	}
	if r.ran != nil {
		r.ran(err == nil)
	}
	secrets := make([]string, 0, len(files))
	for _, ref := range files {
		secrets = append(secrets, ref.secretID)
	}
	slices.Sort(secrets)
	secrets = slices.Compact(secrets)
	if err != nil {
		r.log.Warn("on_change failed", "hook", describe(hook), "files", len(files), "secrets", secrets, "error", err)
		return
	}
	r.log.Info("on_change ran", "hook", describe(hook), "files", len(files), "secrets", secrets, "took", r.clock.Now().Sub(start).Round(time.Millisecond))
}

// versionOf returns the version a file shows now, from what the cache
// knows (no call is made); "" when its stage is gone.
func (r *runner) versionOf(ref fileRef) string {
	if ref.versionID != "" {
		return ref.versionID
	}
	info, ok := r.c.Info(ref.secretID)
	if !ok {
		return ""
	}
	return info.Stages[ref.stage]
}
