package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// The package built by TestMain, for a test re-run inside a sandbox.
const (
	sandboxDebEnv  = "SECRETSFS_DEB_TEST_SANDBOX_DEB"
	sandboxRootEnv = "SECRETSFS_DEB_TEST_SANDBOX_ROOT"
)

// inSandbox lets a test install the package with dpkg and run what it
// installs without changing this machine. Called first in a test, it
// re-runs the test in a child process in a private mount namespace and
// returns false (the caller returns; the child's verdict is the test's).
// In that child it returns true, with /usr, /etc and /var overlaid by
// writable copies in memory that vanish with the namespace: dpkg, its
// database, the units, the maintainer scripts' state and the installed
// binary are private to the test, while /tmp and /proc are the host's.
//
// The child's mount namespace starts as a copy of the host's: the copies of
// other programs' FUSE mounts are detached at once, so that this namespace
// keeps no FUSE filesystem of theirs alive after they unmount it.
func inSandbox(t *testing.T) bool {
	t.Helper()
	if os.Getenv(sandboxDebEnv) != "" {
		sandboxOverlays(t)
		return true
	}
	needPackage(t)
	if os.Geteuid() != 0 {
		t.Skip("installing the package needs root")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg is not installed")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), sandboxDebEnv+"="+pkg.deb, sandboxRootEnv+"="+pkg.root)
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS} // and / made private
	out, err := cmd.CombinedOutput()
	t.Logf("in a private mount namespace:\n%s", out)
	if err != nil {
		t.Fatalf("the sandboxed test failed: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: "+t.Name())) {
		t.Fatal("the sandboxed test did not pass")
	}
	return false
}

// sandboxOverlays detaches the copies of FUSE mounts and overlays /usr,
// /etc and /var with copies on a tmpfs, all in this process's private
// mount namespace.
func sandboxOverlays(t *testing.T) {
	t.Helper()
	for _, dir := range testutil.MountPoints(func(typ string) bool { return strings.HasPrefix(typ, "fuse") }) {
		unix.Unmount(dir, unix.MNT_DETACH)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(mi, []byte(" shared:")) {
		t.Fatal("a mount is still shared with the host's namespace; refusing to install")
	}
	upper, err := os.MkdirTemp("", "secretsfs-sandbox-")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", upper, "tmpfs", 0, "mode=0700"); err != nil {
		t.Fatalf("tmpfs: %v", err)
	}
	dirs := []string{"/usr", "/etc", "/var"}
	t.Cleanup(func() {
		for i := len(dirs) - 1; i >= 0; i-- {
			unix.Unmount(dirs[i], unix.MNT_DETACH)
		}
		unix.Unmount(upper, unix.MNT_DETACH)
		os.Remove(upper)
	})
	for _, dir := range dirs {
		up, work := filepath.Join(upper, dir, "upper"), filepath.Join(upper, dir, "work")
		for _, d := range []string{up, work} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", dir, up, work)
		if err := unix.Mount("overlay", dir, "overlay", 0, opts); err != nil {
			t.Skipf("overlayfs on %s: %v", dir, err)
		}
	}
}

// run runs a command, failing the test with its output if it fails.
func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	t.Logf("$ %s %s\n%s", name, strings.Join(args, " "), out)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(out)
}

// running reports whether pid is a live process (not gone, not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// wantsLinks lists the symbolic links that enable a secretsfs unit.
func wantsLinks(t *testing.T) []string {
	t.Helper()
	links, err := filepath.Glob("/etc/systemd/system/*.wants/secretsfs*.service")
	if err != nil {
		t.Fatal(err)
	}
	return links
}

// TestIssue10_06_PurgeStopsAndDisablesEverything installs the package with
// dpkg as an operator would, enables the units as systemctl does without a
// running systemd, mounts through the fstab helper with mount(8), reinstalls
// (an upgrade leaves the mount serving), then purges: no wants symlink, no
// daemon (by pid) and no mount may remain, so nothing serves from a deleted
// binary.
func TestIssue10_06_PurgeStopsAndDisablesEverything(t *testing.T) {
	if !inSandbox(t) {
		return
	}
	testutil.RequireFUSE(t)
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("systemd runs here: the maintainer scripts would stop and start real units")
	}
	srv := startEmulator(t, map[string]string{"app/key": "k3y"})
	env := append(helperEnv(), "DEBIAN_FRONTEND=noninteractive")

	run(t, env, "dpkg", "-i", pkg.deb)
	// Installed, not enabled: the service needs settings first.
	if links := wantsLinks(t); len(links) > 0 {
		t.Fatalf("installing enabled %v", links)
	}
	run(t, env, "systemctl", "enable", "secretsfs.service", "secretsfs@app.service")
	if links := wantsLinks(t); len(links) != 2 {
		t.Fatalf("systemctl enable made %v", links)
	}

	mnt := t.TempDir()
	logFile := filepath.Join(t.TempDir(), "daemon.log")
	var pid int
	t.Cleanup(func() {
		if pid != 0 && running(pid) {
			t.Errorf("killing daemon %d", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if testutil.MountType(mnt) != "" {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("daemon log:\n%s", b)
		}
	})
	run(t, env, "mount", "-t", "fuse.secretsfs", "-o",
		"endpoint-url="+srv.URL()+",secret=app/key,log-file="+logFile, "secretsfs", mnt)
	pids := daemonsHere(t, "/usr/bin/secretsfs")
	if len(pids) != 1 {
		t.Fatalf("daemons %v, want 1", pids)
	}
	pid = pids[0]
	if got, err := os.ReadFile(filepath.Join(mnt, "app", "key", "AWSCURRENT")); err != nil || string(got) != "k3y" {
		t.Fatalf("read through the mount: %q, %v", got, err)
	}

	// An upgrade (here a reinstall) leaves running mounts alone.
	run(t, env, "dpkg", "-i", pkg.deb)
	if !running(pid) || testutil.MountType(mnt) != "fuse.secretsfs" {
		t.Fatalf("after a reinstall: daemon running %v, mount %q; want both kept", running(pid), testutil.MountType(mnt))
	}
	if links := wantsLinks(t); len(links) != 2 {
		t.Fatalf("after a reinstall the units are enabled by %v, want both links kept", links)
	}

	run(t, env, "dpkg", "--purge", "secretsfs")
	if links := wantsLinks(t); len(links) > 0 {
		t.Errorf("purge left the units enabled: %v", links)
	}
	if running(pid) {
		t.Errorf("purge left daemon %d running from a deleted binary", pid)
	}
	if typ := testutil.MountType(mnt); typ != "" {
		t.Errorf("purge left %s mounted (%s)", mnt, typ)
	}
	// Stopped by SIGTERM, which unmounts cleanly, not killed.
	if b, _ := os.ReadFile(logFile); !bytes.Contains(b, []byte(`msg=unmounted`)) {
		t.Errorf("the daemon did not unmount by itself:\n%s", b)
	}
	for _, path := range []string{"/usr/bin/secretsfs", "/etc/secretsfs", "/lib/systemd/system/secretsfs.service",
		"/var/lib/systemd/deb-systemd-helper-enabled/secretsfs.service.dsh-also",
		"/var/lib/systemd/deb-systemd-helper-masked/secretsfs.service"} {
		if _, err := os.Lstat(path); !os.IsNotExist(err) {
			t.Errorf("purge left %s (%v)", path, err)
		}
	}
}
