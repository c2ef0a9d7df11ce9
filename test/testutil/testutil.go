// Package testutil holds what the project's tests share to run filesystem
// daemons as separate processes: FUSE availability, readiness by
// /proc/self/mountinfo, polling with a deadline, and a clean stop by pid
// that checks nothing stays mounted.
package testutil

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// RequireFUSE skips a test that cannot mount (no /dev/fuse, or neither root
// nor fusermount3), or fails it when SECRETSFS_TEST_REQUIRE_FUSE is set (as
// CI does).
func RequireFUSE(tb testing.TB) {
	tb.Helper()
	why := ""
	if _, err := os.Stat("/dev/fuse"); err != nil {
		why = "no /dev/fuse"
	} else if _, err := exec.LookPath("fusermount3"); err != nil && os.Geteuid() != 0 {
		why = "neither root nor fusermount3 (Debian package fuse3)"
	}
	if why == "" {
		return
	}
	if os.Getenv("SECRETSFS_TEST_REQUIRE_FUSE") != "" {
		tb.Fatalf("FUSE is required (SECRETSFS_TEST_REQUIRE_FUSE is set) but cannot mount: %s", why)
	}
	tb.Skipf("FUSE unavailable: %s", why)
}

// Eventually polls cond until it holds, failing the test after within.
func Eventually(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// SyncBuffer is a bytes.Buffer safe for one writer and readers at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// MountType returns the filesystem type mounted on dir (e.g.
// "fuse.secretsfs"), or "" when dir is not a mount point.
func MountType(dir string) string {
	f := mountinfo(dir)
	for i, x := range f {
		// The type follows "-".
		if x == "-" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// MountOptions returns the options of the mount on dir as /proc/mounts
// shows them (e.g. "ro", "nosuid", "nodev", "relatime"; "ro" when either
// the mount or its filesystem is read-only), or nil when dir is not a
// mount point.
func MountOptions(dir string) []string {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		// Source, mount point (octal-escaped), type, options, 0, 0.
		if f := strings.Fields(line); len(f) >= 4 && unescape(f[1]) == dir {
			return strings.Split(f[3], ",")
		}
	}
	return nil
}

// mountinfo returns the fields of the /proc/self/mountinfo line of the
// mount on dir, or nil.
func mountinfo(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		// Field 5 is the mount point, octal-escaped.
		f := strings.Fields(sc.Text())
		if len(f) >= 10 && unescape(f[4]) == dir {
			return f
		}
	}
	return nil
}

// MountID returns the id of the mount on top of dir in this process's
// mountinfo (the last one listed there), or "" when dir is not a mount
// point: a remount or a replaced mount has a new id.
func MountID(dir string) string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	id := ""
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 5 && unescape(f[4]) == dir {
			id = f[0]
		}
	}
	return id
}

// MountsOfFS returns how many mounts this process's mountinfo lists of
// the filesystem mounted on dir (those with its device number, MAJ:MIN,
// bind mounts included), or 0 when dir is not a mount point.
func MountsOfFS(dir string) int {
	f := mountinfo(dir)
	if f == nil {
		return 0
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		// Field 3 is the device number.
		if g := strings.Fields(line); len(g) >= 10 && g[2] == f[2] {
			n++
		}
	}
	return n
}

func unescape(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// FakeAWSEnv is a daemon's environment: this process's without AWS or
// secretsfs settings, plus static fake credentials, a region, and no shared
// AWS configuration or instance metadata.
func FakeAWSEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "SECRETSFS_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"AWS_ACCESS_KEY_ID=AKIDTEST",
		"AWS_SECRET_ACCESS_KEY=SECRETTEST",
		"AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
	)
	return append(env, extra...)
}

// Daemon is a filesystem server running as a separate process.
type Daemon struct {
	Name   string
	Mnt    string
	Cmd    *exec.Cmd
	Stdout *SyncBuffer
	Stderr *SyncBuffer
	exited chan struct{}
	err    error // the exit error, once exited is closed
}

// StartDaemon runs argv with env, waits until mnt is mounted (unless mnt
// is "": a server of no mount of its own, such as the CSI driver) and
// ready (if given) holds, and registers a cleanup that stops it with Stop.
func StartDaemon(tb testing.TB, name, mnt string, argv, env []string, ready func(*Daemon) bool) *Daemon {
	tb.Helper()
	return startDaemon(tb, name, mnt, argv, env, nil, ready)
}

// StartDaemonOutput is StartDaemon with the process's stdout and stderr
// both given to out (e.g. the write end of a pipe the test controls);
// Stdout and Stderr then stay empty.
func StartDaemonOutput(tb testing.TB, name, mnt string, argv, env []string, out *os.File, ready func(*Daemon) bool) *Daemon {
	tb.Helper()
	return startDaemon(tb, name, mnt, argv, env, out, ready)
}

func startDaemon(tb testing.TB, name, mnt string, argv, env []string, out *os.File, ready func(*Daemon) bool) *Daemon {
	tb.Helper()
	d := &Daemon{Name: name, Mnt: mnt, Stdout: &SyncBuffer{}, Stderr: &SyncBuffer{}, exited: make(chan struct{})}
	d.Cmd = exec.Command(argv[0], argv[1:]...)
	d.Cmd.Env = env
	d.Cmd.Stdout = d.Stdout
	d.Cmd.Stderr = d.Stderr
	if out != nil {
		d.Cmd.Stdout, d.Cmd.Stderr = out, out
	}
	if err := d.Cmd.Start(); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	go func() {
		d.err = d.Cmd.Wait()
		close(d.exited)
	}()
	tb.Cleanup(func() { d.Stop(tb) })
	const wait = 30 * time.Second
	deadline := time.Now().Add(wait)
	for (mnt != "" && MountType(mnt) == "") || (ready != nil && !ready(d)) {
		select {
		case <-d.exited:
			tb.Fatalf("%s exited before serving: %v\nstdout:\n%s\nstderr:\n%s", name, d.err, d.Stdout, d.Stderr)
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not serve %s within %v\nstdout:\n%s\nstderr:\n%s", name, mnt, wait, d.Stdout, d.Stderr)
		}
	}
	return d
}

// Exited is closed once the process has exited.
func (d *Daemon) Exited() <-chan struct{} { return d.exited }

// ExitErr is the process's exit error; valid once Exited is closed.
func (d *Daemon) ExitErr() error { return d.err }

// Kill9 kills the process without letting it unmount, and waits for it.
func (d *Daemon) Kill9() {
	d.Cmd.Process.Kill()
	<-d.exited
}

// Stop sends SIGTERM unless the process already exited, checks that it
// exits with status 0 within 20 s, and that nothing stays mounted on Mnt
// (a leftover mount is detached and reported).
func (d *Daemon) Stop(tb testing.TB) {
	select {
	case <-d.exited:
	default:
		d.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
			if d.err != nil {
				tb.Errorf("%s exited with %v after SIGTERM\nstderr:\n%s", d.Name, d.err, d.Stderr)
			}
		case <-time.After(20 * time.Second):
			tb.Errorf("%s did not exit within 20 s of SIGTERM; killing pid %d\nstderr:\n%s", d.Name, d.Cmd.Process.Pid, d.Stderr)
			d.Kill9()
		}
	}
	if t := MountType(d.Mnt); d.Mnt != "" && t != "" {
		tb.Errorf("%s left %s mounted (%s); detaching it", d.Name, d.Mnt, t)
		if err := syscall.Unmount(d.Mnt, syscall.MNT_DETACH); err != nil {
			tb.Errorf("umount -l %s: %v", d.Mnt, err)
		}
	}
}

// Do sends an HTTP request and returns the answer's status and body,
// failing the test if there is no answer.
func Do(tb testing.TB, req *http.Request) (status int, body string) {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// FileHas reports whether a file exists and contains s.
func FileHas(path, s string) bool {
	data, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(data), s)
}

// ListDir returns a directory's entries in order, directories with a
// trailing "/", failing the test if it cannot be read.
func ListDir(tb testing.TB, dir string) []string {
	tb.Helper()
	out, err := ReadDirNames(dir)
	if err != nil {
		tb.Fatalf("ls %s: %v", dir, err)
	}
	return out
}

// ReadDirNames returns a directory's entries in order, directories with a
// trailing "/".
func ReadDirNames(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		out = append(out, n)
	}
	return out, nil
}

// ListXattr returns the names of a file's extended attributes, sorted,
// failing the test if they cannot be listed.
func ListXattr(tb testing.TB, path string) []string {
	tb.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Listxattr(path, buf)
	if err != nil {
		tb.Fatalf("listxattr %s: %v", path, err)
	}
	var names []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// WritePIDFile writes pid to a new pid file with the given mode and owner.
func WritePIDFile(tb testing.TB, pid int, mode os.FileMode, uid int) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "app.pid")
	if err := os.WriteFile(p, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chown(p, uid, -1); err != nil {
		tb.Fatal(err)
	}
	return p
}

// MountPoints returns the mount points, in /proc/self/mountinfo's order,
// whose filesystem type (e.g. "fuse.secretsfs") match accepts.
func MountPoints(match func(fsType string) bool) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		for i, x := range f {
			// The type follows "-"; field 5 is the mount point, octal-escaped.
			if x == "-" && i+1 < len(f) && len(f) >= 10 && match(f[i+1]) {
				out = append(out, unescape(f[4]))
				break
			}
		}
	}
	return out
}

// BuildBinaries builds packages of the module this test is in (paths
// relative to the module's root: "." is secretsfs) into dir, without the
// race detector, as a user would run them.
func BuildBinaries(tb testing.TB, dir string, pkgs ...string) {
	tb.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		tb.Fatalf("go env GOMOD: %v", err)
	}
	cmd := exec.Command("go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building %v: %v\n%s", pkgs, err, out)
	}
}

// OpenReadClose opens path read-only, reads once into buf and closes it,
// retrying calls interrupted by a signal, and returns the bytes read: one
// open+read+close as a program reading a small file makes it.
func OpenReadClose(path string, buf []byte) (int, error) {
	fd, err := retryEINTR(func() (int, error) { return syscall.Open(path, syscall.O_RDONLY, 0) })
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	n, err := retryEINTR(func() (int, error) { return syscall.Read(fd, buf) })
	if cerr := syscall.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", path, cerr)
	} else if err != nil {
		err = fmt.Errorf("read %s: %w", path, err)
	}
	return n, err
}

func retryEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if !errors.Is(err, syscall.EINTR) {
			return n, err
		}
	}
}

// Median is the median of durations (the mean of the middle two for an even
// count).
func Median(d []time.Duration) time.Duration {
	f := make([]float64, len(d))
	for i, x := range d {
		f[i] = float64(x)
	}
	return time.Duration(math.Round(MedianFloat(f)))
}

// MedianFloat is the median of numbers (the mean of the middle two for an
// even count).
func MedianFloat(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// BytesPerOp is the memory op allocates per call, on average over runs
// calls, after one call to warm up.
func BytesPerOp(runs int, op func()) float64 {
	op()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		op()
	}
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / float64(runs)
}

// LiveMemory is this process's live heap (HeapAlloc) and goroutine stacks
// (StackInuse) in bytes after full collections: the second frees what the
// first left to sync.Pools' victim caches.
func LiveMemory() (heap, stacks uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, m.StackInuse
}

// BindFile bind-mounts the file src onto target, a new empty file, as a
// container mounts a single file (a Kubernetes subPath), and returns
// target; the bind mount is unmounted when the test ends. It needs root.
func BindFile(tb testing.TB, src, target string) string {
	tb.Helper()
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Mount(src, target, "", syscall.MS_BIND, ""); err != nil {
		tb.Fatalf("bind mount of %s: %v", src, err)
	}
	tb.Cleanup(func() {
		if err := syscall.Unmount(target, 0); err != nil {
			tb.Errorf("unmount the bind mount %s: %v", target, err)
		}
	})
	return target
}

// MappingDoc is a mapping document (secretsfs's files: syntax) putting
// each secret at the path before it: MappingDoc("db", "app/db", ...).
func MappingDoc(pathSecret ...string) string {
	var b strings.Builder
	b.WriteString("files:\n")
	for i := 0; i+1 < len(pathSecret); i += 2 {
		fmt.Fprintf(&b, "  - path: %s\n    secret: %s\n", pathSecret[i], pathSecret[i+1])
	}
	return b.String()
}

// StartPiped starts cmd with a pipe to its stdin and its stdout read line by
// line, and stops it (by pid) when the test ends unless it was waited for.
func StartPiped(tb testing.TB, cmd *exec.Cmd) (io.WriteCloser, *bufio.Scanner) {
	tb.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("%s: %v", cmd.Path, err)
	}
	tb.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return stdin, bufio.NewScanner(stdout)
}
