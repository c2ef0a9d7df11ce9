// Package e2e runs the built secretsfs binary as a separate process against
// the Secrets Manager emulator and checks what programs see through real
// mounts.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/secretsfs/secretsfs/cache"
	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/testutil"
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
	testutil.RequireFUSE(t)
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
	}, cache.BufferRequestBodies)
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
	*testutil.Daemon
	mnt string
}

// startDaemon runs `secretsfs mount` on a new mount point with the given
// flags, waits until it is mounted and serving, and stops it with SIGTERM
// when the test ends, checking that it exits 0 and leaves no mount.
func (w *world) startDaemon(flags ...string) *daemon {
	w.t.Helper()
	return w.startDaemonAt(w.t.TempDir(), nil, flags...)
}

func (w *world) startDaemonAt(mnt string, env []string, flags ...string) *daemon {
	w.t.Helper()
	argv := append([]string{binary, "mount", "--endpoint-url", w.srv.URL(), "--log-level", "debug"}, flags...)
	argv = append(argv, mnt)
	serving := func(d *testutil.Daemon) bool { return strings.Contains(d.Stdout.String(), "serving") }
	return &daemon{Daemon: testutil.StartDaemon(w.t, "secretsfs", mnt, argv, testutil.FakeAWSEnv(env...), serving), mnt: mnt}
}

// path returns a path inside the mount.
func (d *daemon) path(rel string) string { return filepath.Join(d.mnt, rel) }

// mounted reports whether a secretsfs filesystem is mounted on dir.
func mounted(dir string) bool { return testutil.MountType(dir) == "fuse.secretsfs" }

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, within, what, cond)
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
