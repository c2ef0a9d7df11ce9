package hooks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/secretsfs/secretsfs/mount/mapping"
)

// describe names a hook in logs: the program, or the signal and pid file;
// never the rest of a command line, nor a shell command's leading
// VAR=value words, which may carry a credential.
func describe(h *mapping.OnChange) string {
	if h.Signal != "" {
		return fmt.Sprintf("signal %s to the pid in %s", h.Signal, h.PIDFile)
	}
	if len(h.Command) == 0 {
		return "command"
	}
	if !h.Shell {
		return "command " + h.Command[0]
	}
	for _, word := range strings.Fields(h.Command[0]) {
		if !strings.Contains(word, "=") {
			return "shell command " + word
		}
	}
	return "shell command"
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
