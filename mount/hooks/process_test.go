package hooks

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/secretsfs/secretsfs/mount/mapping"
	"github.com/secretsfs/secretsfs/test/testutil"
)

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

func TestDescribeShowsNoArguments(t *testing.T) {
	for _, c := range []struct {
		h    mapping.OnChange
		want string
	}{
		{mapping.OnChange{Command: []string{"/usr/bin/systemctl", "reload", "app"}}, "command /usr/bin/systemctl"},
		{mapping.OnChange{Command: []string{"TOKEN=abc curl -X POST http://x"}, Shell: true}, "shell command curl"},
		{mapping.OnChange{Command: []string{"A=1 B=2"}, Shell: true}, "shell command"},
		{mapping.OnChange{Signal: "HUP", PIDFile: "/run/app.pid"}, "signal HUP to the pid in /run/app.pid"},
	} {
		if got := describe(&c.h); got != c.want {
			t.Errorf("%+v: %q, want %q", c.h, got, c.want)
		}
	}
}
