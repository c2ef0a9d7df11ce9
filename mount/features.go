package mount

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/secretsfs/secretsfs/mount/mapping"
)

// Features are the daemon's settings beyond serving files: change hooks,
// the staleness bound, metrics, the audit log and memory hygiene. They are
// embedded in Config.
type Features struct {
	// OnChange, when set, runs for every file of the default layout whose
	// content changes (the --on-change-* flags).
	OnChange *mapping.OnChange
	// MaxStale bounds how long a value may be served stale while refreshes
	// fail, counted from the secret's last successful refresh; beyond it
	// the file reads EIO. Zero means no bound (the reference's behaviour):
	// availability over freshness.
	MaxStale time.Duration
	// MetricsListen is the HOST:PORT of the Prometheus metrics and /healthz
	// endpoint; empty means none.
	MetricsListen string
	// MetricsAllowRemote allows a MetricsListen address other than
	// loopback. /metrics never names a secret; /healthz names the secrets
	// it cannot serve, never a value.
	MetricsAllowRemote bool
	// AuditLog is the file that gets one JSON line per open of a secret
	// file ("-" for stderr); empty means none. Needs per-open mode.
	AuditLog string
	// NoMlock skips locking the daemon's memory (mlockall), e.g. where the
	// memlock limit is small.
	NoMlock bool
}

// DefaultDebounce is the on_change debounce when none is given.
const DefaultDebounce = mapping.DefaultDebounce

// validate reports the features' problems, naming each flag.
func (f Features) validate(kernelCache bool) []error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, &FieldError{Flag: flag, Problem: fmt.Sprintf(format, args...)})
	}
	if h := f.OnChange; h != nil {
		for _, p := range h.Problems(onChangeFlag) {
			if p.Field == "" {
				errs = append(errs, errors.New(p.Message)) // it names the flags
				continue
			}
			bad(onChangeFlag(p.Field), "%s", p.Message)
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
			bad("--metrics-listen", "%q is not a loopback address; use 127.0.0.1:PORT, or add --metrics-allow-remote to serve metrics to the network (/healthz names failing secrets)", f.MetricsListen)
		}
	}
	if f.AuditLog != "" && kernelCache {
		bad("--audit-log", "needs the per-open serving mode: with --kernel-cache opens do not reach the daemon and cannot be audited; drop one of the two")
	}
	return errs
}

// onChangeFlag names the flag of an on_change field.
func onChangeFlag(field string) string { return "--on-change-" + field }

// loopbackHost reports whether host names only the local machine.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
