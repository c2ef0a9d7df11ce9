package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// countLines counts the lines of a file equal to want.
func countLines(t *testing.T, file, want string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(data), "\n") {
		if l == want {
			n++
		}
	}
	return n
}

// stays checks that cond keeps holding for d: the way to see that nothing
// more happens after a debounce.
func stays(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if !cond() {
			t.Fatalf("%s no longer holds", what)
		}
	}
}

// TestOnChangeRunsOncePerRotation: a rotation changes several files of the
// default layout; the hook runs once for them, from /, naming each file
// whose bytes changed and no other.
func TestOnChangeRunsOncePerRotation(t *testing.T) {
	w := newWorld(t)
	w.createString("hook/db", `{"user":"app","password":"pw-one"}`)
	out := filepath.Join(t.TempDir(), "changes.log")
	d := w.startDaemon("--refresh-interval", "1s", "--secret", "hook/db",
		"--on-change-command", `{ echo "run $SECRETSFS_SECRET_ID $(pwd)"; echo "$SECRETSFS_PATHS"; } >> `+out,
		"--on-change-debounce", "300ms")
	password, user, current := d.path("hook/db/password"), d.path("hook/db/user"), d.path("hook/db/AWSCURRENT")
	if got := mustRead(t, password); got != "pw-one" {
		t.Fatalf("password = %q", got)
	}
	// Several files changed: no single-file variables.
	run := "run  /"
	for i, pw := range []string{"pw-two", "pw-three"} {
		w.put("hook/db", `{"user":"app","password":"`+pw+`"}`)
		eventually(t, 15*time.Second, fmt.Sprintf("on_change for rotation %d", i+1), func() bool {
			return countLines(t, out, run) == i+1 && countLines(t, out, password) == i+1 && countLines(t, out, current) == i+1
		})
		if got := mustRead(t, password); got != pw {
			t.Fatalf("password after rotation %d = %q", i+1, got)
		}
	}
	// One run per rotation (that no more follow within a debounce is the
	// fake-clock unit tests' job, mount/hooks); the user key's bytes never
	// changed, so it was never named.
	eventually(t, 10*time.Second, "one run per rotation, naming the password and AWSCURRENT files", func() bool {
		ok := countLines(t, out, run) == 2 && countLines(t, out, password) == 2 && countLines(t, out, current) == 2
		if !ok {
			data, _ := os.ReadFile(out)
			t.Logf("hook log:\n%s", data)
		}
		return ok
	})
	if n := countLines(t, out, user); n != 0 {
		t.Errorf("the unchanged user file was named %d times", n)
	}
}

// usr1Counter starts a process that appends a line "usr1" to the returned
// file each time it receives SIGUSR1, and stops it when the test ends.
func usr1Counter(t *testing.T) (pid int, got string) {
	t.Helper()
	got = filepath.Join(t.TempDir(), "got")
	sleeper := exec.Command("/bin/sh", "-c", `trap 'echo usr1 >> `+got+`' USR1; echo ready; while :; do sleep 0.05; done`)
	stdout, err := sleeper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	if s, _ := bufio.NewReader(stdout).ReadString('\n'); s != "ready\n" {
		t.Fatalf("the signalled process said %q", s)
	}
	return sleeper.Process.Pid, got
}

func TestOnChangeSignalGoesToThePidInThePidFile(t *testing.T) {
	w := newWorld(t)
	w.createString("sig/key", "k1")
	pid, got := usr1Counter(t)
	pidFile := testutil.WritePIDFile(t, pid, 0o600, os.Geteuid())
	d := w.startDaemon("--refresh-interval", "1s", "--secret", "sig/key",
		"--on-change-signal", "USR1", "--on-change-pidfile", pidFile, "--on-change-debounce", "100ms")
	mustRead(t, d.path("sig/key/AWSCURRENT"))
	w.put("sig/key", "k2")
	eventually(t, 15*time.Second, "the signal", func() bool { return countLines(t, got, "usr1") >= 1 })
	// AWSCURRENT and AWSPREVIOUS both changed: one signal for both.
	stays(t, time.Second, "one signal", func() bool { return countLines(t, got, "usr1") == 1 })
}

// TestDefect9_15_OnChangeRefusesAPidFileOthersCouldWrite: a pid file that
// another user owns, or that others may write, is not trusted: nothing is
// signalled, and the log names the pid file and the fix.
func TestDefect9_15_OnChangeRefusesAPidFileOthersCouldWrite(t *testing.T) {
	requireRoot(t)
	w := newWorld(t)
	for i, c := range []struct {
		mode os.FileMode
		uid  int
		fix  string
	}{{0o644, 1000, "is owned by uid 1000"}, {0o666, 0, "chmod go-w"}} {
		id := fmt.Sprintf("sigbad/key%d", i)
		w.createString(id, "k1")
		pid, got := usr1Counter(t)
		pidFile := testutil.WritePIDFile(t, pid, c.mode, c.uid)
		d := w.startDaemon("--refresh-interval", "1s", "--secret", id,
			"--on-change-signal", "USR1", "--on-change-pidfile", pidFile, "--on-change-debounce", "100ms")
		mustRead(t, d.path(id+"/AWSCURRENT"))
		w.put(id, "k2")
		eventually(t, 15*time.Second, "the warning naming the pid file and the fix", func() bool {
			log := d.Stderr.String()
			return strings.Contains(log, "on_change failed") && strings.Contains(log, "pid file "+pidFile) && strings.Contains(log, c.fix)
		})
		if n := countLines(t, got, "usr1"); n != 0 {
			t.Errorf("mode %04o, uid %d: %d signals sent through the untrusted pid file", c.mode, c.uid, n)
		}
	}
}

func TestRefreshAttributeShowsANewValueAtOnce(t *testing.T) {
	w := newWorld(t)
	w.createString("refresh/db", `{"password":"old"}`)
	w.createString("refresh/other", "o1")
	d := w.startDaemon() // the default refresh interval: an hour
	file := d.path("refresh/db/password")
	if got := mustRead(t, file); got != "old" {
		t.Fatalf("read = %q", got)
	}
	w.put("refresh/db", `{"password":"new"}`)
	if got := mustRead(t, file); got != "old" {
		t.Fatalf("before the refresh the file already reads %q; the test proves nothing", got)
	}
	if _, err := unix.Getxattr(file, "user.secretsfs.refresh", make([]byte, 128)); err != nil {
		t.Fatalf("getfattr refresh: %v", err)
	}
	if got := mustRead(t, file); got != "new" {
		t.Fatalf("right after getfattr the file reads %q, want new", got)
	}
	// Reading the attribute names the version now served; setting it is a
	// write, refused by the read-only mount.
	other := d.path("refresh/other/AWSCURRENT")
	mustRead(t, other)
	vid := w.put("refresh/other", "o2")
	if err := unix.Setxattr(other, "user.secretsfs.refresh", []byte("1"), 0); errnoOf(err) != syscall.EROFS {
		t.Fatalf("setfattr refresh: %v, want EROFS", err)
	}
	buf := make([]byte, 128)
	n, err := unix.Getxattr(other, "user.secretsfs.refresh", buf)
	if err != nil || string(buf[:n]) != vid {
		t.Fatalf("getfattr refresh = %q, %v; want %q", buf[:n], err, vid)
	}
	if got := mustRead(t, other); got != "o2" {
		t.Fatalf("after getfattr the file reads %q", got)
	}
}

// Another user looping getfattr of user.secretsfs.refresh makes a bounded
// number of DescribeSecret calls: concurrent requests share one, one secret
// is refreshed at most once a second this way, and while it backs off after
// errors only the mount's owner (or root) may call sooner.
func TestDefect9_08_NonOwnerRefreshLoopMakesBoundedCalls(t *testing.T) {
	requireRoot(t)
	w := newWorld(t)
	w.createString("amp/db", `{"password":"p1"}`)
	d := w.startDaemonAt(publicMountPoint(t), nil, "--allow-other", "--dir-mode", "0555", "--file-mode", "0444", "--prefix", "amp/")
	file := d.path("amp/db/password")
	if got := mustRead(t, file); got != "p1" {
		t.Fatalf("read = %q", got)
	}
	// loops runs 4 readers as uid 1000, each reading the attribute for a
	// while, and returns the DescribeSecret calls they caused, how long
	// they took and how many refreshes they asked for.
	loops := func() (calls int, took time.Duration, asked int) {
		before := w.emu.Calls(emulator.OpDescribeSecret)
		start := time.Now()
		outs := make(chan string, 4)
		for range 4 {
			go func() {
				cmd := childCmd("refresh 1500 " + file)
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1000, Gid: 1000}}
				out, err := cmd.CombinedOutput()
				if err != nil {
					out = append(out, err.Error()...)
				}
				outs <- string(out)
			}()
		}
		for range 4 {
			out := <-outs
			var n, failed int
			if _, err := fmt.Sscanf(out, "refreshes %d failed %d", &n, &failed); err != nil {
				t.Fatalf("reader as uid 1000 said %q", out)
			}
			asked += n
		}
		return w.emu.Calls(emulator.OpDescribeSecret) - before, time.Since(start), asked
	}
	// bound is what the daemon may call in took: once a second for the
	// readers, plus a refresh of its own at each end.
	bound := func(took time.Duration) int { return int(took/time.Second) + 3 }

	calls, took, asked := loops()
	t.Logf("healthy: %d refreshes asked for by uid 1000 in %v made %d DescribeSecret calls", asked, took, calls)
	if asked < 8 {
		t.Fatalf("the readers asked for %d refreshes; the test proves nothing", asked)
	}
	if calls > bound(took) {
		t.Errorf("healthy: %d refreshes asked for by uid 1000 in %v made %d DescribeSecret calls, want at most %d", asked, took, calls, bound(took))
	}

	// In an outage the secret backs off: the readers' requests fail at
	// once without a call of their own (they do not wait for the retry
	// time); the daemon retries with the backoff, each refresh being up to
	// 3 attempts of the SDK's retryer.
	w.emu.InjectFault(emulator.OpDescribeSecret, emulator.Fault{ErrorType: "InternalServiceError", SecretID: "amp/db"})
	if _, err := unix.Getxattr(file, "user.secretsfs.refresh", make([]byte, 128)); errnoOf(err) != syscall.EIO {
		t.Fatalf("the owner's refresh in the outage: %v, want EIO", err)
	}
	calls, took, asked = loops()
	t.Logf("outage: %d refreshes asked for by uid 1000 in %v made %d DescribeSecret calls", asked, took, calls)
	if asked < 40 {
		t.Errorf("outage: uid 1000 could ask for only %d refreshes in %v: its requests waited for the retry time", asked, took)
	}
	if calls > 3*bound(took) {
		t.Errorf("outage: %d refreshes asked for by uid 1000 in %v made %d DescribeSecret calls, want at most %d", asked, took, calls, 3*bound(took))
	}
	w.emu.ClearFaults()
	if got := mustRead(t, file); got != "p1" {
		t.Fatalf("read after the outage = %q", got)
	}
}

func TestMaxStaleTurnsAnOldValueIntoEIO(t *testing.T) {
	w := newWorld(t)
	w.createString("ms/db", "v1")
	d := w.startDaemon("--refresh-interval", "1s", "--retry-delay-max", "1s", "--max-stale", "3s", "--secret", "ms/db")
	file := d.path("ms/db/AWSCURRENT")
	if got := mustRead(t, file); got != "v1" {
		t.Fatalf("read = %q", got)
	}
	if err := w.srv.SetRefusing(true); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the stale value to be served", func() bool {
		s, err := read(file)
		return err == nil && s == "v1" && xattr(t, file, "user.secretsfs.stale") == "true"
	})
	eventually(t, 15*time.Second, "EIO once stale beyond --max-stale", func() bool {
		_, err := read(file)
		return errnoOf(err) == syscall.EIO
	})
	if err := w.srv.SetRefusing(false); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the value after recovery", func() bool {
		s, err := read(file)
		return err == nil && s == "v1"
	})
}

var metricsAddr = regexp.MustCompile(`msg="serving metrics".* address=(\S+)`)

// metricsURL waits for the daemon to log where it serves metrics.
func metricsURL(t *testing.T, d *daemon) string {
	t.Helper()
	var addr string
	eventually(t, 10*time.Second, "the metrics address in the log", func() bool {
		m := metricsAddr.FindStringSubmatch(d.Stderr.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	return "http://" + addr
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.Do(t, req)
}

// scrape returns the metric families the daemon serves.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value returns the value of the metric of a family whose labels include
// want; -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func TestMetricsAndHealthzByScraping(t *testing.T) {
	w := newWorld(t)
	w.createString("met/a", `{"k":"v"}`)
	w.createString("met/b", "b")
	// Listed, so that reading it goes through the cache; a name found only
	// by its path whose DescribeSecret fails takes no place in the cache
	// (else any user could make the mount unhealthy with one stat).
	w.createString("met/denied", "d")
	d := w.startDaemon("--metrics-listen", "127.0.0.1:0", "--prefix", "met/")
	base := metricsURL(t, d)

	mustRead(t, d.path("met/a/k"))
	mustRead(t, d.path("met/a/k"))
	mustRead(t, d.path("met/b/AWSCURRENT"))
	read(d.path("met/a/nokey"))
	unix.Getxattr(d.path("met/a/k"), "user.other", make([]byte, 16))
	// The listing keeps the listed secrets' metadata fresh (no
	// DescribeSecret): two forced refreshes make two.
	unix.Getxattr(d.path("met/a/k"), "user.secretsfs.refresh", make([]byte, 64))
	unix.Getxattr(d.path("met/b/AWSCURRENT"), "user.secretsfs.refresh", make([]byte, 64))

	fams := scrape(t, base)
	checks := []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"secretsfs_cache_hits_total", nil, 1},
		{"secretsfs_cache_misses_total", nil, 1},
		{"secretsfs_api_calls_total", map[string]string{"operation": "DescribeSecret", "outcome": "ok"}, 2},
		{"secretsfs_api_calls_total", map[string]string{"operation": "GetSecretValue", "outcome": "ok"}, 2},
		{"secretsfs_api_calls_total", map[string]string{"operation": "ListSecrets", "outcome": "ok"}, 1},
		{"secretsfs_api_call_duration_seconds", map[string]string{"operation": "GetSecretValue"}, 2},
		{"secretsfs_refresh_duration_seconds", map[string]string{"outcome": "ok"}, 2},
		{"secretsfs_fuse_operations_total", map[string]string{"operation": "open", "errno": "OK"}, 3},
		{"secretsfs_fuse_operations_total", map[string]string{"operation": "read", "errno": "OK"}, 1},
		{"secretsfs_fuse_operations_total", map[string]string{"operation": "lookup", "errno": "ENOENT"}, 1},
		{"secretsfs_fuse_operations_total", map[string]string{"operation": "getxattr", "errno": "ENODATA"}, 1},
		{"secretsfs_secrets_served", nil, 3},
		{"secretsfs_stale_secrets", nil, 0},
		{"secretsfs_healthy", nil, 1},
	}
	for _, c := range checks {
		if got := value(fams, c.name, c.labels); got < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, got, c.min)
		}
	}
	if got := value(fams, "secretsfs_secrets_served", nil); got != 3 {
		t.Errorf("secretsfs_secrets_served = %v, want 3", got)
	}

	code, body := httpGet(t, base+"/healthz")
	var rep struct {
		Healthy    bool `json:"healthy"`
		Mounted    bool `json:"mounted"`
		Unservable []struct {
			SecretID string `json:"secret_id"`
		} `json:"unservable"`
	}
	if err := json.Unmarshal([]byte(body), &rep); err != nil || code != 200 || !rep.Healthy || !rep.Mounted {
		t.Fatalf("/healthz = %d %s (%v), want 200 and healthy", code, body, err)
	}

	// A secret that is read and cannot be served makes the mount unhealthy
	// (one only looked up does not count: its value was never asked for).
	w.emu.InjectFault(emulator.OpGetSecretValue, emulator.Fault{ErrorType: "AccessDeniedException", SecretID: "met/denied"})
	if _, err := read(d.path("met/denied/AWSCURRENT")); errnoOf(err) != syscall.EACCES {
		t.Fatalf("reading the denied secret: %v, want EACCES", err)
	}
	code, body = httpGet(t, base+"/healthz")
	if err := json.Unmarshal([]byte(body), &rep); err != nil || code != 503 || rep.Healthy || len(rep.Unservable) != 1 || rep.Unservable[0].SecretID != "met/denied" {
		t.Fatalf("/healthz with a denied secret = %d %s, want 503 naming met/denied", code, body)
	}
	if got := value(scrape(t, base), "secretsfs_healthy", nil); got != 0 {
		t.Errorf("secretsfs_healthy = %v while unhealthy", got)
	}
}

func TestMetricsRefuseANonLoopbackAddress(t *testing.T) {
	out, err := exec.Command(binary, "mount", "--metrics-listen", "0.0.0.0:9464", t.TempDir()).CombinedOutput()
	var exit *exec.ExitError
	if !errorsAs(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "--metrics-allow-remote") {
		t.Fatalf("exit %v, output %q; want exit 2 naming --metrics-allow-remote", err, out)
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

type auditEntry struct {
	Time      string `json:"time"`
	Event     string `json:"event"`
	Path      string `json:"path"`
	SecretID  string `json:"secret_id"`
	Stage     string `json:"stage"`
	Key       string `json:"key"`
	VersionID string `json:"version_id"`
	Stale     bool   `json:"stale"`
	Result    string `json:"result"`
	PID       int    `json:"pid"`
	TID       int    `json:"tid"`
	UID       int    `json:"uid"`
	GID       int    `json:"gid"`
	Exe       string `json:"exe"`
}

func auditEntries(t *testing.T, file string) []auditEntry {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditEntry
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if l == "" {
			continue
		}
		var e auditEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		out = append(out, e)
	}
	return out
}

func TestAuditLineNamesTheReadingProcess(t *testing.T) {
	w := newWorld(t)
	vid := w.createString("aud/db", `{"password":"audited"}`)
	logFile := filepath.Join(t.TempDir(), "audit.log")
	d := w.startDaemon("--audit-log", logFile)
	file := d.path("aud/db/password")

	cmd := childCmd("read " + file)
	out, err := cmd.Output()
	if err != nil || parseChild(t, string(out)) != 0 {
		t.Fatalf("child read: %v %s", err, out)
	}
	var found *auditEntry
	eventually(t, 5*time.Second, "the audit line", func() bool {
		for _, e := range auditEntries(t, logFile) {
			if e.Path == file {
				found = &e
				return true
			}
		}
		return false
	})
	e := *found
	if e.PID != cmd.Process.Pid || e.Exe != testBinary {
		t.Errorf("audit names pid %d exe %q, want the child %d %q", e.PID, e.Exe, cmd.Process.Pid, testBinary)
	}
	if e.Event != "open" || e.SecretID != "aud/db" || e.Stage != "AWSCURRENT" || e.Key != "password" ||
		e.VersionID != vid || e.Stale || e.Result != "ok" || e.UID != os.Geteuid() || e.GID != os.Getegid() || e.TID == 0 {
		t.Errorf("audit line %+v", e)
	}
	if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
		t.Errorf("time %q: %v", e.Time, err)
	}
	info, err := os.Stat(logFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v, %v; want 0600", info.Mode(), err)
	}
}

// TestDefect9_20_BrokenTemplateIsAudited: a mapped file whose template fails
// is refused when the kernel looks it up, before any open reaches the
// daemon; the audit log still gets a line with the errno.
func TestDefect9_20_BrokenTemplateIsAudited(t *testing.T) {
	w := newWorld(t)
	w.createString("aud/tmpl", `{"host":"db.internal"}`)
	dir := t.TempDir()
	cfg, logFile := filepath.Join(dir, "m.yaml"), filepath.Join(dir, "audit.log")
	yaml := "files:\n  - path: app/broken.ini\n    template: |\n      host = {{ key \"aud/tmpl\" \"hots\" }}\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d := w.startDaemon("--config", cfg, "--audit-log", logFile)
	file := d.path("app/broken.ini")
	if _, err := read(file); errnoOf(err) != syscall.EIO {
		t.Fatalf("read of the broken template: %v, want EIO", err)
	}
	var found []auditEntry
	eventually(t, 5*time.Second, "an audit line for the refused file", func() bool {
		found = found[:0]
		for _, e := range auditEntries(t, logFile) {
			if e.Path == file {
				found = append(found, e)
			}
		}
		return len(found) > 0
	})
	e := found[0]
	if e.Event != "lookup" || e.Result != "EIO" || e.SecretID != "aud/tmpl" || e.VersionID != "" || e.PID != os.Getpid() {
		t.Errorf("audit line %+v; want a lookup refused with EIO by this process (%d)", e, os.Getpid())
	}
}

func TestAuditLogIsRefusedInKernelCacheMode(t *testing.T) {
	out, err := exec.Command(binary, "mount", "--audit-log", "-", "--kernel-cache", t.TempDir()).CombinedOutput()
	var exit *exec.ExitError
	if !errorsAs(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "--audit-log") || !strings.Contains(string(out), "per-open") {
		t.Fatalf("exit %v, output %q; want exit 2 explaining --audit-log needs the per-open mode", err, out)
	}
}

// TestNoSecretValueInLogsOrAuditLines runs the daemon through reads,
// rotations (one made by the emulator's own rotation, whose password the
// test never sees), mapped and templated files (one failing), change hooks
// that dump their whole environment, forced refreshes, an outage with
// --max-stale and metrics scrapes, with debug logs and the audit log on. It
// then collects every value Secrets Manager ever held in the run and looks
// for each in all the daemon wrote.
func TestNoSecretValueInLogsOrAuditLines(t *testing.T) {
	w := newWorld(t)
	w.createString("leak/str", "str-VALUE-7f3a91")
	w.createString("leak/json", `{"user":"u-VALUE-5c2e","password":"pw-VALUE-91bd","port":5432}`)
	w.createString("leak/rot", "rot-VALUE-aa01")
	w.createBinary("leak/bin", []byte("bin-VALUE-0042\x00\xff"))
	dir := t.TempDir()
	auditFile, hookEnv, cfg := filepath.Join(dir, "audit.log"), filepath.Join(dir, "hook.env"), filepath.Join(dir, "m.yaml")
	mapping := `files:
  - {path: mapped/app.env, secret: leak/json, format: env}
  - {path: mapped/password, secret: leak/json, key: password}
  - path: mapped/settings.ini
    template: |
      user = {{ key "leak/json" "user" }}
      password = {{ key "leak/json" "password" | shellquote }}
  - path: mapped/broken.ini
    template: '{{ key "leak/json" "passwrod" }}'
`
	if err := os.WriteFile(cfg, []byte(mapping), 0o600); err != nil {
		t.Fatal(err)
	}
	d := w.startDaemon("--log-level", "debug", "--refresh-interval", "1s", "--retry-delay-max", "1s",
		"--max-stale", "2s", "--audit-log", auditFile, "--metrics-listen", "127.0.0.1:0",
		"--config", cfg, "--expose-all",
		"--on-change-command", `{ env; echo ----; } >> `+hookEnv, "--on-change-debounce", "100ms", "--prefix", "leak/")
	base := metricsURL(t, d)

	for _, p := range []string{"leak/str/AWSCURRENT", "leak/json/user", "leak/json/password", "leak/json/AWSCURRENT",
		"leak/rot/AWSCURRENT", "leak/bin/AWSCURRENT", "mapped/app.env", "mapped/password", "mapped/settings.ini"} {
		mustRead(t, d.path(p))
		xattr(t, d.path(p), "user.secretsfs.version_id")
	}
	read(d.path("mapped/broken.ini"))
	for _, v := range []string{"rot-VALUE-bb02", "rot-VALUE-cc03"} {
		w.put("leak/rot", v)
		eventually(t, 15*time.Second, "the rotation", func() bool {
			s, _ := read(d.path("leak/rot/AWSCURRENT"))
			return s == v
		})
	}
	// The emulator's own rotation: a new random password.
	if _, err := w.sm.RotateSecret(w.ctx, &secretsmanager.RotateSecretInput{SecretId: aws.String("leak/json"), RotateImmediately: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the rotated password", func() bool {
		s, _ := read(d.path("leak/json/password"))
		return s != "" && s != "pw-VALUE-91bd"
	})
	eventually(t, 10*time.Second, "the change hooks", func() bool {
		// One run per rotation, each naming the file in SECRETSFS_PATHS
		// (the first path on the variable's line, the others on their own).
		runsFor := func(p string) int {
			return countLines(t, hookEnv, "SECRETSFS_PATHS="+d.path(p)) + countLines(t, hookEnv, d.path(p))
		}
		return runsFor("leak/rot/AWSCURRENT") == 2 && runsFor("leak/json/password") == 1
	})
	if _, err := unix.Getxattr(d.path("leak/str/AWSCURRENT"), "user.secretsfs.refresh", make([]byte, 128)); err != nil {
		t.Fatal(err)
	}
	read(d.path("leak/none/AWSCURRENT"))
	w.emu.InjectFault(emulator.AllOperations, emulator.Fault{ErrorType: "InternalServiceError"})
	eventually(t, 15*time.Second, "EIO beyond --max-stale during the outage", func() bool {
		_, err := read(d.path("leak/json/password"))
		return errnoOf(err) == syscall.EIO
	})
	read(d.path("mapped/settings.ini"))
	_, metricsBody := httpGet(t, base+"/metrics")
	_, healthBody := httpGet(t, base+"/healthz")
	w.emu.ClearFaults()
	eventually(t, 15*time.Second, "recovery", func() bool {
		_, err := read(d.path("leak/json/password"))
		return err == nil
	})
	_, metricsAfter := httpGet(t, base+"/metrics")
	d.Stop(t)

	values := createdValues(t, w)
	if len(values) < 12 {
		t.Fatalf("only %d values collected: %q", len(values), values)
	}
	audit, err := os.ReadFile(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(audit), "\n"); n < 12 {
		t.Fatalf("only %d audit lines", n)
	}
	hooks, _ := os.ReadFile(hookEnv)
	outputs := map[string]string{
		"stderr": d.Stderr.String(), "stdout": d.Stdout.String(), "audit log": string(audit),
		"hook environment": string(hooks), "metrics": metricsBody + metricsAfter, "healthz": healthBody,
	}
	if !strings.Contains(outputs["stderr"], "level=DEBUG") || !strings.Contains(outputs["stderr"], "mapped/broken.ini") {
		t.Fatal("no debug lines or no failing template in the log: the test would prove little")
	}
	if !strings.Contains(outputs["hook environment"], "SECRETSFS_PATHS=") {
		t.Fatal("the hooks did not dump their environment: the test would prove little")
	}
	for what, text := range outputs {
		for _, v := range values {
			if strings.Contains(text, v) {
				t.Errorf("the %s contains the secret value %q", what, v)
			}
		}
	}
}

// createdValues returns every value Secrets Manager held during the run,
// every version of every secret, as the strings a leak would show: whole
// values, the string leaves of JSON values, and binary values raw, in
// base64 and in hex. Strings shorter than 6 bytes are left out (they occur
// in any text).
func createdValues(t *testing.T, w *world) []string {
	t.Helper()
	var out []string
	add := func(s string) {
		if len(s) >= 6 && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	var leaves func(v any)
	leaves = func(v any) {
		switch x := v.(type) {
		case string:
			add(x)
		case map[string]any:
			for _, e := range x {
				leaves(e)
			}
		case []any:
			for _, e := range x {
				leaves(e)
			}
		}
	}
	list, err := w.sm.ListSecrets(w.ctx, &secretsmanager.ListSecretsInput{IncludePlannedDeletion: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list.SecretList {
		versions, err := w.sm.ListSecretVersionIds(w.ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: s.ARN, IncludeDeprecated: aws.Bool(true)})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range versions.Versions {
			got, err := w.sm.GetSecretValue(w.ctx, &secretsmanager.GetSecretValueInput{SecretId: s.ARN, VersionId: v.VersionId})
			if err != nil {
				t.Fatal(err)
			}
			if got.SecretString != nil {
				add(*got.SecretString)
				var j any
				if json.Unmarshal([]byte(*got.SecretString), &j) == nil {
					leaves(j)
				}
			}
			if b := got.SecretBinary; b != nil {
				add(string(b))
				add(base64.StdEncoding.EncodeToString(b))
				add(hex.EncodeToString(b))
			}
		}
	}
	return out
}

// TestOnChangeOfMappedFiles: a mapped file's own on_change and the
// top-level one run once per change of the file's bytes; a file whose
// bytes a rotation leaves alone does not fire.
func TestOnChangeOfMappedFiles(t *testing.T) {
	w := newWorld(t)
	w.createString("mhook/db", `{"user":"app","password":"pw1"}`)
	dir := t.TempDir()
	own, top := filepath.Join(dir, "own.log"), filepath.Join(dir, "top.log")
	cfg := filepath.Join(dir, "m.yaml")
	yaml := `on_change:
  command: ["/bin/sh", "-c", "echo \"$SECRETSFS_PATH\" >> ` + top + `"]
  debounce: 200ms
files:
  - path: conf/password
    secret: mhook/db
    key: password
    on_change:
      command: 'echo "$SECRETSFS_PATH" >> ` + own + `'
      debounce: 200ms
  - path: conf/user
    secret: mhook/db
    key: user
`
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	d := w.startDaemon("--config", cfg, "--refresh-interval", "1s")
	password, user := d.path("conf/password"), d.path("conf/user")
	if got := mustRead(t, password); got != "pw1" {
		t.Fatalf("read = %q", got)
	}
	for i, pw := range []string{"pw2", "pw3"} {
		w.put("mhook/db", `{"user":"app","password":"`+pw+`"}`)
		eventually(t, 15*time.Second, fmt.Sprintf("the file's own on_change, rotation %d", i+1), func() bool {
			return countLines(t, own, password) == i+1
		})
	}
	stays(t, time.Second, "two runs of the file's own hook and none of the top-level one", func() bool {
		return countLines(t, own, password) == 2 && countLines(t, top, password) == 0 && countLines(t, top, user) == 0
	})
	w.put("mhook/db", `{"user":"app2","password":"pw3"}`)
	eventually(t, 15*time.Second, "the top-level on_change for the user file", func() bool {
		return countLines(t, top, user) == 1
	})
	stays(t, time.Second, "no run for the unchanged password", func() bool { return countLines(t, own, password) == 2 })
}

// TestDefect9_18_OnChangeWithoutFurtherReads: the application reads its
// password once at start-up and never again; the rotation after that is
// still noticed and runs --on-change-command within the refresh interval.
func TestDefect9_18_OnChangeWithoutFurtherReads(t *testing.T) {
	w := newWorld(t)
	w.createString("once/db", "pw-one")
	out := filepath.Join(t.TempDir(), "changes.log")
	d := w.startDaemon("--refresh-interval", "1s", "--secret", "once/db",
		"--on-change-command", `echo "$SECRETSFS_PATHS" >> `+out, "--on-change-debounce", "100ms")
	current := d.path("once/db/AWSCURRENT")
	if got := mustRead(t, current); got != "pw-one" {
		t.Fatalf("read = %q", got)
	}
	// A refresh after the read: the one a read earns anyway (explicit mode
	// lists the name once per refresh interval instead of DescribeSecret).
	refreshes := func() int { return w.emu.Calls("DescribeSecret") + w.emu.Calls("ListSecrets") }
	described := refreshes()
	eventually(t, 15*time.Second, "a background refresh after the read", func() bool {
		return refreshes() > described
	})
	w.put("once/db", "pw-two")
	eventually(t, 15*time.Second, "the hook, with no further read", func() bool {
		return countLines(t, out, current) == 1
	})
}
