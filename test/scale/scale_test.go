package scale

import (
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// listInterval is the daemon's --list-interval: the least it accepts.
const listInterval = 10 * time.Second

// rotated is how many secrets the rotation changes.
const rotated = 50

// reference is the size of the mount the flatness is measured against.
const reference = 100

// calls counts API calls by operation.
type calls map[string]int

// ops are the operations the figures report, in the table's order.
func ops() []string {
	return []string{emulator.OpListSecrets, emulator.OpDescribeSecret, emulator.OpGetSecretValue, emulator.OpBatchGetSecretValue}
}

func since(after, before map[string]int) calls {
	c := calls{}
	for _, op := range ops() {
		c[op] = after[op] - before[op]
	}
	return c
}

// tally is the emulator's call counts at one moment, and the SDK's retries
// among them.
type tally struct{ all, retries map[string]int }

func snapshot(emu *emulator.Emulator) tally {
	return tally{all: emu.CallCounts(), retries: emu.RetryCounts()}
}

// firsts is the calls of op that were not retries.
func (t tally) firsts(op string) int { return t.all[op] - t.retries[op] }

// window is the calls made between two tallies: every request the emulator
// received, and the SDK's retries among them (attempts after the first of
// one call, after an answer the SDK failed to read or deemed retryable).
type window struct{ all, retries calls }

func between(after, before tally) window {
	return window{all: since(after.all, before.all), retries: since(after.retries, before.retries)}
}

// firsts is the window's calls less the retries: one per call the daemon
// made.
func (w window) firsts() calls {
	c := calls{}
	for _, op := range ops() {
		c[op] = w.all[op] - w.retries[op]
	}
	return c
}

// String is every call as List/Describe/Get/Batch, and the retries among
// them when there were any.
func (w window) String() string { return w.show(1) }

// show is String with every count divided by k.
func (w window) show(k int) string {
	s := w.all.per(k)
	if w.retries.sum() > 0 {
		s += " (retries " + w.retries.per(k) + ")"
	}
	return s
}

// retriesWithin fails t unless the window's SDK retries are at most one in
// ten of its calls, and one more: a retry now and then (the SDK asks again
// when it failed to read an answer), not a pattern. what names the window.
func retriesWithin(t *testing.T, what string, w window) {
	t.Helper()
	if r, c := w.retries.sum(), w.firsts().sum(); r > 1+c/10 {
		t.Errorf("%s: %d SDK retries for %d calls (%v), want at most %d", what, r, c, w, 1+c/10)
	}
}

// sum is every call of c.
func (c calls) sum() int {
	n := 0
	for _, op := range ops() {
		n += c[op]
	}
	return n
}

// values is the number of value calls: GetSecretValue and
// BatchGetSecretValue.
func (c calls) values() int { return c[emulator.OpGetSecretValue] + c[emulator.OpBatchGetSecretValue] }

// String is the counts as List/Describe/Get/Batch.
func (c calls) String() string {
	var parts []string
	for _, op := range ops() {
		parts = append(parts, fmt.Sprint(c[op]))
	}
	return strings.Join(parts, "/")
}

// per is the counts divided by k, as List/Describe/Get/Batch.
func (c calls) per(k int) string {
	var parts []string
	for _, op := range ops() {
		parts = append(parts, trimFloat(float64(c[op])/float64(k)))
	}
	return strings.Join(parts, "/")
}

func trimFloat(x float64) string {
	if x == math.Trunc(x) {
		return fmt.Sprint(int64(x))
	}
	return fmt.Sprintf("%.1f", x)
}

// settings say how much to measure at each size.
type settings struct {
	sweeps    int // timed warm sweeps over every file
	intervals int // list intervals watched with nothing changing
	// expiredFiles is the least number of files a sweep with the names
	// expired reads (sweepExpired).
	expiredFiles int
}

// figures are what one size measured.
type figures struct {
	n         int
	startup   time.Duration // exec to serving
	find      time.Duration // find MNT -type f, cold
	found     int           // files find printed
	findCalls window
	// Warm open+read+close per file, median of the sweeps, and the same on
	// the reference mount in the sweeps next to them; the flatness is the
	// median of the sweeps' ratios.
	perFile, refPerFile time.Duration
	flatness            float64
	// The same with every name expired in the kernel before it is read
	// again (sweepExpired), on both mounts: a LOOKUP per open on both, the
	// flatness the target applies to.
	expPerFile, expRefPerFile time.Duration
	expFlatness               float64
	rss, peak                 uint64
	idleRSS                   uint64 // RSS after the idle intervals
	// With nothing changing: intervals listing passes watched, from the
	// last page of one pass to the last page of the intervals-th after it.
	intervals int
	idle      time.Duration
	idleCalls window
	idleCPU   float64       // percent of one core
	gapCPU    float64       // percent of one core between two listing passes
	passCPU   time.Duration // CPU time per list interval, nothing changing
	// The rotation: whether every file showed the new values, and when.
	rotationSeen  bool
	rotation      time.Duration
	rotationCalls window
}

// pages is the ListSecrets pages of one listing pass of n secrets.
func pages(n int) int { return (n + 99) / 100 }

// maxBatch is how many secrets one BatchGetSecretValue call fetches at most.
const maxBatch = 20

// coldBatches is the BatchGetSecretValue calls a walk of n cold secrets
// needs when each directory's secrets are fetched together, 20 a call:
// about n/20.
func coldBatches(n int) int {
	b := 0
	for left := n; left > 0; left -= perDir {
		b += (min(left, perDir) + maxBatch - 1) / maxBatch
	}
	return b
}

// TestScale measures a secretsfs mount of N secrets at each size of
// SECRETSFS_SCALE (N = 100 alone without it) and prints the table; see the
// package documentation.
func TestScale(t *testing.T) {
	testutil.RequireFUSE(t)
	heavy := os.Getenv("SECRETSFS_SCALE") != ""
	ns := sizes(t, "SECRETSFS_SCALE", 100)
	cfg := settings{sweeps: 1, intervals: 1, expiredFiles: 1000}
	if heavy {
		cfg = settings{sweeps: 3, intervals: 3, expiredFiles: minSweep}
	}
	if s := sizes(t, "SECRETSFS_SCALE_SWEEPS"); len(s) == 1 {
		cfg.sweeps = s[0]
	}
	bins := t.TempDir()
	testutil.BuildBinaries(t, bins, ".")
	bin := filepath.Join(bins, "secretsfs")
	// The reference of the flatness: a mount of 100 secrets, warm, that
	// lives through the whole test.
	ref := startMount(t, bin, reference)
	if err := readAll(ref.dir, ref.paths, ref.want, make([]byte, 4096)); err != nil {
		t.Fatalf("reference mount: %v", err)
	}
	ref.hold(t)
	var all []figures
	for _, n := range ns {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			if raceEnabled && n > 1000 {
				t.Skipf("N = %d: the emulator is too slow under the race detector; run without -race", n)
			}
			all = append(all, measure(t, startMount(t, bin, n), ref, cfg))
		})
	}
	if len(all) == 0 {
		t.Fatal("no size was measured")
	}
	cells := tableCells(all)
	for _, row := range cells {
		if len(row) != 2+len(all) || slices.Contains(row[2:], "") || row[0] == "" {
			t.Errorf("table row %q has an empty cell or the wrong number of cells", row)
		}
	}
	t.Logf("list interval %v; targets at N = 10 000 (issue 12); calls as ListSecrets/DescribeSecret/GetSecretValue/BatchGetSecretValue\n%s", listInterval, render(cells))
}

// mount is a secretsfs daemon serving n secrets of its own emulator.
type mount struct {
	n       int
	emu     *emulator.Emulator
	pid     int
	dir     string
	paths   []string          // every file, relative to dir, in order
	want    map[string]string // every file's content
	startup time.Duration     // exec to serving
	held    *os.File          // its first file, open (hold)
}

// startMount seeds an emulator with n secrets and mounts them with the
// secretsfs binary bin, in listing mode; both are stopped in tb's cleanup.
func startMount(tb testing.TB, bin string, n int) *mount {
	tb.Helper()
	m := &mount{n: n, emu: emulator.New(), want: make(map[string]string, n*filesPerSecret())}
	for i := range n {
		v := secretValue(i, 0)
		if _, err := m.emu.CreateSecret(emulator.Secret{Name: secretName(i), SecretString: &v}); err != nil {
			tb.Fatal(err)
		}
		files := secretFiles(i, 0)
		for _, name := range append([]string{"AWSCURRENT"}, keys()...) {
			p := secretName(i) + "/" + name
			m.want[p] = files[p]
			m.paths = append(m.paths, p)
		}
	}
	srv, err := emulator.Start(m.emu, "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })
	if m.dir, err = filepath.EvalSymlinks(tb.TempDir()); err != nil {
		tb.Fatal(err)
	}
	argv := []string{bin, "mount", "--endpoint-url", srv.URL(),
		"--list-interval", listInterval.String(), "--max-cache-size", fmt.Sprint(max(n, 1024))}
	argv = append(append(argv, strings.Fields(os.Getenv("SECRETSFS_SCALE_FLAGS"))...), m.dir)
	start := time.Now()
	d := testutil.StartDaemon(tb, "secretsfs", m.dir, argv, testutil.FakeAWSEnv(), func(d *testutil.Daemon) bool {
		return strings.Contains(d.Stdout.String(), "secretsfs: serving")
	})
	m.startup = time.Since(start)
	m.pid = d.Cmd.Process.Pid
	return m
}

// measure measures every figure of m, fresh from startMount; ref is the
// warm reference mount of the flatness.
func measure(t *testing.T, m *mount, ref *mount, cfg settings) figures {
	f := figures{n: m.n, startup: m.startup}
	emu, n, mnt, pid := m.emu, m.n, m.dir, m.pid

	// find on the cold mount, as a child process.
	before := snapshot(emu)
	start := time.Now()
	out, err := exec.Command("find", mnt, "-type", "f").Output()
	f.find = time.Since(start)
	f.findCalls = between(snapshot(emu), before)
	if err != nil {
		t.Fatalf("find %s -type f: %v", mnt, err)
	}
	checkFound(t, mnt, string(out), m.want)
	f.found = strings.Count(string(out), "\n")

	// Every file once, then timed sweeps, each next to a sweep of the
	// reference mount reading as many files, in turn first and second.
	buf := make([]byte, 4096)
	if err := readAll(mnt, m.paths, m.want, buf); err != nil {
		t.Fatalf("first read of every file: %v", err)
	}
	// Each sweep reads at least minSweep files, the reference as many.
	laps := max(1, minSweep/len(m.paths))
	refLaps := max(1, laps*len(m.paths)/len(ref.paths))
	m.hold(t)
	// With the names expired: each mount for at least cfg.expiredFiles
	// files, in whole laps.
	expLaps := max(1, (cfg.expiredFiles+len(m.paths)-1)/len(m.paths))
	expRefLaps := max(1, (cfg.expiredFiles+len(ref.paths)-1)/len(ref.paths))
	var perFile, refPerFile, expPerFile, expRefPerFile []time.Duration
	var ratios, expRatios []float64
	for r := range cfg.sweeps {
		var d [4]time.Duration
		for i := range 4 {
			switch (i + r) % 4 {
			case 0:
				d[0] = sweep(t, m, laps, buf)
			case 1:
				d[1] = sweep(t, ref, refLaps, buf)
			case 2:
				d[2] = sweepExpired(t, m, expLaps, buf)
			case 3:
				d[3] = sweepExpired(t, ref, expRefLaps, buf)
			}
		}
		perFile, refPerFile = append(perFile, d[0]), append(refPerFile, d[1])
		expPerFile, expRefPerFile = append(expPerFile, d[2]), append(expRefPerFile, d[3])
		ratios = append(ratios, float64(d[0])/float64(d[1]))
		expRatios = append(expRatios, float64(d[2])/float64(d[3]))
	}
	f.perFile, f.refPerFile = testutil.Median(perFile), testutil.Median(refPerFile)
	f.flatness = testutil.MedianFloat(ratios)
	f.expPerFile, f.expRefPerFile = testutil.Median(expPerFile), testutil.Median(expRefPerFile)
	f.expFlatness = testutil.MedianFloat(expRatios)
	if f.rss, f.peak, err = memory(pid); err != nil {
		t.Fatal(err)
	}

	watchIdle(t, emu, pid, n, cfg.intervals, &f)
	if f.idleRSS, f.peak, err = memory(pid); err != nil {
		t.Fatal(err)
	}
	rotate(t, emu, mnt, n, buf, &f)
	t.Logf("N = %d: %+v", n, f)

	if n <= 1000 {
		checkTargets(t, f)
	}
	return f
}

// checkTargets checks the targets that are counts rather than
// timings, at a size where a loaded machine cannot blur them. Counts are
// the daemon's calls (first attempts); the SDK's retries are allowed now
// and then (retriesWithin).
//   - A cold find fetches each directory's values in batches of 20: about
//     n/20 BatchGetSecretValue, no DescribeSecret, no GetSecretValue.
//   - With nothing changing: no call but ListSecrets, one page per 100
//     secrets per interval; an extra listing pass would show as passes
//     closer together than the interval.
//   - A rotation of 50 secrets shows in every file within two list
//     intervals, for at most 50 value calls in all (retries too) and no
//     DescribeSecret.
func checkTargets(t *testing.T, f figures) {
	t.Helper()
	if c := f.findCalls.firsts(); c[emulator.OpDescribeSecret]+c[emulator.OpGetSecretValue] != 0 || c[emulator.OpBatchGetSecretValue] != coldBatches(f.n) {
		t.Errorf("a cold find of %d secrets made calls %v, want %d BatchGetSecretValue, no DescribeSecret, no GetSecretValue", f.n, f.findCalls, coldBatches(f.n))
	}
	retriesWithin(t, "a cold find", f.findCalls)
	if c := f.idleCalls.firsts(); f.idleCalls.all[emulator.OpDescribeSecret]+f.idleCalls.all.values() != 0 || c[emulator.OpListSecrets] != f.intervals*pages(f.n) {
		t.Errorf("with nothing changing, over %d list intervals: calls %v, want %d ListSecrets and nothing else", f.intervals, f.idleCalls, f.intervals*pages(f.n))
	}
	retriesWithin(t, "with nothing changing", f.idleCalls)
	if f.idle < time.Duration(f.intervals)*listInterval*8/10 {
		t.Errorf("%d listing passes in %v: more than one per %v", f.intervals, f.idle, listInterval)
	}
	if !f.rotationSeen || f.rotation > 2*listInterval {
		t.Errorf("a rotation of %d secrets: seen in every file %v after %v, want within %v", rotated, f.rotationSeen, f.rotation, 2*listInterval)
	}
	if c := f.rotationCalls.all; c.values() > rotated || c[emulator.OpDescribeSecret] != 0 {
		t.Errorf("a rotation of %d secrets cost %v calls, want at most %d value calls and no DescribeSecret", rotated, f.rotationCalls, rotated)
	}
	retriesWithin(t, "the rotation", f.rotationCalls)
}

// checkFound checks that find printed every file of want under mnt, and
// nothing else.
func checkFound(t *testing.T, mnt, out string, want map[string]string) {
	t.Helper()
	seen := make(map[string]bool, len(want))
	var extra []string
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		rel := strings.TrimPrefix(line, mnt+"/")
		if _, ok := want[rel]; !ok || seen[rel] {
			extra = append(extra, rel)
		}
		seen[rel] = true
	}
	var missing []string
	for p := range want {
		if !seen[p] {
			missing = append(missing, p)
		}
	}
	if len(extra)+len(missing) > 0 {
		slices.Sort(missing)
		t.Fatalf("find -type f: %d files missing (first: %v), %d unexpected or repeated (first: %v)",
			len(missing), missing[:min(5, len(missing))], len(extra), extra[:min(5, len(extra))])
	}
}

// sweep reads every file of m laps times, checking each, and returns the
// time per file. The first files are read once untimed before: a daemon
// that was idle while the other mount was read takes a moment to run at
// full speed again.
func sweep(t *testing.T, m *mount, laps int, buf []byte) time.Duration {
	t.Helper()
	if err := readAll(m.dir, m.paths[:min(len(m.paths), settleFiles)], m.want, buf); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range laps {
		if err := readAll(m.dir, m.paths, m.want, buf); err != nil {
			t.Fatal(err)
		}
	}
	return time.Since(start) / time.Duration(laps*len(m.paths))
}

// entryExpiry is how long after a file was last opened sweepExpired opens
// it again: in the default per-open mode the kernel trusts a name the
// daemon answered for 1 s (fs, root.attrTimeout), so an open after that
// sends a LOOKUP again.
const entryExpiry = 1200 * time.Millisecond

// sweepExpired reads every file of m laps times, as sweep does, but opens
// each file only after its name expired in the kernel: a lap starts at
// least entryExpiry after the previous one started (a lap over 5 000 files
// or more takes that long by itself; the reference's 500 files, 0.1 s, do
// not), so every open of every lap costs a LOOKUP as well, on any mount.
// It returns the time per file of the laps alone. While it waits it reads
// through m's held handle (the daemon answers each read; no name is looked
// up), at least settleFiles times, so that the daemon is as busy just
// before a lap as sweep's settling makes it.
func sweepExpired(t *testing.T, m *mount, laps int, buf []byte) time.Duration {
	t.Helper()
	var total time.Duration
	lapStart := time.Now() // names read before this call: expired entryExpiry from now
	for range laps {
		for i := 0; i < settleFiles || time.Since(lapStart) < entryExpiry; i++ {
			if _, err := m.held.ReadAt(buf, 0); err != nil && err != io.EOF {
				t.Fatal(err)
			}
		}
		lapStart = time.Now()
		if err := readAll(m.dir, m.paths, m.want, buf); err != nil {
			t.Fatal(err)
		}
		total += time.Since(lapStart)
	}
	return total / time.Duration(laps*len(m.paths))
}

// hold opens m's first file for sweepExpired's reads through a handle,
// closed in tb's cleanup (before the daemon stops).
func (m *mount) hold(tb testing.TB) {
	tb.Helper()
	f, err := os.Open(filepath.Join(m.dir, m.paths[0]))
	if err != nil {
		tb.Fatal(err)
	}
	m.held = f
	tb.Cleanup(func() { f.Close() })
}

// settleFiles is how many files a sweep reads untimed before it starts.
const settleFiles = 200

// minSweep is the least number of files a timed sweep reads, so that one
// preemption on a busy machine does not decide a figure.
const minSweep = 5000

// readAll opens, reads and closes every file of paths under mnt once, and
// checks its content.
func readAll(mnt string, paths []string, want map[string]string, buf []byte) error {
	for _, p := range paths {
		n, err := testutil.OpenReadClose(mnt+"/"+p, buf)
		if err != nil {
			return err
		}
		if string(buf[:n]) != want[p] {
			return fmt.Errorf("%s: read %d bytes, not its %d bytes", p, n, len(want[p]))
		}
	}
	return nil
}

// watchIdle watches the daemon with nothing changing for k listing passes,
// from the end of one (no ListSecrets call for a while) to the end of the
// k-th after it, and records the calls and CPU time meanwhile.
func watchIdle(t *testing.T, emu *emulator.Emulator, pid, n, k int, f *figures) {
	t.Helper()
	now := snapshot(emu)
	// The pass under way, or the next, ends the reads' after-effects (the
	// kernel forgets the names read once they were idle for 3 s); the
	// measure starts at the end of the pass after it.
	settled, _, _ := waitPass(t, emu, n, now.firsts(emulator.OpListSecrets), 3*listInterval)
	c0, last0, at0 := waitPass(t, emu, n, settled.firsts(emulator.OpListSecrets), 3*listInterval)
	cpu0, err := cpuTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Until the next pass starts the daemon has nothing to do at all.
	atNext := waitCall(t, emu, c0.all[emulator.OpListSecrets], 2*listInterval)
	cpuNext, err := cpuTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	target := c0.firsts(emulator.OpListSecrets) + k*pages(n)
	ck, lastK, atK := waitPass(t, emu, n, target-1, time.Duration(k+2)*listInterval)
	cpuK, err := cpuTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	f.intervals = k
	f.idle = lastK.Sub(last0)
	f.idleCalls = between(ck, c0)
	f.idleCPU = 100 * float64(cpuK-cpu0) / float64(atK.Sub(at0))
	f.gapCPU = 100 * float64(cpuNext-cpu0) / float64(atNext.Sub(at0))
	f.passCPU = (cpuK - cpu0) / time.Duration(k)
}

// waitCall waits until the emulator has received more than after
// ListSecrets requests, and returns when it saw that.
func waitCall(t *testing.T, emu *emulator.Emulator, after int, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for ; ; time.Sleep(5 * time.Millisecond) {
		if snapshot(emu).all[emulator.OpListSecrets] > after {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no ListSecrets call beyond %d within %v", after, within)
		}
	}
}

// quiet is how long no ListSecrets call comes between listing passes; the
// pages of one pass come one after the other, much sooner.
const quiet = 2 * time.Second

// waitPass waits until the daemon has called ListSecrets more than after
// times (first attempts: the SDK's retries are not the daemon's calls) and
// then no ListSecrets request came for quiet: the end of a listing pass. It
// returns the call counts then, when the last page was seen, and the time
// now. It waits at most within, and a second a page of n secrets more.
func waitPass(t *testing.T, emu *emulator.Emulator, n, after int, within time.Duration) (counts tally, lastPage, now time.Time) {
	t.Helper()
	within += time.Duration(pages(n)) * time.Second
	deadline := time.Now().Add(within)
	seen := -1
	for ; ; time.Sleep(5 * time.Millisecond) {
		counts, now = snapshot(emu), time.Now()
		if c := counts.all[emulator.OpListSecrets]; c != seen {
			seen, lastPage = c, now
		}
		if counts.firsts(emulator.OpListSecrets) > after && now.Sub(lastPage) >= quiet {
			return counts, lastPage, now
		}
		if now.After(deadline) {
			t.Fatalf("no listing pass ended (ListSecrets calls beyond %d, then none for %v) within %v", after, quiet, within)
		}
	}
}

// rotate puts a new value to rotated secrets spread over the n, and
// waits, at most two list intervals and 2 s, until every file of each
// shows it.
func rotate(t *testing.T, emu *emulator.Emulator, mnt string, n int, buf []byte, f *figures) {
	t.Helper()
	pending := make(map[int]map[string]string, rotated)
	before := snapshot(emu)
	start := time.Now()
	for j := range rotated {
		i := j * n / rotated
		v := secretValue(i, 1)
		if _, err := emu.PutSecretValue(secretName(i), emulator.Version{SecretString: &v}); err != nil {
			t.Fatal(err)
		}
		pending[i] = secretFiles(i, 1)
	}
	deadline := start.Add(2*listInterval + 2*time.Second)
	for len(pending) > 0 && time.Now().Before(deadline) {
		for i, files := range pending {
			done := true
			for p, want := range files {
				m, err := testutil.OpenReadClose(mnt+"/"+p, buf)
				if err != nil {
					t.Fatalf("while waiting for the rotation: %v", err)
				}
				if string(buf[:m]) != want {
					done = false
					break
				}
			}
			if done {
				delete(pending, i)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.rotation = time.Since(start)
	f.rotationSeen = len(pending) == 0
	f.rotationCalls = between(snapshot(emu), before)
}

const mib = 1 << 20

func micros(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond)) }

// row is one line of the table: a figure's name, the target at
// N = 10 000, and how to show the figure.
type row struct {
	name, target string
	show         func(figures) string
}

func rows() []row {
	secs := func(d time.Duration) string { return fmt.Sprintf("%.1f", d.Seconds()) }
	return []row{
		{"secrets (files)", "10000 (50000)", func(f figures) string { return fmt.Sprintf("%d (%d)", f.n, f.n*filesPerSecret()) }},
		{"exec to serving (s)", "", func(f figures) string { return secs(f.startup) }},
		{"find MNT -type f, cold (s)", "<= 15", func(f figures) string { return secs(f.find) }},
		{"  files found", "50000", func(f figures) string { return fmt.Sprint(f.found) }},
		{"  calls during find", "Batch 500, no Describe", func(f figures) string { return f.findCalls.String() }},
		{"warm open+read+close per file (µs)", "", func(f figures) string { return micros(f.perFile) }},
		{fmt.Sprintf("  same, reference mount of %d (µs)", reference), "", func(f figures) string { return micros(f.refPerFile) }},
		{"  raw flatness (per file / reference)", "-", func(f figures) string { return fmt.Sprintf("%.2f", f.flatness) }},
		{"names expired: open+read+close per file (µs)", "", func(f figures) string { return micros(f.expPerFile) }},
		{fmt.Sprintf("  same, reference mount of %d (µs)", reference), "", func(f figures) string { return micros(f.expRefPerFile) }},
		{"flatness, names expired (per file / reference)", "<= 1.5", func(f figures) string { return fmt.Sprintf("%.2f", f.expFlatness) }},
		{"RSS right after reading every file (MiB)", "-", func(f figures) string { return fmt.Sprintf("%.1f", float64(f.rss)/mib) }},
		{"peak RSS (MiB)", "<= 96", func(f figures) string { return fmt.Sprintf("%.1f", float64(f.peak)/mib) }},
		{"RSS after the idle intervals (MiB)", "<= 64", func(f figures) string { return fmt.Sprintf("%.1f", float64(f.idleRSS)/mib) }},
		{"idle: calls per list interval", "100/0/0/0", func(f figures) string { return f.idleCalls.show(f.intervals) }},
		{"idle: listing passes per list interval", "1", func(f figures) string {
			return fmt.Sprintf("%.2f", float64(f.intervals)*float64(listInterval)/float64(f.idle))
		}},
		{"idle: daemon CPU (% of a core)", "< 2", func(f figures) string { return fmt.Sprintf("%.2f", f.idleCPU) }},
		{"  CPU per list interval (ms)", "-", func(f figures) string { return fmt.Sprintf("%.0f", float64(f.passCPU)/float64(time.Millisecond)) }},
		{"  CPU between two listing passes (% of a core)", "-", func(f figures) string { return fmt.Sprintf("%.2f", f.gapCPU) }},
		{fmt.Sprintf("rotation of %d: every file shows it (s)", rotated), fmt.Sprintf("<= %.0f", (2 * listInterval).Seconds()), func(f figures) string {
			if !f.rotationSeen {
				return "not in " + secs(f.rotation)
			}
			return secs(f.rotation)
		}},
		{"  calls until then", "Get+Batch <= 50, no Describe", func(f figures) string { return f.rotationCalls.String() }},
	}
}

// tableCells is the table: a header, then one line per figure with the
// target and one column per size.
func tableCells(all []figures) [][]string {
	head := []string{"figure", "target"}
	for _, f := range all {
		head = append(head, fmt.Sprintf("N=%d", f.n))
	}
	cells := [][]string{head}
	for _, r := range rows() {
		line := []string{r.name, r.target}
		if line[1] == "" {
			line[1] = "-"
		}
		for _, f := range all {
			line = append(line, r.show(f))
		}
		cells = append(cells, line)
	}
	return cells
}

func render(cells [][]string) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, line := range cells {
		fmt.Fprintln(w, strings.Join(line, "\t")+"\t")
	}
	w.Flush()
	return b.String()
}
