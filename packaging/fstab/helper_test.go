package fstab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

// The test binary is also the fake daemon the helper starts: with
// FSTAB_TEST_DAEMON set it plays the daemon, as told.
func TestMain(m *testing.M) {
	if mode := os.Getenv("FSTAB_TEST_DAEMON"); mode != "" {
		os.Exit(fakeDaemon(mode))
	}
	os.Exit(m.Run())
}

// fakeDaemon records its pid, arguments and environment in
// $FSTAB_TEST_DIR, then: "ready" says READY=1 and serves until SIGTERM;
// "fail" prints an error and exits 1; "hang" never says READY=1; "child"
// has a child of its own say READY=1, then hangs.
func fakeDaemon(mode string) int {
	dir := os.Getenv("FSTAB_TEST_DIR")
	if mode != "send" {
		os.WriteFile(filepath.Join(dir, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o600)
		os.WriteFile(filepath.Join(dir, "args"), []byte(strings.Join(os.Args[1:], "\n")), 0o600)
		os.WriteFile(filepath.Join(dir, "environ"), []byte(strings.Join(os.Environ(), "\n")), 0o600)
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	hang := func() int {
		select {
		case <-term:
			os.WriteFile(filepath.Join(dir, "stopped"), nil, 0o600)
			return 0
		case <-time.After(time.Minute):
			return 3
		}
	}
	switch mode {
	case "ready":
		fmt.Fprintln(os.Stderr, "a warning before serving")
		if err := notify("READY=1"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "a line after serving, to nobody")
		return hang()
	case "fail":
		fmt.Fprintln(os.Stderr, "secretsfs: mount point /nowhere does not exist")
		return 1
	case "hang":
		return hang()
	case "child":
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "FSTAB_TEST_DAEMON=send")
		cmd.Run()
		return hang()
	case "send":
		if err := notify("READY=1"); err != nil {
			return 1
		}
		return 0
	}
	return 2
}

func notify(state string) error {
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: os.Getenv("NOTIFY_SOCKET"), Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}

// testFlags stand for the flags of "secretsfs mount".
func testFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: "refresh-interval"},
		&cli.StringFlag{Name: "region"},
		&cli.StringSliceFlag{Name: "secret"},
		&cli.BoolFlag{Name: "allow-other"},
		&cli.StringFlag{Name: "log-file"},
		&cli.BoolFlag{Name: "syslog"},
		&cli.StringFlag{Name: "fsname"},
		&cli.StringFlag{Name: "audit-log"},
		&cli.StringFlag{Name: "on-change-command"},
	}
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want invocation
		err  string
	}{
		{[]string{"secretsfs", "/mnt", "-o", "rw,secret=a"}, invocation{source: "secretsfs", dir: "/mnt", options: []string{"rw", "secret=a"}}, ""},
		{[]string{"none", "/mnt", "-sfnv", "-oa", "-o", "b", "-t", "fuse.secretsfs"}, invocation{source: "none", dir: "/mnt", options: []string{"a", "b"}, sloppy: true, fake: true, verbose: true}, ""},
		{[]string{"none", "/mnt", "-tfuse.secretsfs", "-r"}, invocation{source: "none", dir: "/mnt"}, ""},
		{[]string{"none"}, invocation{}, "want SOURCE and MOUNTPOINT, got 1"},
		{[]string{"a", "b", "c"}, invocation{}, "got 3"},
		{[]string{"none", "/mnt", "-x"}, invocation{}, "unknown flag -x"},
		{[]string{"none", "/mnt", "-o"}, invocation{}, "-o needs a value"},
		{[]string{"none", "/mnt", "-N", "/proc/1/ns/mnt"}, invocation{}, "-N (mounting in another namespace) is not supported"},
	} {
		got, err := parseArgs(tc.args)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseArgs(%q) error = %v, want %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseArgs(%q) = %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
}

func TestSplitOptions(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"a,b=1,,c", []string{"a", "b=1", "c"}},
		{`on_change_command="logger a,b",secret=x`, []string{"on_change_command=logger a,b", "secret=x"}},
		{`a="x"y,b`, []string{`a="x"y`, "b"}},
		{"", nil},
	} {
		if got := splitOptions(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("splitOptions(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMakePlan(t *testing.T) {
	for _, tc := range []struct {
		name    string
		options []string
		sloppy  bool
		want    plan
		err     string
	}{
		{"flags with _ or -, generic options ignored",
			[]string{"rw", "nosuid", "_netdev", "x-systemd.requires=network.target", "comment=hi", "defaults", "refresh_interval=5m", "allow-other", "secret=a", "secret=b", "region=eu-west-1"}, false,
			plan{args: []string{"--refresh-interval=5m", "--allow-other", "--secret=a", "--secret=b", "--region=eu-west-1", "--syslog"}, timeout: DefaultMountTimeout}, ""},
		{"fsname given wins over the source", []string{"fsname=other"}, false,
			plan{args: []string{"--fsname=other", "--syslog"}, timeout: DefaultMountTimeout}, ""},
		{"a switch with a boolean value", []string{"allow_other=false"}, false,
			plan{args: []string{"--allow-other=false", "--syslog"}, timeout: DefaultMountTimeout}, ""},
		{"log_file chooses the log", []string{"log_file=/var/log/s.log"}, false,
			plan{args: []string{"--log-file=/var/log/s.log"}, timeout: DefaultMountTimeout}, ""},
		{"syslog given", []string{"syslog"}, false,
			plan{args: []string{"--syslog"}, timeout: DefaultMountTimeout}, ""},
		{"the helper's own options", []string{"env_file=/a", "env-file=/b", "mount_timeout=5"}, false,
			plan{args: []string{"--syslog"}, envFiles: []string{"/a", "/b"}, timeout: 5 * time.Second}, ""},
		{"a timeout as a duration", []string{"mount-timeout=2m"}, false,
			plan{args: []string{"--syslog"}, timeout: 2 * time.Minute}, ""},
		{"sloppy ignores unknown options", []string{"colour=blue", "secret=a"}, true,
			plan{args: []string{"--secret=a", "--syslog"}, timeout: DefaultMountTimeout, ignored: []string{"colour=blue"}}, ""},
		{"unknown option", []string{"colour=blue"}, false, plan{}, "unknown option colour=blue"},
		{"a flag without its value", []string{"region"}, false, plan{}, "option region needs a value (region=...)"},
		{"a switch with a bad value", []string{"allow_other=1x"}, false, plan{}, "give allow_other alone, or allow_other=true or allow_other=false"},
		{"env_file without a file", []string{"env_file"}, false, plan{}, "option env_file needs a file"},
		{"a bad timeout", []string{"mount_timeout=-1"}, false, plan{}, "mount_timeout=-1: give a positive number of seconds"},
		{"remount", []string{"remount"}, false, plan{}, "umount it and mount it again"},
		{"the audit log on stderr", []string{"audit_log=-"}, false, plan{}, "audit_log=-: the daemon's stderr is closed once mount returns; give a file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := makePlan(invocation{options: tc.options, sloppy: tc.sloppy}, testFlags())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("makePlan = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// Issue 10, item 4: the source field becomes the filesystem's name, by
// which mount -a recognises the entry as mounted.
func TestIssue10_04_SourceIsTheFsName(t *testing.T) {
	for _, source := range []string{"secretsfs", "none"} {
		got, err := makePlan(invocation{source: source, options: []string{"secret=a"}}, testFlags())
		if want := []string{"--secret=a", "--fsname=" + source, "--syslog"}; err != nil || !reflect.DeepEqual(got.args, want) {
			t.Errorf("source %s: %q, %v; want %q", source, got.args, err, want)
		}
	}
}

func TestIsHelper(t *testing.T) {
	for arg0, want := range map[string]bool{
		"/sbin/mount.fuse.secretsfs": true, "mount.secretsfs": true, "/usr/bin/secretsfs": false, "mount.fuse": false,
	} {
		if IsHelper(arg0) != want {
			t.Errorf("IsHelper(%q) = %v", arg0, !want)
		}
	}
}

// runHelper runs the helper with the test binary as the daemon, in mode,
// and returns its status, its stderr and the directory where the fake
// daemon left its traces; every fake daemon is stopped by pid at cleanup.
func runHelper(t *testing.T, mode string, extra ...string) (int, string, string) {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(dir, "pid")); err == nil {
			pid, _ := strconv.Atoi(string(b))
			if pid > 0 && syscall.Kill(pid, 0) == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte("SECRETSFS_ON_CHANGE_COMMAND=logger secret rotated\nNOTIFY_SOCKET=/not/this/one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := Helper{
		Flags:   testFlags(),
		Exe:     exe,
		Environ: []string{"PATH=/usr/bin:/bin", "FSTAB_TEST_DAEMON=" + mode, "FSTAB_TEST_DIR=" + dir},
	}
	var stderr bytes.Buffer
	h.Stderr = &stderr
	args := append([]string{"/sbin/mount.fuse.secretsfs", "secretsfs", "/mnt/x", "-o", "secret=a,env_file=" + envFile}, extra...)
	status := h.Run(context.Background(), args)
	return status, stderr.String(), dir
}

func daemonPID(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "pid"))
	if err != nil {
		t.Fatalf("the daemon did not start: %v", err)
	}
	pid, _ := strconv.Atoi(string(b))
	return pid
}

// Issue 10, item 1: the helper returns 0 as soon as the daemon serves,
// leaving it in a session of its own with none of the helper's input or
// output.
func TestIssue10_01_HelperReturnsOnceServingDetached(t *testing.T) {
	start := time.Now()
	status, stderr, dir := runHelper(t, "ready")
	if status != 0 || stderr != "" {
		t.Fatalf("status %d, stderr %q; want 0 and nothing", status, stderr)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the helper took %v", took)
	}
	pid := daemonPID(t, dir)
	if syscall.Kill(pid, 0) != nil {
		t.Fatal("the daemon is not running")
	}
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("the daemon's session is %d (%v), want its own", sid, err)
	}
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil || cwd != "/" {
		t.Errorf("the daemon's working directory is %q (%v), want /", cwd, err)
	}
	for fd, want := range map[int]string{0: "/dev/null", 1: "/dev/null", 2: "pipe:"} {
		got, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
		if err != nil || !strings.HasPrefix(got, want) {
			t.Errorf("the daemon's fd %d is %q (%v), want %s", fd, got, err, want)
		}
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	if got := strings.Fields(string(args)); !reflect.DeepEqual(got, []string{"mount", "--secret=a", "--fsname=secretsfs", "--syslog", "/mnt/x"}) {
		t.Errorf("the daemon's arguments: %q", got)
	}
	environ, _ := os.ReadFile(filepath.Join(dir, "environ"))
	env := "\n" + string(environ) + "\n"
	if !strings.Contains(env, "\nSECRETSFS_ON_CHANGE_COMMAND=logger secret rotated\n") || !strings.Contains(env, "\nNOTIFY_SOCKET=@secretsfs-mount/") {
		t.Errorf("the daemon's environment lacks the env-file's variable or the helper's socket:\n%s", environ)
	}
	// SIGTERM still stops it: it was not left stopped or ignoring signals.
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "stopped")); err != nil {
		t.Error("the daemon did not stop on SIGTERM")
	}
}

// -v shows the command line and what the daemon wrote before serving.
func TestHelperVerbose(t *testing.T) {
	status, stderr, _ := runHelper(t, "ready", "-v")
	if status != 0 || !strings.Contains(stderr, "running ") || !strings.Contains(stderr, "mount --secret=a --fsname=secretsfs --syslog /mnt/x") ||
		!strings.Contains(stderr, "a warning before serving") {
		t.Fatalf("status %d, stderr %q", status, stderr)
	}
}

// A daemon that fails: its error, and status 32.
func TestHelperReportsTheDaemonsError(t *testing.T) {
	status, stderr, _ := runHelper(t, "fail")
	if status != 32 || !strings.Contains(stderr, "secretsfs: mount point /nowhere does not exist\n") ||
		!strings.Contains(stderr, "mount.fuse.secretsfs: secretsfs mount /mnt/x: the daemon exited before serving (exit status 1)") {
		t.Fatalf("status %d, stderr %q; want 32 and the daemon's error", status, stderr)
	}
}

// A daemon that does not serve in time is stopped; READY=1 from another
// process (here the daemon's child) does not count.
func TestHelperStopsADaemonThatDoesNotServe(t *testing.T) {
	for _, mode := range []string{"hang", "child"} {
		t.Run(mode, func(t *testing.T) {
			status, stderr, dir := runHelper(t, mode, "-o", "mount_timeout=1")
			if status != 32 || !strings.Contains(stderr, "did not serve within 1s (mount_timeout); stopped it") {
				t.Fatalf("status %d, stderr %q", status, stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "stopped")); err != nil {
				t.Fatal("the daemon was not stopped with SIGTERM")
			}
			if syscall.Kill(daemonPID(t, dir), 0) == nil {
				t.Fatal("the daemon still runs")
			}
		})
	}
}

// Fake mode checks everything and starts nothing; a bad env-file is refused
// naming its line.
func TestHelperFakeAndBadEnvFile(t *testing.T) {
	status, stderr, dir := runHelper(t, "ready", "-f")
	if status != 0 || stderr != "" {
		t.Fatalf("-f: status %d, stderr %q", status, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "pid")); err == nil {
		t.Fatal("-f started the daemon")
	}
	bad := filepath.Join(t.TempDir(), "bad.env")
	if err := os.WriteFile(bad, []byte("export AWS_REGION=eu-west-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	status, stderr, _ = runHelper(t, "ready", "-o", "env_file="+bad)
	if status != 1 || !strings.Contains(stderr, bad+": line 1:") || !strings.Contains(stderr, "export") {
		t.Fatalf("bad env-file: status %d, stderr %q", status, stderr)
	}
}
