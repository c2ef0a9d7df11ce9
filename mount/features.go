package mount

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Features are the daemon's settings beyond serving files: change hooks,
// the staleness bound, metrics, the audit log and memory hygiene. They are
// embedded in Config.
type Features struct {
	// OnChange, when set, runs for every file of the default layout whose
	// content changes (the --on-change-* flags).
	OnChange *ChangeHook
	// MaxStale bounds how long a value may be served stale while refreshes
	// fail, counted from the secret's last successful refresh; beyond it
	// the file reads EIO. Zero means no bound (the reference's behaviour):
	// availability over freshness.
	MaxStale time.Duration
	// MetricsListen is the HOST:PORT of the Prometheus metrics and /healthz
	// endpoint; empty means none.
	MetricsListen string
	// MetricsAllowRemote allows a MetricsListen address other than
	// loopback. Metrics carry secret names, not values.
	MetricsAllowRemote bool
	// AuditLog is the file that gets one JSON line per open of a secret
	// file ("-" for stderr); empty means none. Needs per-open mode.
	AuditLog string
	// NoMlock skips locking the daemon's memory (mlockall), e.g. where the
	// memlock limit is small.
	NoMlock bool
}

// ChangeHook is what to do when a file's content changes: run Command, or
// send Signal to the process whose pid is in PIDFile. Runs are coalesced per
// hook: one run once Debounce has passed without another change of a file
// the hook covers, naming every file changed since its last run.
type ChangeHook struct {
	// Command is the program and its arguments, run without a shell; when
	// Shell is set it has one element, run with /bin/sh -c.
	Command []string
	Shell   bool
	// Signal is a signal name (HUP, SIGHUP) or number.
	Signal  string
	PIDFile string
	// Debounce is how long a file must stay unchanged before the hook runs;
	// zero means DefaultDebounce.
	Debounce time.Duration
}

// describe names the hook in logs: the program, or the signal and pid
// file; never the rest of a command line, nor a shell command's leading
// VAR=value words, which may carry a credential.
func (h *ChangeHook) describe() string {
	if h.Signal != "" {
		return fmt.Sprintf("signal %s to the pid in %s", h.Signal, h.PIDFile)
	}
	if len(h.Command) == 0 {
		return "command"
	}
	if !h.Shell {
		return "command " + h.Command[0]
	}
	for _, word := range strings.Fields(h.Command[0]) {
		if !strings.Contains(word, "=") {
			return "shell command " + word
		}
	}
	return "shell command"
}

// DefaultDebounce is the on_change debounce when none is given.
const DefaultDebounce = time.Second

// validate reports the features' problems, naming each flag.
func (f Features) validate(kernelCache bool) []error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if h := f.OnChange; h != nil {
		for _, err := range h.validate() {
			bad("--on-change-command/--on-change-signal", "%v", err)
		}
	}
	if f.MaxStale < 0 {
		bad("--max-stale", "is %v; give a positive duration such as 1h, or 0 for no bound", f.MaxStale)
	}
	if f.MetricsListen != "" {
		host, _, err := net.SplitHostPort(f.MetricsListen)
		switch {
		case err != nil:
			bad("--metrics-listen", "is %q; give HOST:PORT such as 127.0.0.1:9464", f.MetricsListen)
		case !f.MetricsAllowRemote && !loopbackHost(host):
			bad("--metrics-listen", "%q is not a loopback address; use 127.0.0.1:PORT, or add --metrics-allow-remote to serve metrics (which name your secrets) to the network", f.MetricsListen)
		}
	}
	if f.AuditLog != "" && kernelCache {
		bad("--audit-log", "needs the per-open serving mode: with --kernel-cache opens do not reach the daemon and cannot be audited; drop one of the two")
	}
	return errs
}

// validate checks a hook's fields.
func (h *ChangeHook) validate() []error {
	var errs []error
	switch {
	case len(h.Command) == 0 && h.Signal == "":
		errs = append(errs, errors.New("give a command, or a signal with a pid file"))
	case len(h.Command) > 0 && h.Signal != "":
		errs = append(errs, errors.New("give a command or a signal, not both"))
	case h.Signal != "" && h.PIDFile == "":
		errs = append(errs, errors.New("a signal needs --on-change-pidfile, the file holding the pid to signal"))
	case h.Signal == "" && h.PIDFile != "":
		errs = append(errs, errors.New("--on-change-pidfile goes with --on-change-signal"))
	}
	if len(h.Command) > 0 && h.Command[0] == "" {
		errs = append(errs, errors.New("the command is empty"))
	}
	if h.Signal != "" {
		if _, err := ParseSignal(h.Signal); err != nil {
			errs = append(errs, err)
		}
	}
	if h.Debounce < 0 {
		errs = append(errs, fmt.Errorf("debounce %v is negative", h.Debounce))
	}
	return errs
}

// ParseSignal reads a signal given as a name (HUP, SIGHUP, hup) or number.
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("%q is not a signal; give a name such as HUP or USR1, or a number", s)
}

// loopbackHost reports whether host names only the local machine.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
