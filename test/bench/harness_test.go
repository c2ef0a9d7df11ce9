package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// The targets the loop measures.
const (
	targetTmpfs         = "tmpfs"
	targetMinimalDirect = "minimal-directio"
	targetMinimalKeep   = "minimal-keepcache"
	targetPerOpen       = "per-open"
	targetMinimalNoOpen = "minimal-noopen"
	targetKernelCache   = "kernel-cache"
)

// secretName is the benchmark's secret; filePath is its file under a mount,
// and the file's path on every other target too.
const (
	secretName = "bench/secret"
	filePath   = "bench/secret/AWSCURRENT"
)

// tmpfsMagic is statfs's f_type of a tmpfs.
const tmpfsMagic = 0x01021994

// ratioSpec is a ratio the benchmark reports: of's time over against's.
type ratioSpec struct {
	of, against string
}

// name is the ratio's name, also its metric unit.
func (r ratioSpec) name() string { return r.of + "/" + r.against }

// ratioSpecs are the reported ratios, those the targets are about first.
func ratioSpecs() []ratioSpec {
	return []ratioSpec{
		{targetKernelCache, targetTmpfs},
		{targetPerOpen, targetMinimalDirect},
		{targetKernelCache, targetMinimalNoOpen},
		{targetPerOpen, targetMinimalKeep},
	}
}

// target is a file the loop opens, reads and closes.
type target struct {
	name string
	path string
	pid  int // the serving daemon's process id; 0 for tmpfs
}

// config says how much to measure.
type config struct {
	// warmUp iterations per target before any measurement; the first
	// makes the daemons fetch the secret.
	warmUp int
	// rounds of measurement; in each, every target runs iterations times.
	rounds     int
	iterations int
}

// env is one set of targets: the emulator, the daemons and the tmpfs file.
// Everything is stopped and removed by the cleanups of the tb that started
// it.
type env struct {
	emu     *emulator.Emulator
	want    []byte
	targets []target
}

// result is one target's measurement.
type result struct {
	name    string
	perOp   []time.Duration // per round
	median  time.Duration
	fastest time.Duration
	// daemonCPU is the median over the rounds of the CPU time the
	// serving daemon used per iteration (all its threads); 0 for tmpfs.
	daemonCPU time.Duration
}

// ratio is a ratio of two targets' times: the median of the per-round
// ratios.
type ratio struct {
	name  string
	value float64
}

// report is what one measurement found.
type report struct {
	results []result
	ratios  []ratio
	// apiCalls is how many Secrets Manager calls the daemons made while
	// the loops ran.
	apiCalls int
}

// secretValue is the benchmark's 100-byte secret.
func secretValue() []byte {
	v := make([]byte, 100)
	for i := range v {
		v[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i%36]
	}
	return v
}

// startEnv builds the binaries, starts the emulator with the secret, the two
// secretsfs daemons and the three minimalfs daemons, creates the tmpfs file,
// and warms every target up.
func startEnv(tb testing.TB, warmUp int) *env {
	tb.Helper()
	testutil.RequireFUSE(tb)
	bins := tb.TempDir()
	testutil.BuildBinaries(tb, bins, ".", "./test/bench/minimalfs")

	e := &env{emu: emulator.New(), want: secretValue()}
	s := string(e.want)
	if _, err := e.emu.CreateSecret(emulator.Secret{Name: secretName, SecretString: &s}); err != nil {
		tb.Fatal(err)
	}
	srv, err := emulator.Start(e.emu, "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { srv.Close() })

	e.targets = append(e.targets, target{name: targetTmpfs, path: tmpfsFile(tb, e.want)})
	secretsfs := filepath.Join(bins, "secretsfs")
	minimalfs := filepath.Join(bins, "minimalfs")
	for _, d := range []struct {
		name string
		argv []string
	}{
		{targetMinimalDirect, []string{minimalfs, "-mode", "directio", "-path", filePath, "-content", s}},
		{targetMinimalKeep, []string{minimalfs, "-mode", "keepcache", "-path", filePath, "-content", s}},
		{targetPerOpen, []string{secretsfs, "mount", "--endpoint-url", srv.URL(), "--secret", secretName}},
		{targetMinimalNoOpen, []string{minimalfs, "-mode", "noopen", "-path", filePath, "-content", s}},
		{targetKernelCache, []string{secretsfs, "mount", "--endpoint-url", srv.URL(), "--secret", secretName, "--kernel-cache"}},
	} {
		mnt := mountPoint(tb)
		p := testutil.StartDaemon(tb, d.name, mnt, append(d.argv, mnt), testutil.FakeAWSEnv(), nil)
		e.targets = append(e.targets, target{name: d.name, path: filepath.Join(mnt, filePath), pid: p.Cmd.Process.Pid})
	}

	buf := make([]byte, 4096)
	for _, t := range e.targets {
		if err := loop(t.path, warmUp, e.want, buf); err != nil {
			tb.Fatalf("%s: %v", t.name, err)
		}
	}
	return e
}

// tmpfsFile writes the secret to a file on a tmpfs: under /dev/shm, or as
// root on a tmpfs mounted for the test.
func tmpfsFile(tb testing.TB, data []byte) string {
	tb.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "secretsfs-bench-")
	if err == nil {
		tb.Cleanup(func() { os.RemoveAll(dir) })
		if !isTmpfs(dir) {
			dir = ""
		}
	} else {
		dir = ""
	}
	if dir == "" {
		if os.Geteuid() != 0 {
			tb.Skip("no tmpfs at /dev/shm, and mounting one needs root")
		}
		dir = mountPoint(tb)
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
			tb.Fatalf("mount tmpfs on %s: %v", dir, err)
		}
		tb.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	}
	path := filepath.Join(dir, filePath)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o400); err != nil {
		tb.Fatal(err)
	}
	return path
}

func isTmpfs(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Type == tmpfsMagic
}

// mountPoint returns a new empty directory, by its path without symlinks,
// as /proc/self/mountinfo shows mount points.
func mountPoint(tb testing.TB) string {
	tb.Helper()
	dir, err := filepath.EvalSymlinks(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	return dir
}

// loop opens, reads and closes path n times, and checks that every read
// returns want.
func loop(path string, n int, want, buf []byte) error {
	for i := 0; i < n; i++ {
		m, err := testutil.OpenReadClose(path, buf)
		if err != nil {
			return err
		}
		if !bytes.Equal(buf[:m], want) {
			return fmt.Errorf("read %s: got %d bytes %q, want %d bytes %q", path, m, buf[:m], len(want), want)
		}
	}
	return nil
}

// measure runs cfg.rounds rounds; in each, every target runs the loop
// cfg.iterations times, starting with another target each round.
func (e *env) measure(cfg config) (report, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	perOp := make(map[string][]time.Duration)
	cpuPerOp := make(map[string][]time.Duration)
	buf := make([]byte, 4096)
	before := totalCalls(e.emu)
	for r := 0; r < cfg.rounds; r++ {
		for i := range e.targets {
			t := e.targets[(r+i)%len(e.targets)]
			runtime.GC()
			if err := settle(t.path, e.want, buf); err != nil {
				return report{}, fmt.Errorf("%s: %w", t.name, err)
			}
			cpuBefore, err := cpuTime(t.pid)
			if err != nil {
				return report{}, err
			}
			start := time.Now()
			err = loop(t.path, cfg.iterations, e.want, buf)
			elapsed := time.Since(start)
			if err != nil {
				return report{}, fmt.Errorf("%s: %w", t.name, err)
			}
			cpuAfter, err := cpuTime(t.pid)
			if err != nil {
				return report{}, err
			}
			n := time.Duration(cfg.iterations)
			perOp[t.name] = append(perOp[t.name], elapsed/n)
			cpuPerOp[t.name] = append(cpuPerOp[t.name], (cpuAfter-cpuBefore)/n)
		}
	}
	rep := report{apiCalls: totalCalls(e.emu) - before}
	for _, t := range e.targets {
		runs := perOp[t.name]
		rep.results = append(rep.results, result{
			name: t.name, perOp: runs, median: testutil.Median(runs), fastest: slices.Min(runs),
			daemonCPU: testutil.Median(cpuPerOp[t.name]),
		})
	}
	for _, spec := range ratioSpecs() {
		of, against := perOp[spec.of], perOp[spec.against]
		per := make([]float64, len(of))
		for i := range of {
			per[i] = float64(of[i]) / float64(against[i])
		}
		rep.ratios = append(rep.ratios, ratio{name: spec.name(), value: testutil.MedianFloat(per)})
	}
	return rep, nil
}

// settleTime is how long the loop runs untimed before each measurement.
const settleTime = 10 * time.Millisecond

// settle runs the loop on path, untimed, for settleTime: the previous
// target's daemon may still be answering the RELEASEs of its last opens
// (the kernel sends them asynchronously) and spinning down, and without this
// the target measured after it pays for that (measured: about 10% on the
// kernel-cache targets).
func settle(path string, want, buf []byte) error {
	for end := time.Now().Add(settleTime); time.Now().Before(end); {
		if err := loop(path, 10, want, buf); err != nil {
			return err
		}
	}
	return nil
}

// cpuTime is the CPU time process pid has used so far, summed over its
// threads (/proc/PID/task/TID/schedstat); 0 for pid 0. Time spent handling
// a RELEASE after the loop ended counts towards the next measurement of the
// same target, which evens out over the rounds.
func cpuTime(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("threads of pid %d: %v", pid, err)
	}
	var sum time.Duration
	for _, path := range tasks {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the thread exited
		}
		var ns int64
		if _, err := fmt.Sscan(string(b), &ns); err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// totalCalls is the number of Secrets Manager calls the emulator answered.
func totalCalls(e *emulator.Emulator) int {
	n := 0
	for _, c := range e.CallCounts() {
		n += c
	}
	return n
}

// result returns the result of the named target.
func (r report) result(name string) result {
	for _, x := range r.results {
		if x.name == name {
			return x
		}
	}
	return result{}
}

// table formats the report for a log, in at most 9 lines (go test shows
// only the first 10 lines a benchmark logs).
func (r report) table() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	tmpfs := r.result(targetTmpfs).median
	fmt.Fprintln(w, "target\tmedian ns/op\tfastest round ns/op\tmedian / tmpfs\tdaemon CPU ns/op\t")
	for _, x := range r.results {
		fmt.Fprintf(w, "%s\t%d\t%d\t%.2f\t%d\t\n", x.name, x.median.Nanoseconds(), x.fastest.Nanoseconds(),
			float64(x.median)/float64(tmpfs), x.daemonCPU.Nanoseconds())
	}
	w.Flush()
	b.WriteString("ratios (median of the per-round ratios):")
	for i, x := range r.ratios {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %s %.2f", x.name, x.value)
	}
	fmt.Fprintf(&b, "\nSecrets Manager calls during the loops: %d\n", r.apiCalls)
	return b.String()
}
