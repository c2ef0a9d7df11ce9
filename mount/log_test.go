package mount

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/secretsfs/secretsfs/test/testutil"
)

// fakeSyslog records the messages sent to syslog with their severity.
type fakeSyslog struct {
	mu     sync.Mutex
	lines  []string // "SEVERITY message"
	closed bool
}

func (f *fakeSyslog) add(sev, m string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lines = append(f.lines, sev+" "+m)
	return nil
}
func (f *fakeSyslog) Debug(m string) error   { return f.add("debug", m) }
func (f *fakeSyslog) Info(m string) error    { return f.add("info", m) }
func (f *fakeSyslog) Warning(m string) error { return f.add("warning", m) }
func (f *fakeSyslog) Err(m string) error     { return f.add("err", m) }
func (f *fakeSyslog) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeSyslog) text() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.lines, "\n")
}

// --syslog sends every record at its severity, without a time stamp
// (syslog adds its own), in the configured format.
func TestSyslogSendsEachLevelAtItsSeverity(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			sl := &fakeSyslog{}
			cfg := DefaultConfig()
			cfg.Syslog, cfg.LogFormat, cfg.LogLevel = true, format, "info"
			var stderr syncBuffer
			dl, err := openLog(cfg, &stderr, func() (syslogWriter, error) { return sl, nil })
			if err != nil {
				t.Fatal(err)
			}
			log := dl.With("component", "cache").WithGroup("g")
			log.Debug("hidden")
			log.Info("serving", "n", 1)
			log.Warn("stale")
			log.Error("broken")
			dl.close()
			lines := strings.Split(sl.text(), "\n")
			if len(lines) != 3 || !strings.HasPrefix(lines[0], "info ") || !strings.HasPrefix(lines[1], "warning ") || !strings.HasPrefix(lines[2], "err ") {
				t.Fatalf("syslog got:\n%s", sl.text())
			}
			for _, l := range lines {
				if strings.Contains(l, "time") || !strings.Contains(l, "component") || strings.HasSuffix(l, "\n") {
					t.Errorf("line %q: want no time, the logger's attributes, no newline", l)
				}
			}
			if !sl.closed || stderr.String() != "" {
				t.Fatalf("closed %v, stderr %q", sl.closed, stderr.String())
			}
		})
	}
}

// Without a system log (a container, CI) --syslog logs to stderr and says
// so, rather than failing.
func TestSyslogUnavailableLogsToStderr(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Syslog = true
	var stderr syncBuffer
	dl, err := openLog(cfg, &stderr, func() (syslogWriter, error) {
		return nil, fmt.Errorf("dial unixgram /dev/log: %w", syscall.ENOENT)
	})
	if err != nil {
		t.Fatal(err)
	}
	dl.Info("serving")
	if !strings.Contains(stderr.String(), "cannot reach the system log; logging to stderr") || !strings.Contains(stderr.String(), "msg=serving") {
		t.Fatalf("stderr = %q", stderr.String())
	}
}

// --log-file gets the log, stderr nothing but the final error is in the
// log as well; SIGHUP reopens the file after a rotation.
func TestLogFileGetsTheLog(t *testing.T) {
	f := newEmu(t)
	f.create(t, "app/db", "v")
	path := filepath.Join(t.TempDir(), "secretsfs.log")
	cfg := emuConfig(t, f, t.TempDir())
	cfg.LogFile = path
	srv := &fakeServer{}
	hup := make(chan os.Signal, 1)
	_, stderr, stop := runInBackground(t, cfg, srv.deps(hup))
	waitFor(t, "the serving line in the log file", func() bool { return testutil.FileHas(path, "msg=serving") })
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the log file: %v, %v; want mode 0600", info, err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	hup <- syscall.SIGHUP
	waitFor(t, "the log file reopened", func() bool { return testutil.FileHas(path, "SIGHUP") })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if stderr.String() != "" {
		t.Fatalf("stderr = %q, want nothing: the log goes to the file", stderr.String())
	}

	// A failure is returned (main prints it on stderr) and logged.
	cfg.MountPoint = filepath.Join(t.TempDir(), "missing")
	err := run(t.Context(), cfg, Env{Stdout: &syncBuffer{}, Stderr: &syncBuffer{}}, srv.deps(nil))
	if err == nil || !testutil.FileHas(path, "exiting") || !testutil.FileHas(path, "does not exist") {
		t.Fatalf("run = %v; the log file does not have the error", err)
	}
}

func TestLogFileAndSyslogExcludeEachOther(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MountPoint, cfg.LogFile, cfg.Syslog = "/mnt", "/var/log/s.log", true
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--log-file") {
		t.Fatalf("Validate = %v", err)
	}
	cfg.LogFile = filepath.Join(t.TempDir(), "link")
	if err := os.Symlink("/etc/passwd", cfg.LogFile); err != nil {
		t.Fatal(err)
	}
	cfg.Syslog = false
	if _, err := openLog(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("openLog through a symlink = %v", err)
	}
}
