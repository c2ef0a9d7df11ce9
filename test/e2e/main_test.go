// Package e2e runs the built secretsfs binary as a separate process against
// the Secrets Manager emulator and checks what programs see through real
// mounts.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsfs/secretsfs/test/emulator"
)

// Set once by TestMain: the secretsfs binary it built, a copy of this test
// binary that other users may run, and a directory they may enter.
var binary, testBinary, publicDir string

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o755)
}

// publicMountPoint returns a new empty directory that other users can reach.
func publicMountPoint(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp(publicDir, "mnt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	return dir
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(childModeEnv); mode != "" {
		os.Exit(childMain(mode))
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "secretsfs-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go env GOMOD:", err)
		return 1
	}
	// Other users run the test binary as a reader child and reach mount
	// points below this directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testBinary = filepath.Join(dir, "e2e.test")
	if err := copyFile(os.Args[0], testBinary); err != nil {
		fmt.Fprintln(os.Stderr, "copying the test binary:", err)
		return 1
	}
	publicDir = dir
	binary = filepath.Join(dir, "secretsfs")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	build.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building secretsfs: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// requireFUSE skips a test without /dev/fuse, unless CI asks for FUSE.
func requireFUSE(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		if os.Getenv("SECRETSFS_TEST_REQUIRE_FUSE") != "" {
			t.Fatalf("FUSE is required (SECRETSFS_TEST_REQUIRE_FUSE is set) but /dev/fuse is missing: %v", err)
		}
		t.Skip("no /dev/fuse")
	}
}

// world is one emulator and an SDK client for it.
type world struct {
	t   *testing.T
	srv *emulator.Server
	emu *emulator.Emulator
	sm  *secretsmanager.Client
	ctx context.Context
}

func newWorld(t *testing.T) *world {
	t.Helper()
	requireFUSE(t)
	emu := emulator.New()
	srv, err := emulator.Start(emu, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithSharedConfigFiles(nil), config.WithSharedCredentialsFiles(nil),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", "")))
	if err != nil {
		t.Fatal(err)
	}
	sm := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		o.BaseEndpoint = aws.String(srv.URL())
		o.Retryer = aws.NopRetryer{}
	})
	return &world{t: t, srv: srv, emu: emu, sm: sm, ctx: context.Background()}
}

func (w *world) createString(name, value string) string {
	w.t.Helper()
	out, err := w.sm.CreateSecret(w.ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	if err != nil {
		w.t.Fatalf("create %s: %v", name, err)
	}
	return aws.ToString(out.VersionId)
}

func (w *world) createBinary(name string, value []byte) {
	w.t.Helper()
	if _, err := w.sm.CreateSecret(w.ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretBinary: value}); err != nil {
		w.t.Fatalf("create %s: %v", name, err)
	}
}

func (w *world) put(name, value string) string {
	w.t.Helper()
	out, err := w.sm.PutSecretValue(w.ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(value)})
	if err != nil {
		w.t.Fatalf("put %s: %v", name, err)
	}
	return aws.ToString(out.VersionId)
}

// daemon is a running `secretsfs mount`.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	mnt    string
	stdout *syncBuffer
	stderr *syncBuffer
	exited chan struct{}
	err    error // the process's exit error, once exited is closed
}

// syncBuffer is a bytes.Buffer safe for a writer and readers at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// daemonEnv is the environment of a daemon: static fake credentials and no
// shared AWS configuration.
func daemonEnv(extra ...string) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"AWS_ACCESS_KEY_ID=AKIDTEST",
		"AWS_SECRET_ACCESS_KEY=SECRETTEST",
		"AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
	}
	return append(env, extra...)
}

// startDaemon runs `secretsfs mount` on a new mount point with the given
// flags, waits until it is mounted and serving, and stops it with SIGTERM
// when the test ends, checking that it exits 0 and leaves no mount.
func (w *world) startDaemon(flags ...string) *daemon {
	w.t.Helper()
	return w.startDaemonAt(w.t.TempDir(), nil, flags...)
}

func (w *world) startDaemonAt(mnt string, env []string, flags ...string) *daemon {
	t := w.t
	t.Helper()
	args := append([]string{"mount", "--endpoint-url", w.srv.URL(), "--log-level", "debug"}, flags...)
	args = append(args, mnt)
	d := &daemon{t: t, mnt: mnt, stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	d.cmd = exec.Command(binary, args...)
	d.cmd.Env = daemonEnv(env...)
	d.cmd.Stdout = d.stdout
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(d.stop)
	deadline := time.Now().Add(30 * time.Second)
	for !(mounted(mnt) && strings.Contains(d.stdout.String(), "serving")) {
		select {
		case <-d.exited:
			t.Fatalf("secretsfs exited before serving: %v\nstdout:\n%s\nstderr:\n%s", d.err, d.stdout, d.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("secretsfs did not serve within 30 s\nstdout:\n%s\nstderr:\n%s", d.stdout, d.stderr)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return d
}

// stop sends SIGTERM and checks a clean exit: status 0, nothing mounted.
func (d *daemon) stop() {
	t := d.t
	select {
	case <-d.exited:
	default:
		d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
			if d.err != nil {
				t.Errorf("secretsfs exited with %v after SIGTERM\nstderr:\n%s", d.err, d.stderr)
			}
		case <-time.After(20 * time.Second):
			d.cmd.Process.Kill()
			<-d.exited
			t.Errorf("secretsfs did not exit within 20 s of SIGTERM\nstderr:\n%s", d.stderr)
		}
	}
	if mounted(d.mnt) {
		t.Errorf("%s is still mounted after the daemon stopped", d.mnt)
		syscall.Unmount(d.mnt, syscall.MNT_DETACH)
	}
}

// kill9 kills the daemon without letting it unmount.
func (d *daemon) kill9() {
	d.cmd.Process.Kill()
	<-d.exited
}

// path returns a path inside the mount.
func (d *daemon) path(rel string) string { return filepath.Join(d.mnt, rel) }

// mounted reports whether dir is a mount point of a secretsfs filesystem.
func mounted(dir string) bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || unescapeMount(f[4]) != dir {
			continue
		}
		for i, x := range f {
			if x == "-" && i+1 < len(f) && f[i+1] == "fuse.secretsfs" {
				return true
			}
		}
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// read returns a file's content, or "" and the error.
func read(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	s, err := read(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return s
}

// errnoOf extracts the errno from an error of a file operation.
func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return 0
}
