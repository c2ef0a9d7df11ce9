package mount

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

// changeRunner runs change hooks for the files whose content a change of
// the cache altered. It subscribes to the cache, works out which files'
// bytes really changed, and runs each hook once per burst of changes: once
// Debounce has passed without another change of a file it covers, with
// every file changed since its last run named in the environment. Runs of
// one hook never overlap, and at most maxHookRuns run at once. A failing
// hook is logged, never fatal. Neither logs nor the hook's environment ever
// carry a value; the hook's output is discarded for the same reason.
type changeRunner struct {
	log          *slog.Logger
	c            *cache.Cache
	clock        cache.Clock
	mountDir     string
	defaultStage string
	// catalog says which secrets the default layout shows, and where.
	catalog sfs.Catalog
	// hook runs for the files of the default layout; nil means none. The
	// secrets those files show are pinned in the cache while it is set, so
	// that a change is noticed whether anything reads them or not.
	hook *ChangeHook
	// mapped are the mapped files that have a hook; files that share an
	// on_change share its *ChangeHook, and so its runs.
	mapped []*mappedWatch
	// ran, when set, is told of every run, for metrics.
	ran func(ok bool)
	// exec runs a command; nil means runProcess.
	exec func(ctx context.Context, argv, env []string) error

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	slots  *semaphore.Weighted // maxHookRuns

	mu      sync.Mutex
	bursts  map[*ChangeHook]*burst // guarded by mu
	stopped bool                   // guarded by mu

	pinMu      sync.Mutex
	pins       map[string]func() // secret id -> unpin; guarded by pinMu
	pinsClosed bool              // guarded by pinMu
}

// burst is what a hook has to run for: the files changed since its last
// run started.
type burst struct {
	hook *ChangeHook
	// The fields below are guarded by the changeRunner's mu.
	files  map[string]fileRef // absolute path -> what it shows
	last   time.Time          // when a file last changed
	active bool               // a goroutine waits out the debounce and runs it
}

// fileRef is what a file shows: a stage of a secret, or one version.
type fileRef struct {
	secretID, stage, versionID string
}

// start subscribes the runner to the cache.
func (r *changeRunner) start() (stop func()) {
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.bursts = make(map[*ChangeHook]*burst)
	r.slots = semaphore.NewWeighted(maxHookRuns)
	if r.exec == nil {
		r.exec = runProcess
	}
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
func (r *changeRunner) pinShown() {
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
func (r *changeRunner) unpinAll() {
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
func (r *changeRunner) dirs(id string) []string {
	var out []string
	for _, ref := range r.catalog.List() {
		if dir, ok := sfs.DirOf(ref.Name); ok && ref.ID == id {
			out = append(out, dir)
		}
	}
	return out
}

// handle schedules the hooks of every file the change altered.
func (r *changeRunner) handle(ch cache.Change) {
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
			paths = append(paths, filepath.Join(r.mountDir, filepath.FromSlash(d), name))
		}
	}
	r.schedule(r.hook, paths, fileRef{secretID: ch.SecretID, stage: ch.Stage})
}

// changedFiles lists the names, in the secret's directory, whose bytes the
// change altered, as fs decides (ChangedFiles). The old version is compared
// only when the cache still holds its value (no call is made for it);
// otherwise every file of the new version counts as changed.
func (r *changeRunner) changedFiles(ch cache.Change) []string {
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
func (r *changeRunner) cachedValue(id, vid string) ([]byte, bool) {
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
func (r *changeRunner) schedule(hook *ChangeHook, paths []string, ref fileRef) {
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
func (r *changeRunner) drive(b *burst) {
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
func (r *changeRunner) quiet(b *burst) bool {
	d := b.hook.Debounce
	if d == 0 {
		d = DefaultDebounce
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
func (r *changeRunner) acquire(hook *ChangeHook) bool {
	if r.slots.TryAcquire(1) {
		return true
	}
	r.log.Debug("on_change: waiting for a free hook slot", "hook", hook.describe(), "slots", maxHookRuns)
	return r.slots.Acquire(r.ctx, 1) == nil
}

// run runs the hook once for the files of a burst. The environment
// describes the files as they are when it starts: a later change than the
// one that put a file in the burst may have moved its stage on since.
func (r *changeRunner) run(hook *ChangeHook, files map[string]fileRef) {
	start := time.Now()
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
		r.log.Warn("on_change failed", "hook", hook.describe(), "files", len(files), "secrets", secrets, "error", err)
		return
	}
	r.log.Info("on_change ran", "hook", hook.describe(), "files", len(files), "secrets", secrets, "took", time.Since(start).Round(time.Millisecond))
}

// versionOf returns the version a file shows now, from what the cache
// knows (no call is made); "" when its stage is gone.
func (r *changeRunner) versionOf(ref fileRef) string {
	if ref.versionID != "" {
		return ref.versionID
	}
	info, ok := r.c.Info(ref.secretID)
	if !ok {
		return ""
	}
	return info.Stages[ref.stage]
}

// runProcess runs a command with the given environment, from /, with no
// input or output, in a process group of its own that is killed when it
// runs longer than hookTimeout or ctx ends (the daemon stops).
func runProcess(ctx context.Context, argv, env []string) error {
	tctx, cancel := context.WithTimeout(ctx, hookTimeout)
	defer cancel()
	cmd := exec.CommandContext(tctx, argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if tctx.Err() != nil && ctx.Err() == nil {
			return fmt.Errorf("command %q ran longer than %v and was killed", argv[0], hookTimeout)
		}
		return fmt.Errorf("command %q: %w", argv[0], err)
	}
	return nil
}

// hookEnvAllowed tells whether a hook inherits a variable of the daemon's
// environment: where to find programs, who and where it runs, its locale
// (every LC_* variable) and terminal. Everything else is left out, so no
// credential reaches a hook whatever its name (AWS_SESSION_TOKEN,
// AWS_CONTAINER_AUTHORIZATION_TOKEN, AWS_WEB_IDENTITY_TOKEN_FILE, a
// VAULT_TOKEN...). The README's "Reacting to change" lists the same.
func hookEnvAllowed(name string) bool {
	switch name {
	case "PATH", "HOME", "LANG", "LANGUAGE", "TZ", "USER", "LOGNAME", "SHELL", "TERM", "TMPDIR":
		return true
	}
	return len(name) > len("LC_") && strings.HasPrefix(name, "LC_")
}

// changedFile is what the environment says of the one file a run is for.
type changedFile struct {
	path, secretID, stage, versionID string
}

// hookEnv is the allowed part of the daemon's environment (hookEnvAllowed),
// plus what changed, never a value: SECRETSFS_PATHS, the absolute paths of
// the changed files (sorted), one a line (at most maxPathsEnv bytes; when
// some are left out, SECRETSFS_PATHS_TRUNCATED=1); and when one file
// changed, SECRETSFS_PATH (its path), SECRETSFS_SECRET_ID, SECRETSFS_STAGE
// and SECRETSFS_VERSION_ID.
func hookEnv(base, paths []string, one *changedFile) []string {
	var env []string
	for _, kv := range base {
		if k, _, ok := strings.Cut(kv, "="); ok && hookEnvAllowed(k) {
			env = append(env, kv)
		}
	}
	var list strings.Builder
	truncated := false
	for _, p := range paths {
		if list.Len()+len(p)+1 > maxPathsEnv {
			truncated = true
			break
		}
		if list.Len() > 0 {
			list.WriteByte('\n')
		}
		list.WriteString(p)
	}
	env = append(env, "SECRETSFS_PATHS="+list.String())
	if truncated {
		env = append(env, "SECRETSFS_PATHS_TRUNCATED=1")
	}
	if one != nil {
		env = append(env,
			"SECRETSFS_PATH="+one.path,
			"SECRETSFS_SECRET_ID="+one.secretID,
			"SECRETSFS_STAGE="+one.stage,
			"SECRETSFS_VERSION_ID="+one.versionID,
		)
	}
	return env
}

// signalPIDFile sends a signal to the process whose pid the file holds. The
// file must be one that only root or the daemon's user can have written
// (trustedPIDFile); it is checked and read through one open descriptor.
func signalPIDFile(signal, pidFile string) error {
	sig, err := mapping.ParseSignal(signal)
	if err != nil {
		return err
	}
	f, err := os.Open(pidFile)
	if err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if err := trustedPIDFile(pidFile, fi, os.Geteuid()); err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(f, 64))
	if err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return fmt.Errorf("pid file %s does not hold a process id", pidFile)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("no process %d (from %s)", pid, pidFile)
		}
		return fmt.Errorf("signal %v to pid %d: %w", sig, pid, err)
	}
	return nil
}

// trustedPIDFile refuses a pid file that a user other than root or the
// daemon's (euid) owns, or that group or others may write: whoever can
// write it could have the daemon signal any process it may signal.
func trustedPIDFile(path string, fi os.FileInfo, euid int) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("pid file %s is not a regular file", path)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("pid file %s: cannot tell its owner", path)
	}
	if st.Uid != 0 && int(st.Uid) != euid {
		return fmt.Errorf("pid file %s is owned by uid %d, not by root or the daemon's user (uid %d), so the signal is not sent: whoever owns it could have any process signalled; have the pid file written by root or by the daemon's user (chown root %s)", path, st.Uid, euid, path)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("pid file %s is writable by group or others (mode %04o), so the signal is not sent: anyone who can write it could have any process signalled; chmod go-w %s", path, perm, path)
	}
	return nil
}

// mappedWatch is a mapped file with a hook. Its content is rendered again
// whenever a secret it uses changes, and compared by SHA-256 with the last
// rendering, so the hook runs only when the bytes changed.
type mappedWatch struct {
	path   string // absolute
	ids    []string
	ref    fileRef // what the hook's environment says it shows
	render func(ctx context.Context) (sfs.Value, error)
	hook   *ChangeHook

	mu    sync.Mutex
	sum   [sha256.Size]byte // guarded by mu
	known bool              // sum is set; guarded by mu
}

// changed renders the file and reports whether its content differs from
// the last rendering (or there was none). A failed rendering changes
// nothing: readers get an error, and the hook runs once it works again with
// other bytes.
func (w *mappedWatch) changed(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := w.render(ctx)
	if err != nil {
		return false
	}
	sum := sha256.Sum256(v.Data)
	clear(v.Data)
	w.mu.Lock()
	defer w.mu.Unlock()
	changed := !w.known || sum != w.sum
	w.sum, w.known = sum, true
	return changed
}
