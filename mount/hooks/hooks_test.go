package hooks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/mount/mapping"
	"github.com/secretsfs/secretsfs/test/fakecache"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// hookRecorder stands in for the hook processes: it records each run's
// environment and how many run at once, and can hold runs until released.
type hookRecorder struct {
	mu      sync.Mutex
	envs    [][]string // one per run, in start order; guarded by mu
	running int        // guarded by mu
	most    int        // the most running at once; guarded by mu
	hold    chan struct{}
}

// exec is a Config.Exec; with hold set it waits for release.
func (h *hookRecorder) exec(ctx context.Context, argv, env []string) error {
	h.mu.Lock()
	h.envs = append(h.envs, env)
	h.running++
	h.most = max(h.most, h.running)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.running--
		h.mu.Unlock()
	}()
	if h.hold != nil {
		select {
		case <-h.hold:
		case <-ctx.Done():
		}
	}
	return nil
}

// state returns how many runs started, run now and ran at most at once.
func (h *hookRecorder) state() (started, running, most int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.envs), h.running, h.most
}

// env returns run i's variable, "" when unset.
func (h *hookRecorder) env(i int, name string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, kv := range h.envs[i] {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// startRunner starts the runner of cfg over c with the fake clock,
// running commands with exec, and stops it when the test ends.
func startRunner(t *testing.T, cfg Config, c *cache.Cache, clock *cachetest.Clock, exec func(ctx context.Context, argv, env []string) error) *runner {
	t.Helper()
	cfg.Source, cfg.Clock, cfg.Exec, cfg.DefaultStage = c, clock, exec, "AWSCURRENT"
	if cfg.Shown == nil {
		cfg.Shown = staticCatalog(nil)
	}
	r := newRunner(cfg)
	stop := r.start()
	t.Cleanup(stop)
	return r
}

// staticCatalog is a catalog that shows the same secrets, each at its id.
type staticCatalog []string

func (c staticCatalog) List() []sfs.SecretRef {
	refs := make([]sfs.SecretRef, len(c))
	for i, id := range c {
		refs[i] = sfs.SecretRef{Name: id, ID: id}
	}
	return refs
}

func (c staticCatalog) RefsOf(id string) []sfs.SecretRef {
	if slices.Contains(c, id) {
		return []sfs.SecretRef{{Name: id, ID: id}}
	}
	return nil
}

func (staticCatalog) OnChange(func()) (cancel func()) { return func() {} }

// pendingFiles returns how many files a hook's burst holds.
func (r *runner) pendingFiles(hook *mapping.OnChange) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b := r.bursts[hook]; b != nil {
		return len(b.files)
	}
	return 0
}

// idle reports whether no hook has files pending or a run under way.
func (r *runner) idle() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.bursts {
		if b.active {
			return false
		}
	}
	return true
}

// jsonOfKeys is a JSON object of n keys whose values carry gen.
func jsonOfKeys(n, gen int) string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%03d", i)] = fmt.Sprintf("value-%d-%d", gen, i)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// TestDefect9_09_OneRunPerHookPerBurst: one PutSecretValue on a 400-key
// JSON secret changes 402 files (every key, AWSCURRENT and AWSPREVIOUS);
// the hook runs once, naming them all, not once per file.
func TestDefect9_09_OneRunPerHookPerBurst(t *testing.T) {
	c, client, clock := fakecache.New(t)
	client.PutString("db", jsonOfKeys(400, 1))
	ctx := context.Background()
	if _, err := c.GetValue(ctx, "db", ""); err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	hook := &mapping.OnChange{Command: []string{"true"}, Debounce: time.Second}
	rec := &hookRecorder{}
	r := startRunner(t, Config{MountDir: mnt, Hook: hook, Shown: staticCatalog{"db"}}, c, clock, rec.exec)

	v2 := client.PutString("db", jsonOfKeys(400, 2))
	if err := c.RefreshNow(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the 402 changed files pending", func() bool { return r.pendingFiles(hook) == 402 })
	clock.Advance(time.Second)
	waitFor(t, "the run", func() bool { started, _, _ := rec.state(); return started > 0 && r.idle() })
	if started, _, _ := rec.state(); started != 1 {
		t.Fatalf("one change of a 400-key secret ran the hook %d times, want once", started)
	}
	paths, _ := rec.env(0, "SECRETSFS_PATHS")
	lines := strings.Split(paths, "\n")
	if len(lines) != 402 || lines[0] != filepath.Join(mnt, "db", "AWSCURRENT") || lines[401] != filepath.Join(mnt, "db", "k399") {
		t.Fatalf("SECRETSFS_PATHS has %d lines, from %q to %q; want the 402 files sorted", len(lines), lines[0], lines[len(lines)-1])
	}
	if p, ok := rec.env(0, "SECRETSFS_PATH"); ok {
		t.Fatalf("SECRETSFS_PATH=%q set for a run of 402 files", p)
	}

	// Two changes half a debounce apart: one more run, a debounce after
	// the second. (The changes are handed to the runner directly, so that
	// the test knows when each was handled.)
	v3 := client.PutString("db", jsonOfKeys(400, 3))
	v4 := client.PutString("db", jsonOfKeys(400, 4))
	r.handle(cache.Change{SecretID: "db", Stage: "AWSCURRENT", OldVersionID: v2, NewVersionID: v3})
	clock.Advance(500 * time.Millisecond)
	r.handle(cache.Change{SecretID: "db", Stage: "AWSCURRENT", OldVersionID: v3, NewVersionID: v4})
	clock.Advance(500 * time.Millisecond)
	waitFor(t, "the hook waiting out the restarted debounce", func() bool { return clock.Waiters() == 1 })
	if started, _, _ := rec.state(); started != 1 {
		t.Fatal("the hook ran while changes were still coming")
	}
	clock.Advance(500 * time.Millisecond)
	waitFor(t, "the second run", func() bool { started, _, _ := rec.state(); return started > 1 && r.idle() })
	if started, _, _ := rec.state(); started != 2 {
		t.Fatalf("two changes inside one debounce ran the hook %d more times, want once", started-1)
	}
}

// TestDefect9_09_HookRunsAtOnceAreBounded: ten mapped files, each with its
// own hook, change together; at most maxHookRuns hooks run at once, the
// others wait for a slot, and all run in the end.
func TestDefect9_09_HookRunsAtOnceAreBounded(t *testing.T) {
	c, client, clock := fakecache.New(t)
	client.PutString("db", "v1")
	render := func(ctx context.Context) (sfs.Value, error) {
		v, err := c.GetValue(ctx, "db", "")
		return sfs.Value{Data: v.Data}, err
	}
	var cfg Config
	const hooks = 10
	for i := range hooks {
		cfg.Watches = append(cfg.Watches, Watch{Path: fmt.Sprintf("/mnt/f%d", i), SecretIDs: []string{"db"}, Render: render,
			Hook: &mapping.OnChange{Command: []string{"true"}, Debounce: time.Second}})
	}
	logs := &testutil.SyncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rec := &hookRecorder{hold: make(chan struct{})}
	r := startRunner(t, cfg, c, clock, rec.exec)

	client.PutString("db", "v2")
	if err := c.RefreshNow(context.Background(), "db"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every hook pending", func() bool {
		for _, w := range r.mapped {
			if r.pendingFiles(w.hook) != 1 {
				return false
			}
		}
		return true
	})
	clock.Advance(time.Second)
	waitFor(t, "every hook running or waiting for a slot", func() bool {
		started, _, _ := rec.state()
		return started+strings.Count(logs.String(), "waiting for a free hook slot") >= hooks
	})
	if started, running, _ := rec.state(); started != maxHookRuns || running != maxHookRuns {
		t.Fatalf("%d hook runs started, %d at once; want at most %d at once", started, running, maxHookRuns)
	}
	close(rec.hold)
	waitFor(t, "every hook run", func() bool { started, _, _ := rec.state(); return started == hooks && r.idle() })
	if _, _, most := rec.state(); most > maxHookRuns {
		t.Fatalf("%d hook runs at once, want at most %d", most, maxHookRuns)
	}
}

// TestOnChangeRunsARealCommand: the runner starts the command, from /,
// with the allowed environment and the changed file named.
func TestOnChangeRunsARealCommand(t *testing.T) {
	c, client, clock := fakecache.New(t)
	client.PutString("db", "v1")
	out := filepath.Join(t.TempDir(), "out")
	content := "a"
	var ok []bool
	var mu sync.Mutex
	cfg := Config{Watches: []Watch{{Path: "/mnt/f", SecretIDs: []string{"db"}, SecretID: "db", Stage: "AWSCURRENT",
		Render: func(context.Context) (sfs.Value, error) { return sfs.Value{Data: []byte(content)}, nil },
		Hook:   &mapping.OnChange{Command: []string{`echo "$(pwd) $SECRETSFS_PATH $SECRETSFS_SECRET_ID" > ` + out}, Shell: true}}},
		Ran: func(b bool) { mu.Lock(); ok = append(ok, b); mu.Unlock() }}
	r := startRunner(t, cfg, c, clock, runProcess)
	content = "b"
	r.handle(cache.Change{SecretID: "db", Stage: "AWSCURRENT", OldVersionID: "x", NewVersionID: "y"})
	clock.Advance(mapping.DefaultDebounce)
	waitFor(t, "the command", func() bool { mu.Lock(); defer mu.Unlock(); return len(ok) == 1 })
	got, err := os.ReadFile(out)
	if err != nil || string(got) != "/ /mnt/f db\n" || !ok[0] {
		t.Fatalf("the command wrote %q (%v), ok %v", got, err, ok)
	}
}

// TestDefect9_21_TheRunNamesTheVersionServedWhenItStarts: two rotations
// inside one debounce window, the first changing a mapped file's bytes and
// the second not; the one run names the version the file serves when the
// hook starts, not the one that first changed it.
func TestDefect9_21_TheRunNamesTheVersionServedWhenItStarts(t *testing.T) {
	c, client, clock := fakecache.New(t)
	client.PutString("db", `{"user":"a","password":"p1"}`)
	ctx := context.Background()
	if _, err := c.GetValue(ctx, "db", ""); err != nil {
		t.Fatal(err)
	}
	m, err := mapping.Parse("m.yaml", []byte("on_change: {command: [\"true\"]}\nfiles:\n  - path: app/password\n    secret: db\n    key: password\n"))
	if err != nil {
		t.Fatal(err)
	}
	// The mapped file as mount builds it: the password key of db.
	files := []sfs.MappedFile{{Path: "app/password", SecretIDs: []string{"db"}, Render: func(ctx context.Context) (sfs.Value, error) {
		v, err := c.GetValue(ctx, "db", "")
		if err != nil {
			return sfs.Value{}, err
		}
		var keys map[string]string
		if err := json.Unmarshal(v.Data, &keys); err != nil {
			return sfs.Value{}, err
		}
		return sfs.Value{Data: []byte(keys["password"])}, nil
	}}}
	rec := &hookRecorder{}
	r := startRunner(t, Config{Watches: WatchesOf(m, files, "/mnt", "AWSCURRENT")}, c, clock, rec.exec)
	hook := r.mapped[0].hook

	client.PutString("db", `{"user":"a","password":"p2"}`)
	c.RefreshNow(ctx, "db")
	waitFor(t, "the password file pending", func() bool { return r.pendingFiles(hook) == 1 })
	v3 := client.PutString("db", `{"user":"b","password":"p2"}`)
	c.RefreshNow(ctx, "db")
	if v, err := c.GetValue(ctx, "db", ""); err != nil || v.VersionID != v3 {
		t.Fatalf("the file does not serve the second rotation's version: %v %v", v.VersionID, err)
	}
	clock.Advance(mapping.DefaultDebounce)
	waitFor(t, "the run", func() bool { started, _, _ := rec.state(); return started == 1 && r.idle() })
	for name, want := range map[string]string{
		"SECRETSFS_PATH":       "/mnt/app/password",
		"SECRETSFS_SECRET_ID":  "db",
		"SECRETSFS_STAGE":      "AWSCURRENT",
		"SECRETSFS_VERSION_ID": v3,
	} {
		if got, _ := rec.env(0, name); got != want {
			t.Errorf("%s=%q, want %q", name, got, want)
		}
	}
}

// TestDefect9_18_HookFiresWithoutFurtherReads: an application reads its
// secret once at start-up; a rotation after that still runs the
// --on-change-* hook, because a secret whose files carry a hook is kept
// refreshed whether read or not.
func TestDefect9_18_HookFiresWithoutFurtherReads(t *testing.T) {
	c, client, clock := fakecache.New(t, func(cfg *cache.Config) { cfg.RefreshAhead = 10 * time.Second })
	client.PutString("db", "v1")
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "ran")
	stop := Start(Config{
		MountDir:     t.TempDir(),
		DefaultStage: "AWSCURRENT",
		Hook:         &mapping.OnChange{Command: []string{"/bin/sh", "-c", "echo ran >> " + out}},
		Shown:        staticCatalog{"db"},
		Source:       c,
		Clock:        clock,
	})
	t.Cleanup(stop)
	if _, err := c.GetValue(ctx, "db", ""); err != nil {
		t.Fatal(err)
	}
	// Let the refresh that the read earns happen: a cache refreshes what
	// was read since its last refresh anyway.
	before := client.Calls(cache.OpDescribeSecret)
	waitFor(t, "a background refresh after the read", func() bool {
		clock.Advance(10 * time.Second)
		return client.Calls(cache.OpDescribeSecret) > before
	})
	client.PutString("db", "v2")
	waitFor(t, "the hook, with no further read", func() bool {
		clock.Advance(10 * time.Second)
		_, err := os.Stat(out)
		return err == nil
	})
}

// changingCatalog is a catalog whose listing the test sets.
type changingCatalog struct {
	mu   sync.Mutex
	refs []sfs.SecretRef
	fn   func()
}

func (c *changingCatalog) List() []sfs.SecretRef {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.refs)
}

func (c *changingCatalog) RefsOf(id string) []sfs.SecretRef {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []sfs.SecretRef
	for _, r := range c.refs {
		if r.ID == id {
			out = append(out, r)
		}
	}
	return out
}

func (c *changingCatalog) OnChange(fn func()) (cancel func()) {
	c.mu.Lock()
	c.fn = fn
	c.mu.Unlock()
	return func() { c.mu.Lock(); c.fn = nil; c.mu.Unlock() }
}

func (c *changingCatalog) set(refs ...sfs.SecretRef) {
	c.mu.Lock()
	c.refs = refs
	fn := c.fn
	c.mu.Unlock()
	if fn != nil {
		fn()
	}
}

// TestOnChangePinsFollowTheCatalog: with a hook for the default layout,
// the secrets pinned are those the layout shows, as the listing changes;
// stopping unpins them all.
func TestOnChangePinsFollowTheCatalog(t *testing.T) {
	c, _, clock := fakecache.New(t)
	cat := &changingCatalog{refs: []sfs.SecretRef{{Name: "a", ID: "a"}, {Name: "b", ID: "b"}, {Name: "bad//name", ID: "c"}}}
	r := newRunner(Config{Shown: cat, Hook: &mapping.OnChange{Command: []string{"true"}}, Source: c, Clock: clock})
	stop := r.start()
	pinned := func() []string {
		r.pinMu.Lock()
		defer r.pinMu.Unlock()
		return slices.Sorted(maps.Keys(r.pins))
	}
	if got := pinned(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("pinned %v, want the secrets shown: [a b]", got)
	}
	cat.set(sfs.SecretRef{Name: "b", ID: "b"}, sfs.SecretRef{Name: "d", ID: "d"})
	if got := pinned(); !slices.Equal(got, []string{"b", "d"}) {
		t.Fatalf("after a new listing pinned %v, want [b d]", got)
	}
	stop()
	if got := pinned(); len(got) != 0 {
		t.Fatalf("after stop pinned %v", got)
	}
	cat.set(sfs.SecretRef{Name: "e", ID: "e"})
	if got := pinned(); len(got) != 0 {
		t.Fatalf("a listing after stop pinned %v", got)
	}
}

// TestDefect11_03_HookPathIsThePathTheMountShows: the catalog lists "b"
// and names the mount hides ("a/../b", "a/./b", "/a", "a//b"). A rotation
// of a hidden name's secret runs no hook (today "a/../b" runs it with
// SECRETSFS_PATH=<mnt>/b/AWSCURRENT, b's file), nothing hidden is pinned,
// and the only run naming <mnt>/b is b's own change.
func TestDefect11_03_HookPathIsThePathTheMountShows(t *testing.T) {
	c, client, clock := fakecache.New(t)
	ctx := context.Background()
	hidden := []string{"a/../b", "a/./b", "/a", "a//b"}
	versions := map[string]string{}
	for _, id := range append([]string{"b"}, hidden...) {
		versions[id] = client.PutString(id, "v1 of "+id)
		if _, err := c.GetValue(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
	}
	mnt := t.TempDir()
	hook := &mapping.OnChange{Command: []string{"true"}, Debounce: time.Second}
	rec := &hookRecorder{}
	r := startRunner(t, Config{MountDir: mnt, Hook: hook, Shown: staticCatalog(append([]string{"b"}, hidden...))}, c, clock, rec.exec)
	r.pinMu.Lock()
	pinned := slices.Sorted(maps.Keys(r.pins))
	r.pinMu.Unlock()
	if !slices.Equal(pinned, []string{"b"}) {
		t.Errorf("pinned %q, want only the secret the mount shows: [b]", pinned)
	}

	// rotate hands a new version of id to the runner, waits out the
	// debounce and returns the runs it caused, as "SECRET_ID -> PATHS".
	rotate := func(id string) []string {
		t.Helper()
		before, _, _ := rec.state()
		v := client.PutString(id, "v2 of "+id)
		r.handle(cache.Change{SecretID: id, Stage: "AWSCURRENT", OldVersionID: versions[id], NewVersionID: v})
		versions[id] = v
		clock.Advance(hook.Debounce)
		waitFor(t, "the runner to be idle", r.idle)
		after, _, _ := rec.state()
		var runs []string
		for i := before; i < after; i++ {
			sid, _ := rec.env(i, "SECRETSFS_SECRET_ID")
			paths, _ := rec.env(i, "SECRETSFS_PATHS")
			runs = append(runs, sid+" -> "+paths)
		}
		return runs
	}
	for _, id := range hidden {
		if runs := rotate(id); len(runs) != 0 {
			t.Errorf("rotating %q, a name the mount hides, ran the hook: %q", id, runs)
		}
	}
	want := "b -> " + filepath.Join(mnt, "b", "AWSCURRENT")
	if runs := rotate("b"); !slices.Equal(runs, []string{want}) {
		t.Errorf("rotating b ran %q, want [%q]", runs, want)
	}
}

func TestChangedFilesComparesBytes(t *testing.T) {
	c, client, clock := fakecache.New(t)
	v1 := client.PutString("db", `{"user":"app","password":"p1","gone":"x"}`)
	r := newRunner(Config{Source: c, DefaultStage: "AWSCURRENT"})
	r.ctx = context.Background()
	if _, err := c.GetValue(context.Background(), "db", ""); err != nil {
		t.Fatal(err)
	}
	v2 := client.PutString("db", `{"user":"app","password":"p2","new":1}`)
	clock.Advance(time.Hour)
	if _, err := c.GetValue(context.Background(), "db", ""); err != nil {
		t.Fatal(err)
	}
	got := r.changedFiles(cache.Change{SecretID: "db", Stage: "AWSCURRENT", OldVersionID: v1, NewVersionID: v2})
	slices.Sort(got)
	if want := []string{"AWSCURRENT", "gone", "new", "password"}; !slices.Equal(got, want) {
		t.Fatalf("changed files = %v, want %v", got, want)
	}
	// Another stage: only its own file.
	if got := r.changedFiles(cache.Change{SecretID: "db", Stage: "AWSPREVIOUS", NewVersionID: v1}); !slices.Equal(got, []string{"AWSPREVIOUS"}) {
		t.Fatalf("AWSPREVIOUS appearing: %v", got)
	}
	// A new version with the same bytes changes nothing.
	v3 := client.PutString("db", `{"user":"app","password":"p2","new":1}`)
	clock.Advance(time.Hour)
	c.GetValue(context.Background(), "db", "")
	if got := r.changedFiles(cache.Change{SecretID: "db", Stage: "AWSCURRENT", OldVersionID: v2, NewVersionID: v3}); len(got) != 0 {
		t.Fatalf("same bytes, new version: %v changed", got)
	}
}

func TestMappedWatchFiresOnlyWhenTheBytesChange(t *testing.T) {
	content := "a"
	w := newMappedWatch(Watch{Render: func(context.Context) (sfs.Value, error) { return sfs.Value{Data: []byte(content)}, nil }})
	ctx := context.Background()
	for i, step := range []struct {
		set  string
		want bool
	}{{"a", true}, {"a", false}, {"b", true}, {"b", false}} {
		content = step.set
		if got := w.changed(ctx); got != step.want {
			t.Errorf("step %d (%q): changed = %v, want %v", i, step.set, got, step.want)
		}
	}
}
