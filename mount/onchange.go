package mount

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/secretsfs/secretsfs/cache"
	sfs "github.com/secretsfs/secretsfs/fs"
)

// hookTimeout bounds one run of an on_change command; the command's process
// group is killed beyond it.
const hookTimeout = time.Minute

// changeRunner runs change hooks for the files whose content a change of
// the cache altered. It subscribes to the cache, works out which files'
// bytes really changed, debounces per file and runs the hook. A failing
// hook is logged, never fatal. Neither logs nor the hook's environment ever
// carry a value; the hook's output is discarded for the same reason.
type changeRunner struct {
	log          *slog.Logger
	c            *cache.Cache
	mountDir     string
	defaultStage string
	// dirs returns the directories (relative to the mount) where the
	// default layout shows a secret.
	dirs func(secretID string) []string
	// hook runs for the files of the default layout; nil means none.
	hook *ChangeHook
	// mapped are the mapped files that have a hook.
	mapped []*mappedWatch
	// ran, when set, is told of every run, for metrics.
	ran func(ok bool)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	pending map[string]*time.Timer // absolute path -> debounce timer; guarded by mu
	stopped bool                   // guarded by mu
}

// start subscribes the runner to the cache.
func (r *changeRunner) start() (stop func()) {
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.pending = make(map[string]*time.Timer)
	for _, w := range r.mapped {
		w.changed(r.ctx) // the content to compare the first change with
	}
	unsubscribe := r.c.Subscribe(r.handle)
	return func() {
		unsubscribe()
		r.mu.Lock()
		r.stopped = true
		for p, t := range r.pending {
			if t.Stop() {
				r.wg.Done()
			}
			delete(r.pending, p)
		}
		r.mu.Unlock()
		r.cancel()
		r.wg.Wait()
	}
}

// handle schedules the hook for every file the change altered.
func (r *changeRunner) handle(ch cache.Change) {
	for _, w := range r.mapped {
		if slices.Contains(w.ids, ch.SecretID) && w.changed(r.ctx) {
			r.schedule(w.path, w.hook, ch)
		}
	}
	if r.hook == nil {
		return
	}
	dirs := r.dirs(ch.SecretID)
	if len(dirs) == 0 {
		return
	}
	for _, name := range r.changedFiles(ch) {
		for _, d := range dirs {
			r.schedule(filepath.Join(r.mountDir, d, name), r.hook, ch)
		}
	}
}

// changedFiles lists the names, in the secret's directory, whose bytes the
// change altered: the stage's file, and for the default stage each JSON key
// file that appeared, went or changed. The old version is compared only when
// the cache still holds its value (no call is made for it); otherwise every
// file of the new version counts as changed.
func (r *changeRunner) changedFiles(ch cache.Change) []string {
	oldData, oldOK := r.cachedValue(ch.SecretID, ch.OldVersionID)
	defer clear(oldData)
	var newData []byte
	newOK := ch.NewVersionID == ""
	if !newOK {
		ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
		v, err := r.c.GetValueByVersion(ctx, ch.SecretID, ch.NewVersionID)
		cancel()
		if err != nil {
			// Readers still get the old value: nothing changed for them.
			r.log.Warn("on_change: the new version cannot be read; not running the hook", "secret", ch.SecretID, "stage", ch.Stage, "version", ch.NewVersionID, "error", err)
			return nil
		}
		newData, newOK = v.Data, true
		defer clear(newData)
	}
	var names []string
	if !oldOK || ch.OldVersionID == "" || ch.NewVersionID == "" || !bytes.Equal(oldData, newData) {
		names = append(names, ch.Stage)
	}
	if ch.Stage != r.defaultStage {
		return names
	}
	newKeys := sfs.KeyFiles(newData)
	if !oldOK {
		for k := range newKeys {
			names = append(names, k)
		}
		return names
	}
	oldKeys := sfs.KeyFiles(oldData)
	for k, nv := range newKeys {
		if ov, ok := oldKeys[k]; !ok || !bytes.Equal(ov, nv) {
			names = append(names, k)
		}
	}
	for k := range oldKeys {
		if _, ok := newKeys[k]; !ok {
			names = append(names, k)
		}
	}
	return names
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

// schedule runs the hook for path once it has been quiet for the debounce.
func (r *changeRunner) schedule(path string, hook *ChangeHook, ch cache.Change) {
	d := hook.Debounce
	if d == 0 {
		d = DefaultDebounce
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	if t, ok := r.pending[path]; ok && t.Stop() {
		r.wg.Done()
	}
	r.wg.Add(1)
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		defer r.wg.Done()
		r.mu.Lock()
		if r.pending[path] == t {
			delete(r.pending, path)
		}
		r.mu.Unlock()
		r.run(path, hook, ch)
	})
	r.pending[path] = t
}

// run runs the hook for one file now.
func (r *changeRunner) run(path string, hook *ChangeHook, ch cache.Change) {
	start := time.Now()
	var err error
	if hook.Signal != "" {
		err = signalPIDFile(hook.Signal, hook.PIDFile)
	} else {
		err = r.runCommand(path, hook, ch)
	}
	if r.ran != nil {
		r.ran(err == nil)
	}
	if err != nil {
		r.log.Warn("on_change failed", "path", path, "secret", ch.SecretID, "error", err)
		return
	}
	r.log.Info("on_change ran", "path", path, "secret", ch.SecretID, "took", time.Since(start).Round(time.Millisecond))
}

// runCommand runs the command with the changed file in its environment, from
// /, with no input or output, in a process group of its own that is killed
// when it runs too long or the daemon stops.
func (r *changeRunner) runCommand(path string, hook *ChangeHook, ch cache.Change) error {
	ctx, cancel := context.WithTimeout(r.ctx, hookTimeout)
	defer cancel()
	argv := hook.Command
	if hook.Shell {
		argv = []string{"/bin/sh", "-c", argv[0]}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = hookEnv(os.Environ(), path, ch)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil && r.ctx.Err() == nil {
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

// hookEnv is the allowed part of the daemon's environment (hookEnvAllowed),
// plus what changed: SECRETSFS_PATH (the file's absolute path),
// SECRETSFS_SECRET_ID, SECRETSFS_STAGE and SECRETSFS_VERSION_ID. Never a
// value.
func hookEnv(base []string, path string, ch cache.Change) []string {
	var env []string
	for _, kv := range base {
		if k, _, ok := strings.Cut(kv, "="); ok && hookEnvAllowed(k) {
			env = append(env, kv)
		}
	}
	return append(env,
		"SECRETSFS_PATH="+path,
		"SECRETSFS_SECRET_ID="+ch.SecretID,
		"SECRETSFS_STAGE="+ch.Stage,
		"SECRETSFS_VERSION_ID="+ch.NewVersionID,
	)
}

// signalPIDFile sends a signal to the process whose pid the file holds. The
// file must be one that only root or the daemon's user can have written
// (trustedPIDFile); it is checked and read through one open descriptor.
func signalPIDFile(signal, pidFile string) error {
	sig, err := ParseSignal(signal)
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
