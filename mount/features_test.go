package mount

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/cache/cachetest"
	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/test/testutil"
)

func TestFeaturesValidateNamesTheFlag(t *testing.T) {
	cases := []struct {
		f           Features
		kernelCache bool
		want        string // "" for valid
	}{
		{Features{}, false, ""},
		{Features{MetricsListen: "127.0.0.1:9464", AuditLog: "-", MaxStale: time.Hour}, false, ""},
		{Features{MetricsListen: "[::1]:0"}, false, ""},
		{Features{MetricsListen: "localhost:9464"}, false, ""},
		{Features{MetricsListen: "0.0.0.0:9464", MetricsAllowRemote: true}, false, ""},
		{Features{MetricsListen: "0.0.0.0:9464"}, false, "--metrics-allow-remote"},
		{Features{MetricsListen: "nonsense"}, false, "--metrics-listen"},
		{Features{AuditLog: "/tmp/a"}, true, "--audit-log: needs the per-open serving mode"},
		{Features{MaxStale: -time.Second}, false, "--max-stale"},
		{Features{OnChange: &ChangeHook{Signal: "HUP"}}, false, "--on-change-pidfile"},
		{Features{OnChange: &ChangeHook{Signal: "NOPE", PIDFile: "/p"}}, false, "not a signal"},
		{Features{OnChange: &ChangeHook{Command: []string{"x"}, Signal: "HUP", PIDFile: "/p"}}, false, "not both"},
		{Features{OnChange: &ChangeHook{Command: []string{"true"}}}, false, ""},
	}
	for _, c := range cases {
		errs := c.f.validate(c.kernelCache)
		got := errors.Join(errs...)
		switch {
		case c.want == "" && got != nil:
			t.Errorf("%+v: %v, want valid", c.f, got)
		case c.want != "" && (got == nil || !strings.Contains(got.Error(), c.want)):
			t.Errorf("%+v: %v, want an error containing %q", c.f, got, c.want)
		}
	}
}

func TestHookEnvDropsCredentialsAndNamesTheChange(t *testing.T) {
	env := hookEnv([]string{"PATH=/bin", "AWS_SECRET_ACCESS_KEY=k", "AWS_ACCESS_KEY_ID=i", "AWS_SESSION_TOKEN=t", "AWS_REGION=r", "SECRETSFS_LOG_LEVEL=debug"},
		[]string{"/mnt/a/password"}, &changedFile{path: "/mnt/a/password", secretID: "a", stage: "AWSCURRENT", versionID: "v2"})
	want := []string{"PATH=/bin", "SECRETSFS_PATHS=/mnt/a/password", "SECRETSFS_PATH=/mnt/a/password", "SECRETSFS_SECRET_ID=a", "SECRETSFS_STAGE=AWSCURRENT", "SECRETSFS_VERSION_ID=v2"}
	if !slices.Equal(env, want) {
		t.Fatalf("env = %q, want %q", env, want)
	}
}

func TestHookEnvNamesEveryChangedFile(t *testing.T) {
	env := hookEnv([]string{"PATH=/bin"}, []string{"/mnt/a/AWSCURRENT", "/mnt/a/password", "/mnt/b/AWSCURRENT"}, nil)
	want := []string{"PATH=/bin", "SECRETSFS_PATHS=/mnt/a/AWSCURRENT\n/mnt/a/password\n/mnt/b/AWSCURRENT"}
	if !slices.Equal(env, want) {
		t.Fatalf("env = %q, want %q: several files, no single-file variables", env, want)
	}
	// Too many to pass: as many as fit, and a mark.
	var many []string
	for i := range 2000 {
		many = append(many, fmt.Sprintf("/mnt/big/%s-%04d", strings.Repeat("k", 60), i))
	}
	env = hookEnv(nil, many, nil)
	paths, _ := strings.CutPrefix(env[0], "SECRETSFS_PATHS=")
	if n := len(paths); n > maxPathsEnv || n < maxPathsEnv-100 {
		t.Errorf("SECRETSFS_PATHS of 2000 long paths is %d bytes, want just under %d", n, maxPathsEnv)
	}
	if len(env) != 2 || env[1] != "SECRETSFS_PATHS_TRUNCATED=1" || strings.HasSuffix(paths, "\n") {
		t.Errorf("a truncated list: %q ... %q", paths[len(paths)-80:], env[1:])
	}
}

// TestDefect9_12_HookEnvironmentIsAnAllowList: the hook gets the daemon's
// locale, identity and search path, and nothing else of its environment:
// no credential of any of the SDK's providers, whatever its name.
func TestDefect9_12_HookEnvironmentIsAnAllowList(t *testing.T) {
	kept := []string{"PATH=/usr/bin:/bin", "HOME=/root", "LANG=C.UTF-8", "LANGUAGE=en", "LC_ALL=C", "LC_TIME=de_DE.UTF-8",
		"TZ=UTC", "USER=root", "LOGNAME=root", "SHELL=/bin/sh", "TERM=xterm", "TMPDIR=/tmp"}
	dropped := []string{
		"AWS_ACCESS_KEY_ID=i", "AWS_SECRET_ACCESS_KEY=k", "AWS_SESSION_TOKEN=t", "AWS_SECURITY_TOKEN=s",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN=ecs-token", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=/run/token",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI=http://169.254.170.23/v1/credentials",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/x",
		"AWS_WEB_IDENTITY_TOKEN_FILE=/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
		"AWS_ROLE_ARN=arn:aws:iam::123456789012:role/app", "AWS_PROFILE=prod", "AWS_REGION=eu-west-1",
		"VAULT_TOKEN=hvs.x", "GITHUB_TOKEN=ghp_x", "DATABASE_PASSWORD=pw", "NOTIFY_SOCKET=/run/systemd/notify",
		"SECRETSFS_LOG_LEVEL=debug", "SECRETSFS_PATH=/forged", "LC_=x", "MALFORMED",
	}
	env := hookEnv(append(slices.Clone(dropped), kept...), []string{"/mnt/a/password"},
		&changedFile{path: "/mnt/a/password", secretID: "a", stage: "AWSCURRENT", versionID: "v2"})
	want := append(slices.Clone(kept), "SECRETSFS_PATHS=/mnt/a/password", "SECRETSFS_PATH=/mnt/a/password", "SECRETSFS_SECRET_ID=a", "SECRETSFS_STAGE=AWSCURRENT", "SECRETSFS_VERSION_ID=v2")
	if !slices.Equal(env, want) {
		t.Fatalf("env =\n%q\nwant\n%q", env, want)
	}
}

func TestProcessOfMapsAThreadToItsProcess(t *testing.T) {
	proc := t.TempDir()
	os.MkdirAll(filepath.Join(proc, "101"), 0o755)
	os.MkdirAll(filepath.Join(proc, "100"), 0o755)
	os.WriteFile(filepath.Join(proc, "101", "status"), []byte("Name:\tapp\nUmask:\t0022\nState:\tS\nTgid:\t100\nPid:\t101\n"), 0o644)
	os.Symlink("/usr/bin/app", filepath.Join(proc, "100", "exe"))
	if pid, exe := processOf(proc, 101); pid != 100 || exe != "/usr/bin/app" {
		t.Fatalf("processOf(101) = %d %q, want 100 /usr/bin/app", pid, exe)
	}
	if pid, exe := processOf(proc, 0); pid != 0 || exe != "" {
		t.Fatalf("processOf(0) = %d %q", pid, exe)
	}
	if pid, _ := processOf(proc, 999); pid != 0 {
		t.Fatalf("processOf of a gone thread = %d", pid)
	}
	// This very thread, through the real /proc.
	if pid, exe := processOf("/proc", uint32(syscall.Gettid())); pid != os.Getpid() || exe == "" {
		t.Fatalf("processOf(self) = %d %q, want %d", pid, exe, os.Getpid())
	}
}

func TestApplyHygiene(t *testing.T) {
	cases := []struct {
		name       string
		h          hygieneCalls
		noMlock    bool
		wantLocked bool // mlockall was called
		wantLog    string
		memLocked  bool // and succeeded
	}{
		{"locks", hygieneCalls{}, false, true, "", true},
		{"--no-mlock", hygieneCalls{}, true, false, "--no-mlock", false},
		{"race detector", hygieneCalls{raceDetector: true}, false, false, "race detector", false},
		{"not permitted", hygieneCalls{mlockall: func() error { return syscall.EPERM }}, false, true, "CAP_IPC_LOCK", false},
	}
	for _, c := range cases {
		var locked, undumpable bool
		h := c.h
		if h.mlockall == nil {
			h.mlockall = func() error { return nil }
		}
		lock := h.mlockall
		h.mlockall = func() error { locked = true; return lock() }
		h.disableDumping = func() error { undumpable = true; return nil }
		var buf bytes.Buffer
		got := applyHygiene(h, c.noMlock, slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
		if locked != c.wantLocked || !undumpable || !strings.Contains(buf.String(), c.wantLog) || got.memoryLocked != c.memLocked {
			t.Errorf("%s: locked %v (want %v), undumpable %v, log %q (want %q), reported locked %v (want %v)",
				c.name, locked, c.wantLocked, undumpable, buf.String(), c.wantLog, got.memoryLocked, c.memLocked)
		}
	}
}

// fakeClockCache builds a cache over a fake client and clock, with
// background refresh off unless a tweak turns it on.
func fakeClockCache(t *testing.T, tweaks ...func(*cache.Config)) (*cache.Cache, *cachetest.Client, *cachetest.Clock) {
	t.Helper()
	client := cachetest.NewClient()
	clock := cachetest.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	cfg := cache.DefaultConfig()
	cfg.RefreshAhead = 0
	cfg.Clock = clock
	cfg.SecretRefreshInterval = time.Minute
	cfg.ExceptionRetryDelayMax = time.Second
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	c, err := cache.New(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, client, clock
}

func TestMaxStaleAndHealth(t *testing.T) {
	c, client, clock := fakeClockCache(t)
	client.PutString("db", "v1")
	st := store{c: c, maxStale: 10 * time.Minute, clock: clock}
	h := &health{c: c, maxStale: 10 * time.Minute, now: clock.Now}
	h.mounted.Store(true)
	ctx := context.Background()
	if v, err := st.Value(ctx, "db", ""); err != nil || string(v.Data) != "v1" {
		t.Fatalf("read = %q, %v", v.Data, err)
	}
	st.Value(ctx, "missing", "")
	if r := h.check(); !r.Healthy || r.Secrets != 2 {
		t.Fatalf("health = %+v, want healthy with 2 secrets checked (a missing one counts as fine)", r)
	}
	client.FailAlways(cache.OpDescribeSecret, &smithy.GenericAPIError{Code: "ThrottlingException"})
	clock.Advance(5 * time.Minute)
	if v, err := st.Value(ctx, "db", ""); err != nil || !v.Stale {
		t.Fatalf("5 minutes stale: %v stale=%v, want the value", err, v.Stale)
	}
	if r := h.check(); !r.Healthy {
		t.Fatalf("health while stale within --max-stale = %+v", r)
	}
	clock.Advance(6 * time.Minute)
	if _, err := st.Value(ctx, "db", ""); !errors.Is(err, cache.ErrUnavailable) {
		t.Fatalf("11 minutes stale: %v, want ErrUnavailable (EIO)", err)
	}
	if r := h.check(); r.Healthy || len(r.Unservable) != 1 || r.Unservable[0].SecretID != "db" {
		t.Fatalf("health beyond --max-stale = %+v", r)
	}
	client.FailAlways(cache.OpDescribeSecret, nil)
	clock.Advance(2 * time.Second)
	if v, err := st.Value(ctx, "db", ""); err != nil || v.Stale {
		t.Fatalf("after recovery: %v stale=%v", err, v.Stale)
	}
	if r := h.check(); !r.Healthy {
		t.Fatalf("health after recovery = %+v", r)
	}
	h.mounted.Store(false)
	if h.check().Healthy {
		t.Fatal("healthy while not mounted")
	}
}

// One transient error on a name that was only looked up (described, never
// read) must not fail /healthz; a secret that was read and failed is retried
// in the background with the backoff, so health comes back without a
// reader.
func TestDefect9_07_TransientErrorOnALookedUpNameKeepsHealthy(t *testing.T) {
	c, client, clock := fakeClockCache(t, func(cfg *cache.Config) {
		cfg.RefreshAhead = time.Minute
		cfg.ExceptionRetryDelayMax = time.Hour
	})
	h := &health{c: c, now: clock.Now}
	h.mounted.Store(true)
	ctx := context.Background()
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException"}

	client.PutString("new/secret", "v1")
	client.FailNext(cache.OpDescribeSecret, 1, throttled)
	if _, err := describeThroughCache(c)(ctx, "new/secret"); err == nil {
		t.Fatal("the lookup did not fail; the test proves nothing")
	}
	if _, err := describeThroughCache(c)(ctx, "typo/secret"); !errors.Is(err, cache.ErrNotFound) {
		t.Fatalf("lookup of a typo = %v, want not found", err)
	}
	if r := h.check(); !r.Healthy || r.Secrets != 0 {
		t.Fatalf("health after failed lookups = %+v, want healthy with nothing read", r)
	}

	// A read secret that fails counts, until a background retry succeeds.
	client.PutString("db", "v1")
	client.FailNext(cache.OpDescribeSecret, 2, throttled)
	st := store{c: c, clock: clock}
	if _, err := st.Value(ctx, "db", ""); err == nil {
		t.Fatal("the read did not fail; the test proves nothing")
	}
	if r := h.check(); r.Healthy || len(r.Unservable) != 1 || r.Unservable[0].SecretID != "db" {
		t.Fatalf("health after a failed read = %+v, want db unservable", r)
	}
	for _, wait := range []time.Duration{time.Second, 2 * time.Second} {
		testutil.Eventually(t, 10*time.Second, "a background retry to be scheduled", func() bool { return clock.Waiters() > 0 })
		clock.Advance(wait)
	}
	testutil.Eventually(t, 10*time.Second, "health to come back without a reader", func() bool { return h.check().Healthy })
	if r := h.check(); r.Secrets != 1 {
		t.Fatalf("health = %+v, want only the read secret checked", r)
	}
}

func TestChangedFilesComparesBytes(t *testing.T) {
	c, client, clock := fakeClockCache(t)
	v1 := client.PutString("db", `{"user":"app","password":"p1","gone":"x"}`)
	r := &changeRunner{c: c, defaultStage: "AWSCURRENT", ctx: context.Background(), log: slog.New(slog.DiscardHandler)}
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
	w := &mappedWatch{render: func(context.Context) (sfs.Value, error) { return sfs.Value{Data: []byte(content)}, nil }}
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

// TestDefect9_15_PidFileMustBeOwnedByRootOrTheDaemon: the daemon (often
// root) signals the pid a pid file names; a pid file that another user owns
// or that group or others may write lets them have any process signalled.
// Such a pid file is refused with an error naming it and the fix.
func TestDefect9_15_PidFileMustBeOwnedByRootOrTheDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a pid file to another user")
	}
	// A process that is not hurt by SIGCONT.
	target := exec.Command("sleep", "60")
	if err := target.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { target.Process.Kill(); target.Wait() })
	for _, c := range []struct {
		name string
		mode os.FileMode
		uid  int
		want []string // "" parts of the error; none: accepted
	}{
		{"root-0644", 0o644, 0, nil},
		{"root-0600", 0o600, 0, nil},
		{"user-0644", 0o644, 1000, []string{"is owned by uid 1000", "chown root"}},
		{"root-0666", 0o666, 0, []string{"writable by group or others", "mode 0666", "chmod go-w"}},
		{"root-0620", 0o620, 0, []string{"writable by group or others", "chmod go-w"}},
	} {
		p := testutil.WritePIDFile(t, target.Process.Pid, c.mode, c.uid)
		err := signalPIDFile("CONT", p)
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s: %v, want the signal sent", c.name, err)
		case c.want != nil && err == nil:
			t.Errorf("%s: the signal was sent, want the pid file refused", c.name)
		case c.want != nil:
			for _, part := range append(c.want, p) {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("%s: error %q does not contain %q", c.name, err, part)
				}
			}
		}
	}
}

// TestTrustedPIDFileAcceptsTheDaemonsUser: a daemon that does not run as
// root may signal through a pid file of its own user, not another's.
func TestTrustedPIDFileAcceptsTheDaemonsUser(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pid")
	if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(p, 1000, -1); err != nil {
			t.Fatal(err)
		}
	}
	fi := mustStat(t, p)
	owner := int(fi.Sys().(*syscall.Stat_t).Uid)
	if err := trustedPIDFile(p, fi, owner); err != nil {
		t.Errorf("the daemon's own pid file refused: %v", err)
	}
	if err := trustedPIDFile(p, fi, owner+1); err == nil || !strings.Contains(err.Error(), "is owned by uid") {
		t.Errorf("another user's pid file: %v, want it refused", err)
	}
	if err := trustedPIDFile(filepath.Dir(p), mustStat(t, filepath.Dir(p)), owner); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory as pid file: %v, want it refused", err)
	}
}

func mustStat(t *testing.T, p string) os.FileInfo {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func TestChangeHookDescribeShowsNoArguments(t *testing.T) {
	for _, c := range []struct {
		h    ChangeHook
		want string
	}{
		{ChangeHook{Command: []string{"/usr/bin/systemctl", "reload", "app"}}, "command /usr/bin/systemctl"},
		{ChangeHook{Command: []string{"TOKEN=abc curl -X POST http://x"}, Shell: true}, "shell command curl"},
		{ChangeHook{Command: []string{"A=1 B=2"}, Shell: true}, "shell command"},
		{ChangeHook{Signal: "HUP", PIDFile: "/run/app.pid"}, "signal HUP to the pid in /run/app.pid"},
	} {
		if got := c.h.describe(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.h, got, c.want)
		}
	}
}
