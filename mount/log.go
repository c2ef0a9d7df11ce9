package mount

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"strings"

	"github.com/secretsfs/secretsfs/mount/telemetry"
)

// ParseLevel reads a log level name (--log-level); its error completes
// "--log-level: ".
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("is %q; give debug, info, warn or error", s)
}

// newHandler is the daemon's log handler writing to w, at cfg's level and in
// its format (cfg has been validated); dropTime leaves the time out, for a
// destination that stamps every line itself.
func newHandler(cfg Config, w io.Writer, dropTime bool) slog.Handler {
	level, err := ParseLevel(cfg.LogLevel)
	if err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if dropTime {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	if cfg.LogFormat == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

// newLogger builds a logger on w; cfg has been validated.
func newLogger(cfg Config, w io.Writer) *slog.Logger {
	return slog.New(newHandler(cfg, w, false))
}

// syslogWriter is the part of *syslog.Writer the daemon uses: one message
// per call at the given severity.
type syslogWriter interface {
	Debug(m string) error
	Info(m string) error
	Warning(m string) error
	Err(m string) error
	Close() error
}

// dialSyslog connects to the system log (/dev/log: syslog, or the journal
// under systemd) as "secretsfs", facility daemon.
func dialSyslog() (syslogWriter, error) {
	return syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "secretsfs")
}

// daemonLog is where the daemon logs: stderr, the --log-file or syslog.
type daemonLog struct {
	*slog.Logger
	file   *telemetry.AppendFile // --log-file; nil otherwise
	syslog syslogWriter
}

// openLog opens the destination cfg names. Where --syslog is given but
// there is no system log (no /dev/log, as in a container or CI), the log
// stays on stderr, which says so once.
func openLog(cfg Config, stderr io.Writer, dial func() (syslogWriter, error)) (daemonLog, error) {
	switch {
	case cfg.LogFile != "":
		f, err := telemetry.OpenAppendFile(cfg.LogFile, nil)
		if err != nil {
			return daemonLog{}, fmt.Errorf("--log-file: %w", err)
		}
		return daemonLog{Logger: newLogger(cfg, f), file: f}, nil
	case cfg.Syslog:
		err := fmt.Errorf("no system log to connect to")
		if dial != nil {
			var w syslogWriter
			if w, err = dial(); err == nil {
				return daemonLog{Logger: slog.New(newSyslogHandler(cfg, w)), syslog: w}, nil
			}
		}
		log := newLogger(cfg, stderr)
		log.Warn("--syslog: cannot reach the system log; logging to stderr", "err", err)
		return daemonLog{Logger: log}, nil
	}
	return daemonLog{Logger: newLogger(cfg, stderr)}, nil
}

// toStderr reports whether the log goes to stderr.
func (d daemonLog) toStderr() bool { return d.file == nil && d.syslog == nil }

// reopen opens the --log-file again by its path (SIGHUP, after a log
// rotation).
func (d daemonLog) reopen() {
	if d.file == nil {
		return
	}
	if err := d.file.Reopen(); err != nil {
		d.Error("SIGHUP: the log file could not be opened again; still writing to the old one", "error", err)
		return
	}
	d.Info("SIGHUP: log file reopened", "file", d.file.Path())
}

// close closes the file or the connection to syslog.
func (d daemonLog) close() {
	if d.file != nil {
		d.file.Close()
	}
	if d.syslog != nil {
		d.syslog.Close()
	}
}

// syslogHandler sends each record to syslog at the severity of its level:
// one handler per severity, each formatting as the daemon's other logs do,
// without the time, which syslog adds.
type syslogHandler [4]slog.Handler // debug, info, warning, error

func newSyslogHandler(cfg Config, w syslogWriter) syslogHandler {
	var h syslogHandler
	for i, send := range []func(string) error{w.Debug, w.Info, w.Warning, w.Err} {
		h[i] = newHandler(cfg, messageWriter(send), true)
	}
	return h
}

// messageWriter turns each Write into one syslog message.
type messageWriter func(string) error

func (f messageWriter) Write(p []byte) (int, error) {
	if err := f(strings.TrimSuffix(string(p), "\n")); err != nil {
		return 0, err
	}
	return len(p), nil
}

func severity(l slog.Level) int {
	switch {
	case l < slog.LevelInfo:
		return 0
	case l < slog.LevelWarn:
		return 1
	case l < slog.LevelError:
		return 2
	}
	return 3
}

func (h syslogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h[severity(l)].Enabled(ctx, l)
}

func (h syslogHandler) Handle(ctx context.Context, r slog.Record) error {
	return h[severity(r.Level)].Handle(ctx, r)
}

func (h syslogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var n syslogHandler
	for i, x := range h {
		n[i] = x.WithAttrs(attrs)
	}
	return n
}

func (h syslogHandler) WithGroup(name string) slog.Handler {
	var n syslogHandler
	for i, x := range h {
		n[i] = x.WithGroup(name)
	}
	return n
}
