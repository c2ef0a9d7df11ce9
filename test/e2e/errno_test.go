package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsfs/secretsfs/test/emulator"
)

// TestErrnoTable checks each row of DESIGN.md's table of errors a reader
// sees, and that one secret failing leaves the others working.
func TestErrnoTable(t *testing.T) {
	w := newWorld(t)
	w.createString("err/ok", `{"k":"v"}`)
	w.createString("err/deleted", "soon gone")
	w.createString("err/denied", "no access")
	w.createString("err/kms", "no key")
	w.createString("err/down", "unreachable")
	w.createString("err/slow", "slow")
	d := w.startDaemon("--refresh-interval", "1s")
	mustRead(t, d.path("err/deleted/AWSCURRENT"))

	w.emu.InjectFault(emulator.AllOperations, emulator.Fault{ErrorType: "AccessDeniedException", SecretID: "err/denied"})
	w.emu.InjectFault(emulator.OpGetSecretValue, emulator.Fault{ErrorType: "DecryptionFailure", SecretID: "err/kms"})
	w.emu.InjectFault(emulator.AllOperations, emulator.Fault{ErrorType: "InternalServiceError", SecretID: "err/down"})
	if _, err := w.sm.DeleteSecret(w.ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("err/deleted"), RecoveryWindowInDays: aws.Int64(7)}); err != nil {
		t.Fatal(err)
	}

	rows := []struct {
		what string
		path string
		want syscall.Errno
	}{
		{"secret does not exist", "err/none/AWSCURRENT", syscall.ENOENT},
		{"stage does not exist", "err/ok/AWSPENDING", syscall.ENOENT},
		{"JSON key does not exist", "err/ok/nokey", syscall.ENOENT},
		{"access denied", "err/denied/AWSCURRENT", syscall.EACCES},
		{"KMS decryption not allowed", "err/kms/AWSCURRENT", syscall.EACCES},
		{"no value cached and the service fails", "err/down/AWSCURRENT", syscall.EIO},
	}
	for _, r := range rows {
		if _, err := read(d.path(r.path)); errnoOf(err) != r.want {
			t.Errorf("%s (%s): %v, want %v", r.what, r.path, err, r.want)
		}
	}
	eventually(t, 10*time.Second, "ENOENT for a secret scheduled for deletion", func() bool {
		_, err := read(d.path("err/deleted/AWSCURRENT"))
		return errnoOf(err) == syscall.ENOENT
	})
	if got := mustRead(t, d.path("err/ok/k")); got != "v" {
		t.Errorf("a healthy secret beside the failing ones reads %q", got)
	}

	// Writes of every kind: EROFS.
	writes := map[string]func() error{
		"open for writing": func() error {
			f, err := os.OpenFile(d.path("err/ok/k"), os.O_WRONLY, 0)
			if err == nil {
				f.Close()
			}
			return err
		},
		"create": func() error { return os.WriteFile(d.path("err/ok/new"), []byte("x"), 0o600) },
		"mkdir":  func() error { return os.Mkdir(d.path("err/newdir"), 0o700) },
		"rename": func() error { return os.Rename(d.path("err/ok/k"), d.path("err/ok/k2")) },
		"chmod":  func() error { return os.Chmod(d.path("err/ok/k"), 0o644) },
		"unlink": func() error { return os.Remove(d.path("err/ok/k")) },
		"setxattr": func() error {
			return syscall.Setxattr(d.path("err/ok/k"), "user.x", []byte("y"), 0)
		},
		"setxattr of a secretsfs attribute": func() error {
			return syscall.Setxattr(d.path("err/ok/k"), "user.secretsfs.version_id", []byte("y"), 0)
		},
		"removexattr": func() error { return syscall.Removexattr(d.path("err/ok/k"), "user.secretsfs.stale") },
		"truncate":    func() error { return os.Truncate(d.path("err/ok/k"), 0) },
		"chown":       func() error { return os.Chown(d.path("err/ok/k"), 1, 1) },
		"utimes":      func() error { return os.Chtimes(d.path("err/ok/k"), time.Unix(1, 0), time.Unix(1, 0)) },
		"link":        func() error { return os.Link(d.path("err/ok/k"), d.path("err/ok/k3")) },
		"symlink":     func() error { return os.Symlink("k", d.path("err/ok/k4")) },
		"mknod":       func() error { return syscall.Mknod(d.path("err/ok/fifo"), syscall.S_IFIFO|0o600, 0) },
		"rmdir":       func() error { return syscall.Rmdir(d.path("err/ok")) },
		"access W_OK": func() error { return syscall.Access(d.path("err/ok/k"), 2) },
	}
	for what, op := range writes {
		if err := op(); errnoOf(err) != syscall.EROFS {
			t.Errorf("%s: %v, want EROFS", what, err)
		}
	}

	// The caller's request interrupted: EINTR. The reader is a child
	// process so that the signal interrupts it, not this test.
	w.emu.InjectFault(emulator.OpGetSecretValue, emulator.Fault{Latency: time.Minute, SecretID: "err/slow"})
	// Counted before the child starts: its read may reach the emulator
	// before this test reads "ready" (no DescribeSecret comes first now that
	// the listing gave the stages).
	before := w.emu.Calls(emulator.OpGetSecretValue)
	cmd := childCmd("interruptible " + d.path("err/slow/AWSCURRENT"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	lines := bufio.NewScanner(stdout)
	var tid int
	if !lines.Scan() {
		cmd.Process.Kill()
		t.Fatal("the child printed nothing")
	}
	if _, err := fmt.Sscanf(lines.Text(), "ready %d", &tid); err != nil {
		cmd.Process.Kill()
		t.Fatalf("child: %q", lines.Text())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := w.emu.WaitForCalls(ctx, emulator.OpGetSecretValue, before+1); err != nil {
		cmd.Process.Kill()
		t.Fatalf("the daemon never asked for the slow secret: %v", err)
	}
	// That call may be a background refresh of the secret (what the
	// kernel holds is kept refreshed): signal the reader only once it
	// waits in its open or read, else the signal finds it running.
	eventually(t, 20*time.Second, "the reader to wait in open or read", func() bool {
		return blockedIn(cmd.Process.Pid, tid, unix.SYS_OPENAT, unix.SYS_READ)
	})
	start := time.Now()
	if err := syscall.Tgkill(cmd.Process.Pid, tid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if !lines.Scan() {
		t.Fatal("the child printed nothing after the signal")
	}
	if got := parseChild(t, lines.Text()); got != syscall.EINTR {
		t.Errorf("interrupted read: %v, want EINTR", got)
	}
	// The daemon answers the interrupt at once; its fetch goes on detached
	// (and would end with EIO, not EINTR, when it times out).
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the interrupted read took %v to return", took)
	}
}

// blockedIn reports whether thread tid of process pid is blocked in one of
// the system calls nrs (/proc/PID/task/TID/syscall: the number first, or
// "running").
func blockedIn(pid, tid int, nrs ...int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/syscall", pid, tid))
	if err != nil {
		return false
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return false
	}
	nr, err := strconv.Atoi(f[0])
	return err == nil && slices.Contains(nrs, nr)
}
