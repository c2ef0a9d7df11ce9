package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/testutil"
)

const testVersion = "1.2.3~test1"

// pkg is the package built once for all tests, and where it is unpacked.
var pkg struct {
	deb, root string
	err       error
}

func TestMain(m *testing.M) {
	if deb, root := os.Getenv(sandboxDebEnv), os.Getenv(sandboxRootEnv); deb != "" {
		// A test re-run inside a sandbox (install_test.go): the package
		// is the one its parent built.
		pkg.deb, pkg.root = deb, root
		os.Exit(m.Run())
	}
	code := func() int {
		tmp, err := os.MkdirTemp("", "secretsfs-deb-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(tmp)
		if _, err := exec.LookPath("dpkg-deb"); err != nil {
			pkg.err = err
			return m.Run()
		}
		src, err := moduleRoot()
		if err == nil {
			pkg.deb, err = build(options{Version: testVersion, Arch: runtime.GOARCH, Out: tmp, Src: src})
		}
		if err == nil {
			pkg.root = filepath.Join(tmp, "root")
			if out, xerr := exec.Command("dpkg-deb", "-x", pkg.deb, pkg.root).CombinedOutput(); xerr != nil {
				err = fmt.Errorf("dpkg-deb -x: %v: %s", xerr, out)
			}
		}
		pkg.err = err
		return m.Run()
	}()
	os.Exit(code)
}

// needPackage skips (or fails in CI) when the package could not be built.
func needPackage(t *testing.T) {
	t.Helper()
	if pkg.err == nil {
		if pkg.deb == "" || !strings.HasSuffix(pkg.deb, "_"+runtime.GOARCH+".deb") {
			t.Fatalf("no package built: %q", pkg.deb)
		}
		return
	}
	if _, err := exec.LookPath("dpkg-deb"); err != nil && os.Getenv("CI") == "" {
		t.Skip("dpkg-deb is not installed")
	}
	t.Fatalf("building the package: %v", pkg.err)
}

func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestControlFields(t *testing.T) {
	needPackage(t)
	for field, want := range map[string]string{
		"Package":      "secretsfs",
		"Version":      testVersion,
		"Architecture": runtime.GOARCH,
		"Depends":      "fuse3",
		"Section":      "admin",
	} {
		if got := strings.TrimSpace(dpkgDeb(t, "--field", pkg.deb, field)); got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	size, err := strconv.Atoi(strings.TrimSpace(dpkgDeb(t, "--field", pkg.deb, "Installed-Size")))
	if err != nil || size < 1024 {
		t.Errorf("Installed-Size = %d KiB (%v), want the binary's size at least", size, err)
	}
	if d := dpkgDeb(t, "--field", pkg.deb, "Description"); !strings.Contains(d, "AWS Secrets Manager") {
		t.Errorf("Description = %q", d)
	}
	if got := dpkgDeb(t, "--ctrl-tarfile", pkg.deb); got == "" {
		t.Error("empty control archive")
	}
	info := dpkgDeb(t, "--info", pkg.deb, "conffiles")
	if strings.TrimSpace(info) != "/etc/secretsfs/secretsfs.env" {
		t.Errorf("conffiles = %q", info)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		s := dpkgDeb(t, "--info", pkg.deb, script)
		if !strings.HasPrefix(s, "#!/bin/sh\nset -e\n") || !strings.Contains(s, "[ -d /run/systemd/system ]") {
			t.Errorf("%s:\n%s", script, s)
		}
		// Starting is for the administrator (the service needs settings
		// first); systemctl is only asked to reload, the rest goes through
		// deb-systemd-helper and deb-systemd-invoke (lintian's rule).
		if strings.Contains(s, "invoke start") || strings.Contains(s, "restart") {
			t.Errorf("%s starts the service, which needs settings first:\n%s", script, s)
		}
		for _, line := range strings.Split(s, "\n") {
			if strings.Contains(line, "systemctl") && !strings.Contains(line, "daemon-reload") {
				t.Errorf("%s calls systemctl: %s", script, line)
			}
		}
	}
}

func TestContents(t *testing.T) {
	needPackage(t)
	// dpkg-deb --contents prints: mode owner/group size date time path [-> target]
	got := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(dpkgDeb(t, "--contents", pkg.deb)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			t.Fatalf("odd line %q", sc.Text())
		}
		if f[1] != "root/root" {
			t.Errorf("%s is owned by %s, want root/root", f[5], f[1])
		}
		if f[0][0] == 'd' {
			continue
		}
		entry := f[0]
		if len(f) == 8 && f[6] == "->" {
			entry += " -> " + f[7]
		}
		got[strings.TrimPrefix(f[5], ".")] = entry
	}
	want := map[string]string{
		"/usr/bin/secretsfs":                                  "-rwxr-xr-x",
		"/sbin/mount.fuse.secretsfs":                          "lrwxrwxrwx -> /usr/bin/secretsfs",
		"/sbin/mount.secretsfs":                               "lrwxrwxrwx -> mount.fuse.secretsfs",
		"/lib/systemd/system/secretsfs.service":               "-rw-r--r--",
		"/lib/systemd/system/secretsfs@.service":              "-rw-r--r--",
		"/etc/secretsfs/secretsfs.env":                        "-rw-------",
		"/usr/share/man/man1/secretsfs.1.gz":                  "-rw-r--r--",
		"/usr/share/man/man8/mount.fuse.secretsfs.8.gz":       "-rw-r--r--",
		"/usr/share/man/man8/mount.secretsfs.8.gz":            "lrwxrwxrwx -> mount.fuse.secretsfs.8.gz",
		"/usr/share/bash-completion/completions/secretsfs":    "-rw-r--r--",
		"/usr/share/zsh/vendor-completions/_secretsfs":        "-rw-r--r--",
		"/usr/share/fish/vendor_completions.d/secretsfs.fish": "-rw-r--r--",
		"/usr/share/doc/secretsfs/copyright":                  "-rw-r--r--",
		"/usr/share/doc/secretsfs/changelog.gz":               "-rw-r--r--",
		"/usr/share/lintian/overrides/secretsfs":              "-rw-r--r--",
	}
	for path, mode := range want {
		if got[path] != mode {
			t.Errorf("%s: %q, want %q", path, got[path], mode)
		}
	}
	for path := range got {
		if _, ok := want[path]; !ok {
			t.Errorf("unexpected file %s", path)
		}
	}
}

// The packaged binary is static, runs, and reports the version of the build.
func TestPackagedBinary(t *testing.T) {
	needPackage(t)
	bin := filepath.Join(pkg.root, "usr", "bin", "secretsfs")

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a program interpreter: it is dynamically linked")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}

	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("secretsfs %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if got := run("version"); got != "secretsfs "+testVersion+"\n" {
		t.Errorf("secretsfs version = %q", got)
	}
	if got := run("--version"); !strings.Contains(got, testVersion) {
		t.Errorf("secretsfs --version = %q", got)
	}
	help := run("--help")
	for _, cmd := range []string{"mount", "demo", "emulator", "version"} {
		if !strings.Contains(help, cmd) {
			t.Errorf("--help lacks %q:\n%s", cmd, help)
		}
	}
	if strings.Contains(help, " gen ") {
		t.Errorf("--help shows the hidden gen command:\n%s", help)
	}
	if h := run("mount", "--help"); !strings.Contains(h, "--refresh-interval") || !strings.Contains(h, "SECRETSFS_REGION") {
		t.Errorf("mount --help:\n%s", h)
	}
}

func TestManPage(t *testing.T) {
	needPackage(t)
	gz, err := os.Open(filepath.Join(pkg.root, "usr/share/man/man1/secretsfs.1.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	r, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".TH secretsfs 1", "serve AWS Secrets Manager secrets", "--refresh-interval", "--endpoint-url", ".SH emulator",
		".SH ENVIRONMENT", "SECRETSFS_REFRESH_INTERVAL", ".SH FILES", "/etc/secretsfs/secretsfs.env", "mount.fuse.secretsfs\\fR(8)"} {
		if !bytes.Contains(page, []byte(want)) {
			t.Errorf("the man page lacks %q", want)
		}
	}
	if r.Name != "" || !r.ModTime.IsZero() {
		t.Errorf("the man page's gzip header records name %q, time %v (not reproducible)", r.Name, r.ModTime)
	}
	if _, err := exec.LookPath("man"); err == nil {
		out, err := exec.Command("man", "-l", "-P", "cat", gz.Name()).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "refresh-interval") {
			t.Errorf("man -l: %v:\n%s", err, out)
		}
	}
}

// Issue 10, item 7: the package has the man page of the mount helpers,
// mount.fuse.secretsfs(8), with mount.secretsfs(8) a link to it; it lists
// the fstab options (the mount flags, the helper's own) and the env-file
// syntax, and man renders it.
func TestIssue10_07_HelperManPage(t *testing.T) {
	needPackage(t)
	dir := filepath.Join(pkg.root, "usr/share/man/man8")
	for _, name := range []string{"mount.fuse.secretsfs.8.gz", "mount.secretsfs.8.gz"} {
		gz, err := os.Open(filepath.Join(dir, name)) // the link resolves
		if err != nil {
			t.Fatal(err)
		}
		r, err := gzip.NewReader(gz)
		if err != nil {
			t.Fatal(err)
		}
		page, err := io.ReadAll(r)
		gz.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{".TH mount.fuse.secretsfs 8", "mount.secretsfs", "ENVIRONMENT FILE", "EXIT STATUS",
			`\fBenv_file\fP`, `\fBmount_timeout\fP`, `\fBmax_stale\fP`, `\fBon_change_command\fP`, `\fBlog_file\fP`, "EnvironmentFile="} {
			if !bytes.Contains(page, []byte(want)) {
				t.Errorf("%s lacks %q", name, want)
			}
		}
		if r.Name != "" || !r.ModTime.IsZero() {
			t.Errorf("%s: the gzip header records name %q, time %v (not reproducible)", name, r.Name, r.ModTime)
		}
	}
	if _, err := exec.LookPath("man"); err == nil {
		out, err := exec.Command("man", "-l", "-P", "cat", filepath.Join(dir, "mount.secretsfs.8.gz")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "env_file=PATH") || !strings.Contains(string(out), "max_stale=DURATION") {
			t.Errorf("man -l: %v:\n%s", err, out)
		}
	}
}

// The bash completion asks the packaged binary and completes subcommands
// and flags.
func TestBashCompletion(t *testing.T) {
	needPackage(t)
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	script := filepath.Join(pkg.root, "usr/share/bash-completion/completions/secretsfs")
	for _, tc := range []struct{ words, want string }{
		{"secretsfs mo", "mount"},
		{"secretsfs mount --refresh", "--refresh-interval"},
	} {
		words := strings.Fields(tc.words)
		cmd := exec.Command("bash", "-c", `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _secretsfs; printf '%s\n' "${COMPREPLY[@]}"`, "bash", script)
		cmd.Args = append(cmd.Args, words...)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Join(pkg.root, "usr/bin")+":"+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains("\n"+string(out), "\n"+tc.want+"\n") {
			t.Errorf("completing %q: %v: %q, want %q among the candidates", tc.words, err, out, tc.want)
		}
	}
}

// systemdAnalyze returns the path of systemd-analyze, skipping the test when
// it is missing unless SECRETSFS_TEST_REQUIRE_SYSTEMD is set (CI).
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err == nil {
		return path
	}
	if os.Getenv("SECRETSFS_TEST_REQUIRE_SYSTEMD") != "" {
		t.Fatal("systemd-analyze required but not installed (apt-get install systemd)")
	}
	t.Skip("systemd-analyze is not installed")
	return ""
}

func TestUnitsVerify(t *testing.T) {
	needPackage(t)
	analyze := systemdAnalyze(t)
	// verify checks that ExecStart's program exists: point the copies at the
	// unpacked binary, changing nothing else.
	dir := t.TempDir()
	bin := filepath.Join(pkg.root, "usr", "bin", "secretsfs")
	var paths []string
	for _, name := range []string{"secretsfs.service", "secretsfs@.service"} {
		b, err := os.ReadFile(filepath.Join(pkg.root, "lib/systemd/system", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("ExecStart=/usr/bin/secretsfs mount ${SECRETSFS_MOUNTPOINT}\n")) {
			t.Fatalf("%s: ExecStart is not /usr/bin/secretsfs mount ${SECRETSFS_MOUNTPOINT}", name)
		}
		b = bytes.ReplaceAll(b, []byte("/usr/bin/secretsfs"), []byte(bin))
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	// An instance of the template, as systemctl would load it.
	inst := filepath.Join(dir, "secretsfs@app.service")
	if err := os.Link(paths[1], inst); err != nil {
		t.Fatal(err)
	}
	paths = append(paths, inst)
	// verify exits 0 on some mistakes (an unknown Type= value only warns), so
	// any output at all fails the test.
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no"}, paths...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The units' settings that matter, including the absence of every option
// that would give the service a private mount namespace and so hide the
// FUSE mount from the host.
func TestUnitSettings(t *testing.T) {
	needPackage(t)
	for _, tc := range []struct{ name, envFile, mountpoint string }{
		{"secretsfs.service", "-/etc/secretsfs/secretsfs.env", "/run/secretsfs/default"},
		{"secretsfs@.service", "/etc/secretsfs/%i.env", "/run/secretsfs/%i"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			settings := unitSettings(t, tc.name)
			for k, want := range map[string]string{
				"Type":                     "notify",
				"NotifyAccess":             "main",
				"Restart":                  "on-failure",
				"EnvironmentFile":          tc.envFile,
				"Environment":              "SECRETSFS_MOUNTPOINT=" + tc.mountpoint,
				"DeviceAllow":              "/dev/fuse rw",
				"DevicePolicy":             "closed",
				"CapabilityBoundingSet":    "CAP_SYS_ADMIN CAP_IPC_LOCK",
				"LimitMEMLOCK":             "infinity",
				"NoNewPrivileges":          "yes",
				"LimitCORE":                "0",
				"ExecReload":               "/bin/kill -HUP $MAINPID",
				"WantedBy":                 "multi-user.target",
				"SystemCallFilter":         "@system-service @mount",
				"RestrictNamespaces":       "yes",
				"RuntimeDirectoryPreserve": "yes",
			} {
				if got := strings.Join(settings[k], " | "); got != want {
					t.Errorf("%s=%q, want %q", k, got, want)
				}
			}
			for _, k := range []string{"ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts",
				"ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "ProtectProc",
				"ReadOnlyPaths", "ReadWritePaths", "InaccessiblePaths", "TemporaryFileSystem", "BindPaths",
				"BindReadOnlyPaths", "MountFlags", "RootDirectory", "User", "DynamicUser"} {
				if v, ok := settings[k]; ok {
					t.Errorf("%s=%s would hide the mount from the host (private mount namespace) or break mounting", k, v)
				}
			}
		})
	}
}

// unitSettings reads a packaged unit's settings, each key's values in order.
func unitSettings(t *testing.T, name string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pkg.root, "lib/systemd/system", name))
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("odd line %q", line)
		}
		settings[k] = append(settings[k], v)
	}
	return settings
}

// asUnitRuns is the command that runs argv with the capability bounding set
// and memlock limit systemd gives a service with these settings (without
// LimitMEMLOCK=, systemd's default of 8 MiB). Where this process may not
// raise the limit (no CAP_SYS_RESOURCE, as in some containers) it stays at
// most 8 MiB, which is logged.
func asUnitRuns(t *testing.T, settings map[string][]string, argv ...string) []string {
	t.Helper()
	for _, tool := range []string{"prlimit", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s (util-linux) is not installed", tool)
		}
	}
	const systemdDefault = "8388608"
	memlock := systemdDefault
	if v := settings["LimitMEMLOCK"]; len(v) > 0 {
		memlock = strings.Join(v, "")
		if memlock == "infinity" {
			memlock = "unlimited"
		}
	}
	if err := exec.Command("prlimit", "--memlock="+memlock+":"+memlock, "--", "true").Run(); err != nil {
		t.Logf("RLIMIT_MEMLOCK cannot be raised to %s here (%v); running with %s bytes", memlock, err, systemdDefault)
		memlock = systemdDefault
	}
	caps := "-all"
	for _, c := range strings.Fields(strings.Join(settings["CapabilityBoundingSet"], " ")) {
		caps += ",+" + strings.ToLower(strings.TrimPrefix(c, "CAP_"))
	}
	return append([]string{"prlimit", "--memlock=" + memlock + ":" + memlock, "--",
		"setpriv", "--bounding-set=" + caps, "--inh-caps=-all", "--"}, argv...)
}

// startEmulator serves the given secrets (name to SecretString) on
// loopback until the test ends.
func startEmulator(t *testing.T, secrets map[string]string) *emulator.Server {
	t.Helper()
	e := emulator.New()
	srv, err := emulator.Start(e, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	for name, value := range secrets {
		if _, err := e.CreateSecret(emulator.Secret{Name: name, SecretString: aws.String(value)}); err != nil {
			t.Fatal(err)
		}
	}
	return srv
}

var metricsAddr = regexp.MustCompile(`msg="serving metrics".* address=(\S+)`)

// TestIssue10_03_UnitsLetTheDaemonLockMemory: the daemon run with the
// capabilities and memlock limit the packaged units give it locks its
// memory (VmLck in /proc/PID/status) and says so on /metrics
// (secretsfs_memory_locked 1); run as the units did before (CAP_SYS_ADMIN
// only, systemd's default 8 MiB memlock limit) it cannot, and says so in a
// warning at start and on /metrics (0).
func TestIssue10_03_UnitsLetTheDaemonLockMemory(t *testing.T) {
	needPackage(t)
	testutil.RequireFUSE(t)
	srv := startEmulator(t, map[string]string{"app/key": "k"})
	before := map[string][]string{"CapabilityBoundingSet": {"CAP_SYS_ADMIN"}}
	for _, tc := range []struct {
		name     string
		settings map[string][]string
		locked   bool
	}{
		{"secretsfs.service", unitSettings(t, "secretsfs.service"), true},
		{"secretsfs@.service", unitSettings(t, "secretsfs@.service"), true},
		{"CAP_SYS_ADMIN only, default memlock limit", before, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, bin, mnt := fstabSetup(t, "secretsfs-memlock")
			argv := asUnitRuns(t, tc.settings, bin, "mount", "--endpoint-url", srv.URL(), "--secret", "app/key",
				"--metrics-listen", "127.0.0.1:0", mnt)
			d := testutil.StartDaemon(t, tc.name, mnt, argv, testutil.FakeAWSEnv(), func(d *testutil.Daemon) bool {
				return metricsAddr.MatchString(d.Stderr.String())
			})
			req, err := http.NewRequest(http.MethodGet, "http://"+metricsAddr.FindStringSubmatch(d.Stderr.String())[1]+"/metrics", nil)
			if err != nil {
				t.Fatal(err)
			}
			_, body := testutil.Do(t, req)
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.Cmd.Process.Pid))
			if err != nil {
				t.Fatal(err)
			}
			vmLck := regexp.MustCompile(`(?m)^VmLck:\s+(\d+) kB$`).FindStringSubmatch(string(status))
			if vmLck == nil {
				t.Fatalf("no VmLck in /proc/PID/status:\n%s", status)
			}
			warned := strings.Contains(d.Stderr.String(), "could not lock memory")
			if tc.locked {
				if vmLck[1] == "0" || !strings.Contains(body, "\nsecretsfs_memory_locked 1\n") || warned {
					t.Fatalf("VmLck %s kB, warning %v, /metrics:\n%s\nlog:\n%s", vmLck[1], warned, body, d.Stderr)
				}
				return
			}
			if vmLck[1] != "0" || !strings.Contains(body, "\nsecretsfs_memory_locked 0\n") || !warned {
				t.Fatalf("VmLck %s kB, warning %v, /metrics:\n%s\nlog:\n%s", vmLck[1], warned, body, d.Stderr)
			}
		})
	}
}

// daemonsOf returns the pids of processes running the program at bin, which
// no process outside this test runs.
func daemonsOf(t *testing.T, bin string) []int {
	return daemonsWhere(t, bin, func(int) bool { return true })
}

// daemonsHere returns the pids of processes running the program at bin in
// this process's mount namespace only: a path such as /usr/bin/secretsfs
// names another program in another namespace (the host's own secretsfs, or
// another test's sandbox), whose processes are none of this test's.
func daemonsHere(t *testing.T, bin string) []int {
	t.Helper()
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	return daemonsWhere(t, bin, func(pid int) bool {
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
		return err == nil && ns == self
	})
}

// daemonsWhere returns the pids of processes running the program at bin
// for which keep holds.
func daemonsWhere(t *testing.T, bin string, keep func(pid int) bool) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && exe == bin && keep(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// helperEnv is the environment mount(8) would give the helper, plus AWS
// settings that keep the daemon away from any real account.
func helperEnv() []string {
	return []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
	}
}

// The fstab helper, run as mount(8) runs it for an fstab line of type
// fuse.secretsfs, mounts, returns once the mount serves, and its daemon
// exits when the mount is unmounted.
func TestFstabHelperMounts(t *testing.T) {
	needPackage(t)
	testutil.RequireFUSE(t)
	srv := startEmulator(t, map[string]string{"app/db": `{"password":"p4ss"}`, "other/key": "k"})
	tmp, bin, mnt := fstabSetup(t, "secretsfs-fstab-test")
	logFile := filepath.Join(tmp, "daemon.log")
	envFile := filepath.Join(tmp, "secretsfs.env")
	if err := os.WriteFile(envFile, []byte("SECRETSFS_LOG_LEVEL=debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if testutil.MountType(mnt) == "fuse.secretsfs" {
			syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
		for _, pid := range daemonsOf(t, bin) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("daemon log:\n%s", b)
		}
	})

	// What mount -t fuse.secretsfs -o ... secretsfs MNT runs (mount(8) puts
	// the fstab options after -o, including generic ones it also handles).
	helper := helperLink(t, tmp, bin)
	opts := strings.Join([]string{
		"rw", "nosuid", "nodev", "noauto", "_netdev", "x-systemd.requires=network-online.target",
		"endpoint-url=" + srv.URL(), "prefix=app/", "refresh_interval=1s", "file_mode=0440",
		"allow_other", "env-file=" + envFile, "log-file=" + logFile, "mount-timeout=20",
	}, ",")
	cmd := exec.Command(helper, "secretsfs", mnt, "-o", opts)
	cmd.Env = helperEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", helper, err, out.String())
	}
	t.Logf("the helper returned after %v", time.Since(start))

	// It returned only once the mount was there.
	if !(testutil.MountType(mnt) == "fuse.secretsfs") {
		t.Fatalf("the helper returned 0 but %s is not mounted", mnt)
	}
	pids := daemonsOf(t, bin)
	if len(pids) != 1 {
		t.Fatalf("%d daemons run, want 1", len(pids))
	}
	got, err := os.ReadFile(filepath.Join(mnt, "app", "db", "password"))
	if err != nil || string(got) != "p4ss" {
		t.Fatalf("read app/db/password = %q, %v", got, err)
	}
	fi, err := os.Stat(filepath.Join(mnt, "app", "db", "password"))
	if err != nil || fi.Mode().Perm() != 0o440 {
		t.Fatalf("stat: %v, %v; want mode 0440 from file_mode=0440", fi.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "other")); !os.IsNotExist(err) {
		t.Fatalf("stat other = %v; prefix=app/ should hide it", err)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mi), mnt+" ") || !strings.Contains(string(mi), "allow_other") {
		t.Fatalf("allow_other did not reach the mount:\n%s", mi)
	}
	// The daemon is in its own session, detached from mount(8).
	if sid, err := unix.Getsid(pids[0]); err != nil || sid != pids[0] {
		t.Errorf("the daemon's session is %d (%v), want its own (%d)", sid, err, pids[0])
	}
	// The env file reached it.
	waitUntil(t, "a debug line in the daemon log", func() bool {
		b, _ := os.ReadFile(logFile)
		return bytes.Contains(b, []byte("level=DEBUG"))
	})

	// umount, as for an fstab mount: the daemon notices and exits.
	if err := syscall.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the daemon to exit after umount", func() bool { return len(daemonsOf(t, bin)) == 0 })
	if b, _ := os.ReadFile(logFile); bytes.Contains(b, []byte("p4ss")) {
		t.Fatal("a secret value reached the log")
	}
}

// helperLink makes the helper as the package installs it, a symbolic link
// named mount.fuse.secretsfs, pointing at the test's copy of the binary.
func helperLink(t *testing.T, tmp, bin string) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(pkg.root, "sbin", "mount.fuse.secretsfs"))
	if err != nil || target != "/usr/bin/secretsfs" {
		t.Fatalf("the packaged helper is not a link to /usr/bin/secretsfs: %q, %v", target, err)
	}
	dir := filepath.Join(tmp, "helper")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "mount.fuse.secretsfs")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// fstabSetup makes a temporary directory holding a copy of the packaged
// binary under a name only the calling test uses, so that its daemons are
// found by pid from /proc/PID/exe, and an empty mount point.
func fstabSetup(t *testing.T, name string) (tmp, bin, mnt string) {
	t.Helper()
	tmp = t.TempDir()
	bin = filepath.Join(tmp, name)
	data, err := os.ReadFile(filepath.Join(pkg.root, "usr/bin/secretsfs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	mnt = filepath.Join(tmp, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	return tmp, bin, mnt
}

// The helper's failures: what mount(8) shows and the exit status it expects
// (1 usage, 32 mount failure), with no daemon left behind.
func TestFstabHelperFailures(t *testing.T) {
	needPackage(t)
	tmp, bin, mnt := fstabSetup(t, "secretsfs-fstab-fail")
	helper := helperLink(t, tmp, bin)
	t.Cleanup(func() {
		for _, pid := range daemonsOf(t, bin) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	for _, tc := range []struct {
		name   string
		args   []string
		status int
		stderr string
	}{
		{"unknown option", []string{"none", mnt, "-o", "rw,colour=blue"}, 1, "unknown option colour=blue"},
		{"flag without value", []string{"none", mnt, "-o", "region"}, 1, "option region needs a value"},
		{"bad value on a switch", []string{"none", mnt, "-o", "allow_other=maybe"}, 1, "option allow_other=maybe: give allow_other alone, or allow_other=true"},
		{"missing mount point", []string{"none", filepath.Join(tmp, "nope"), "-o", "rw"}, 32, "does not exist"},
		{"too few arguments", []string{"none"}, 1, "usage:"},
		// The daemon rejects the value and exits 2; the helper reports it.
		{"daemon refuses", []string{"none", mnt, "-o", "refresh-interval=soon"}, 32, "refresh-interval"},
		{"fake (-f) with verbose", []string{"none", mnt, "-fv", "-o", "secret=a,secret=b"}, 0, "--secret=a --secret=b --fsname=none --syslog " + mnt},
		{"sloppy (-s)", []string{"none", mnt, "-s", "-f", "-o", "colour=blue"}, 0, ""},
		{"-t type is accepted", []string{"none", mnt, "-f", "-t", "fuse.secretsfs", "-o", "ro"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(helper, tc.args...)
			cmd.Env = helperEnv()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			status := 0
			if ee, ok := err.(*exec.ExitError); ok {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tc.status || !strings.Contains(stderr.String(), tc.stderr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", status, stderr.String(), tc.status, tc.stderr)
			}
			if pids := daemonsOf(t, bin); len(pids) > 0 {
				t.Fatalf("daemons %v left running", pids)
			}
		})
	}
}
