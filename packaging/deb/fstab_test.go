package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/secretsfs/secretsfs/packaging/envfile"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// mountNS is a mount namespace of a test's own in which /sbin holds the
// packaged mount helpers (links to the test's copy of the binary), so that
// the real mount(8), which looks for helpers in /sbin only, runs them
// without anything being installed on the machine. Every mount made in it stays in it: the test reaches the files
// through /proc/PID/root of the process that holds the namespace.
type mountNS struct {
	t      *testing.T
	holder int    // pid of the process holding the namespace
	bin    string // the test's copy of the packaged binary
	env    []string
}

// newMountNS starts the namespace; its cleanup stops every daemon running
// bin (by pid), then the holder.
func newMountNS(t *testing.T, tmp, bin string) *mountNS {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) is not installed")
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting through mount(8) in a namespace of its own needs root")
	}
	// The helpers, as the package installs them, pointing at bin.
	sbin := filepath.Join(tmp, "sbin")
	if err := os.Mkdir(sbin, 0o755); err != nil {
		t.Fatal(err)
	}
	ns := &mountNS{t: t, bin: bin, env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}}
	for _, name := range []string{"mount.fuse.secretsfs", "mount.secretsfs"} {
		target, err := os.Readlink(filepath.Join(pkg.root, "sbin", name))
		if err != nil {
			t.Fatal(err)
		}
		if target == "/usr/bin/secretsfs" {
			target = bin
		}
		if err := os.Symlink(target, filepath.Join(sbin, name)); err != nil {
			t.Fatal(err)
		}
	}
	holder := exec.Command("unshare", "--mount", "--propagation", "private", "--", "sleep", "infinity")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	ns.holder = holder.Process.Pid
	done := make(chan struct{})
	go func() { holder.Wait(); close(done) }()
	t.Cleanup(func() {
		stopDaemons(t, bin)
		holder.Process.Kill()
		<-done
	})
	self, _ := os.Readlink("/proc/self/ns/mnt")
	waitUntil(t, "the namespace", func() bool {
		mnt, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", ns.holder))
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", ns.holder))
		return mnt != "" && mnt != self && string(comm) == "sleep\n"
	})
	realSbin, err := filepath.EvalSymlinks("/sbin")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := ns.command("mount", "--bind", sbin, realSbin).CombinedOutput(); err != nil {
		t.Fatalf("bind-mounting the helpers on /sbin in the namespace: %v: %s", err, out)
	}
	return ns
}

// command runs name in the namespace, with mount(8)'s environment when
// run at boot: PATH only.
func (ns *mountNS) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command("nsenter", append([]string{"--target", strconv.Itoa(ns.holder), "--mount", "--", name}, args...)...)
	cmd.Env = ns.env
	return cmd
}

// run runs name in the namespace with its output in a file (not a pipe,
// which a daemon could keep open), and returns its exit status and output.
func (ns *mountNS) run(name string, args ...string) (int, string) {
	ns.t.Helper()
	out, err := os.CreateTemp(ns.t.TempDir(), "out")
	if err != nil {
		ns.t.Fatal(err)
	}
	defer out.Close()
	cmd := ns.command(name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	status := 0
	if ee, ok := err.(*exec.ExitError); ok {
		status = ee.ExitCode()
	} else if err != nil {
		ns.t.Fatalf("%s: %v", name, err)
	}
	data, _ := os.ReadFile(out.Name())
	return status, string(data)
}

// path is where the test reaches path of the namespace.
func (ns *mountNS) path(p string) string { return fmt.Sprintf("/proc/%d/root%s", ns.holder, p) }

// mountsOn counts the mounts of the namespace on dir, stacked ones too.
func (ns *mountNS) mountsOn(dir string) (n int, types []string) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", ns.holder))
	if err != nil {
		ns.t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 || strings.ReplaceAll(f[4], `\040`, " ") != dir {
			continue
		}
		for i, x := range f {
			if x == "-" && i+1 < len(f) {
				types = append(types, f[i+1])
			}
		}
		n++
	}
	return n, types
}

// stopDaemons stops every process running bin with SIGTERM, by pid, and
// kills those that do not exit within 10 s.
func stopDaemons(t *testing.T, bin string) {
	for _, pid := range daemonsOf(t, bin) {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(daemonsOf(t, bin)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, pid := range daemonsOf(t, bin) {
		t.Errorf("daemon %d did not exit within 10 s of SIGTERM; killing it", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// fstabEmulator starts the emulator and writes an env-file with the
// settings an operator would put there: region, credentials, endpoint.
func fstabEmulator(t *testing.T, tmp string, extra ...string) (envFile string) {
	t.Helper()
	srv := startEmulator(t, map[string]string{"app/db": `{"password":"p4ss"}`, "other/key": "k"})
	envFile = filepath.Join(tmp, "secretsfs.env")
	lines := append([]string{
		"# settings of the fstab mounts",
		"AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=test",
		"AWS_SECRET_ACCESS_KEY=test",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		"SECRETSFS_ENDPOINT_URL=" + srv.URL(),
	}, extra...)
	if err := os.WriteFile(envFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return envFile
}

// writeFstab writes an fstab file of the given lines.
func writeFstab(t *testing.T, tmp string, lines ...string) string {
	t.Helper()
	path := filepath.Join(tmp, "fstab")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Issue 10, item 1: mount(8) run with its output captured, as Ansible,
// cloud-init or "ssh host mount" run it, returns as soon as the mount
// serves: the daemon does not keep mount's output open. Through the real
// /bin/mount and an fstab file given with -T.
func TestIssue10_01_MountReturnsWithOutputCaptured(t *testing.T) {
	needPackage(t)
	testutil.RequireFUSE(t)
	tmp, bin, mnt := fstabSetup(t, "secretsfs-issue10-01")
	envFile := fstabEmulator(t, tmp)
	fstab := writeFstab(t, tmp, "secretsfs "+mnt+" fuse.secretsfs secret=app/db,mount_timeout=20,env-file="+envFile+" 0 0")
	ns := newMountNS(t, tmp, bin)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := ns.command("sh", "-c", `out=$(mount -T "$1" "$2" 2>&1); echo "status=$? output=$out"`, "sh", fstab, mnt)
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	select {
	case err = <-waited:
	case <-ctx.Done():
		cmd.Process.Kill()
		err = <-waited
		t.Fatalf(`out=$(mount %s) did not return within 30 s (%v); output so far %q`, mnt, err, out.String())
	}
	took := time.Since(start)
	t.Logf("out=$(mount ...) returned after %v: %q", took, out.String())
	if err != nil || strings.TrimSpace(out.String()) != "status=0 output=" {
		t.Fatalf("out=$(mount ...): %v, %q; want status 0 and no output", err, out.String())
	}
	if took > 10*time.Second {
		t.Fatalf("mount took %v to return", took)
	}
	got, err := os.ReadFile(ns.path(filepath.Join(mnt, "app/db/password")))
	if err != nil || string(got) != "p4ss" {
		t.Fatalf("read app/db/password = %q, %v", got, err)
	}
	pids := daemonsOf(t, bin)
	if len(pids) != 1 {
		t.Fatalf("%d daemons, want 1", len(pids))
	}
	// With mount's output gone, the daemon writes its log (SIGHUP logs a
	// refresh) and keeps serving.
	if err := syscall.Kill(pids[0], syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got, err := os.ReadFile(ns.path(filepath.Join(mnt, "app/db/password"))); err != nil || string(got) != "p4ss" {
			t.Fatalf("after SIGHUP: read = %q, %v", got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(daemonsOf(t, bin)) != 1 {
		t.Fatal("the daemon died after mount's output was closed")
	}
}

// Issue 10, item 5: the env-file is data read with systemd's rules, not
// shell code: an unquoted value with spaces reaches the daemon whole.
func TestIssue10_05_EnvFileIsDataInTheHelper(t *testing.T) {
	needPackage(t)
	testutil.RequireFUSE(t)
	tmp, bin, mnt := fstabSetup(t, "secretsfs-issue10-05")
	marker := filepath.Join(tmp, "ran")
	envFile := fstabEmulator(t, tmp,
		"SECRETSFS_ON_CHANGE_COMMAND=logger secret rotated",
		"; a comment, systemd style",
		`SECRETSFS_LOG_LEVEL="debug"`,
		"SECRETSFS_TAG=team=a\\",
		"pp",
		"SECRETSFS_DEFAULT_STAGE=AWSCURRENT # not a comment: part of the value",
		"SECRETSFS_DEFAULT_STAGE=AWSCURRENT",
		"UNUSED=$(touch "+marker+")",
	)
	fstab := writeFstab(t, tmp, "secretsfs "+mnt+" fuse.secretsfs log_file="+filepath.Join(tmp, "log")+",mount_timeout=20,env-file="+envFile+" 0 0")
	ns := newMountNS(t, tmp, bin)
	if status, out := ns.run("mount", "-T", fstab, mnt); status != 0 {
		t.Fatalf("mount: status %d: %s", status, out)
	}
	pids := daemonsOf(t, bin)
	if len(pids) != 1 {
		t.Fatalf("%d daemons, want 1", len(pids))
	}
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pids[0]))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range strings.Split(string(environ), "\x00") {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k, want := range map[string]string{
		"SECRETSFS_ON_CHANGE_COMMAND": "logger secret rotated",
		"SECRETSFS_LOG_LEVEL":         "debug",
		"SECRETSFS_TAG":               "team=app",
		"SECRETSFS_DEFAULT_STAGE":     "AWSCURRENT",
		"UNUSED":                      "$(touch " + marker + ")",
	} {
		if env[k] != want {
			t.Errorf("the daemon's %s = %q, want %q", k, env[k], want)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a command substitution in the env-file was run")
	}
}

// The settings file the package installs, with its examples uncommented,
// means the same to systemd and to the helper: every line is a valid
// assignment whose value is the text after "=".
func TestIssue10_05_PackagedEnvFileParses(t *testing.T) {
	needPackage(t)
	data, err := os.ReadFile(filepath.Join(pkg.root, "etc/secretsfs/secretsfs.env"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envfile.Parse(data); err != nil {
		t.Fatalf("as shipped: %v", err)
	}
	want := map[string]string{}
	var lines []string
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "#"), "="); ok && strings.HasPrefix(line, "#") && !strings.Contains(k, " ") {
			line = k + "=" + v
			want[k] = v
		}
		lines = append(lines, line)
	}
	vars, err := envfile.Parse([]byte(strings.Join(lines, "\n")))
	if err != nil || len(vars) != len(want) || len(want) < 5 {
		t.Fatalf("uncommented: %d assignments of %d, %v", len(vars), len(want), err)
	}
	for _, v := range vars {
		if want[v.Name] != v.Value {
			t.Errorf("%s = %q, want %q", v.Name, v.Value, want[v.Name])
		}
	}
}

// Issue 10, item 4: "mount -a" twice leaves exactly one mount and one
// daemon per entry, whatever the source field says ("none" included), and
// mounting a mount point that a live secretsfs serves is refused with a
// clear message, by mount(8) through the helper and by the daemon itself.
func TestIssue10_04_MountAllTwiceLeavesOneMountAndOneDaemon(t *testing.T) {
	needPackage(t)
	testutil.RequireFUSE(t)
	tmp, bin, mnt := fstabSetup(t, "secretsfs-issue10-04")
	mnt2 := filepath.Join(tmp, "mnt2")
	if err := os.Mkdir(mnt2, 0o755); err != nil {
		t.Fatal(err)
	}
	envFile := fstabEmulator(t, tmp)
	opts := "secret=app/db,mount_timeout=20,env-file=" + envFile
	fstab := writeFstab(t, tmp,
		"secretsfs "+mnt+" fuse.secretsfs "+opts+" 0 0",
		"none "+mnt2+" fuse.secretsfs "+opts+" 0 0",
	)
	ns := newMountNS(t, tmp, bin)
	for i := range 2 {
		if status, out := ns.run("mount", "-a", "-T", fstab); status != 0 {
			t.Fatalf("mount -a #%d: status %d: %s", i+1, status, out)
		}
		for _, dir := range []string{mnt, mnt2} {
			if n, types := ns.mountsOn(dir); n != 1 || types[0] != "fuse.secretsfs" {
				t.Fatalf("after mount -a #%d: %d mounts on %s (%v), want one secretsfs", i+1, n, dir, types)
			}
		}
		if pids := daemonsOf(t, bin); len(pids) != 2 {
			t.Fatalf("after mount -a #%d: %d daemons, want 2 (one per entry)", i+1, len(pids))
		}
	}
	// "mount DIR" of a mounted entry: refused, as for a mounted device.
	status, out := ns.run("mount", "-T", fstab, mnt2)
	if status != 32 || !strings.Contains(out, "already") || !strings.Contains(out, mnt2) {
		t.Fatalf("mount %s again: status %d, %q; want 32 and a message that it is already mounted", mnt2, status, out)
	}
	// And the daemon itself, started by hand.
	status, out = ns.run(bin, "mount", "--secret=app/db", "--endpoint-url=http://127.0.0.1:1", "--region=us-east-1", mnt)
	if status == 0 || !strings.Contains(out, "already") {
		t.Fatalf("secretsfs mount %s again: status %d, %q; want a refusal", mnt, status, out)
	}
	for _, dir := range []string{mnt, mnt2} {
		if n, _ := ns.mountsOn(dir); n != 1 {
			t.Fatalf("%d mounts on %s, want 1", n, dir)
		}
	}
	if pids := daemonsOf(t, bin); len(pids) != 2 {
		t.Fatalf("%d daemons, want 2", len(pids))
	}
	// A stale mount (its daemon killed) is still replaced.
	for _, pid := range daemonsOf(t, bin) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	waitUntil(t, "the daemons to die", func() bool { return len(daemonsOf(t, bin)) == 0 })
	if status, out := ns.run("mount", "-T", fstab, mnt); status != 0 {
		t.Fatalf("mount over a stale mount: status %d: %q", status, out)
	}
	if n, _ := ns.mountsOn(mnt); n != 1 {
		t.Fatalf("%d mounts on %s after replacing the stale one, want 1", n, mnt)
	}
	if got, err := os.ReadFile(ns.path(filepath.Join(mnt, "app/db/password"))); err != nil || string(got) != "p4ss" {
		t.Fatalf("read after replacing the stale mount = %q, %v", got, err)
	}
}

// readmeFstabLine is the fstab line of the README's /etc/fstab example.
func readmeFstabLine(t *testing.T) string {
	t.Helper()
	src, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(src, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "\n# /etc/fstab\n")
	if !ok {
		t.Fatal("the README has no /etc/fstab example")
	}
	line, _, _ := strings.Cut(after, "\n")
	if !strings.Contains(line, "fuse.secretsfs") {
		t.Fatalf("the README's fstab example is %q", line)
	}
	return line
}

// Issue 10, item 9: the README's fstab example, mounted as it is written
// (with this test's mount point and env-file), lets a member of its group
// who is not its owner read the secrets.
func TestIssue10_09_ReadmeFstabExampleServesTheGroup(t *testing.T) {
	needPackage(t)
	testutil.RequireFUSE(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) is not installed")
	}
	tmp, bin, mnt := fstabSetup(t, "secretsfs-issue10-09")
	for _, dir := range []string{filepath.Dir(tmp), tmp} { // the reader must reach mnt
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	envFile := fstabEmulator(t, tmp)
	f := strings.Fields(readmeFstabLine(t))
	if len(f) != 6 {
		t.Fatalf("the README's fstab line has %d fields: %q", len(f), f)
	}
	f[1] = mnt
	var opts []string
	owner, group := "", ""
	for _, o := range strings.Split(f[3], ",") {
		name, value, _ := strings.Cut(o, "=")
		switch strings.ReplaceAll(name, "-", "_") {
		case "env_file":
			o = "env-file=" + envFile
		case "uid":
			owner = value
		case "gid":
			group = value
		}
		opts = append(opts, o)
	}
	if owner == "" || group == "" || owner == "1001" {
		t.Fatalf("the README's example sets uid=%q gid=%q; this test reads as uid 1001 in that group", owner, group)
	}
	f[3] = strings.Join(opts, ",")
	fstab := writeFstab(t, tmp, strings.Join(f, " "))
	ns := newMountNS(t, tmp, bin)
	if status, out := ns.run("mount", "-T", fstab, mnt); status != 0 {
		t.Fatalf("mount: status %d: %s", status, out)
	}
	for _, path := range []string{"app/db/password", "app/db/AWSCURRENT"} {
		status, out := ns.run("setpriv", "--reuid", "1001", "--regid", group, "--clear-groups", "cat", filepath.Join(mnt, path))
		if status != 0 || !strings.Contains(out, "p4ss") {
			t.Errorf("cat %s as uid 1001, gid %s (not the owner, in the group): status %d, %q", path, group, status, out)
		}
	}
	// Others are still kept out.
	if status, _ := ns.run("setpriv", "--reuid", "1001", "--regid", "1001", "--clear-groups", "cat", filepath.Join(mnt, "app/db/password")); status == 0 {
		t.Error("a user outside the group read the secret")
	}
}
