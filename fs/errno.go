package fs

import (
	"context"
	"errors"
	iofs "io/fs"
	"log/slog"
	"sync"
	"syscall"
)

// toErrno maps an error from the store or catalog to what a reader sees
// (ErrnoOf). Unknown errors are logged once each, unless already logged
// where they arose (a mapped file's: see failureLog).
func (r *root) toErrno(ctx context.Context, err error) syscall.Errno {
	errno := ErrnoOf(ctx, err)
	var done *loggedError
	if errno == syscall.EIO && !errors.As(err, &done) {
		r.logged.once(r.log, err)
	}
	return errno
}

// ErrnoOf maps an error to an errno: missing things are ENOENT, refusals
// EACCES, a request the caller interrupted (ctx is the request's) EINTR, and
// everything else (unreachable service, throttling, internal errors, a call
// that timed out) EIO. It is what a reader of the mount gets, and the one
// place that decides it: the daemon's check reports the same.
func ErrnoOf(ctx context.Context, err error) syscall.Errno {
	switch {
	case err == nil:
		return 0
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return syscall.EINTR
	case errors.Is(err, iofs.ErrNotExist):
		return syscall.ENOENT
	case errors.Is(err, iofs.ErrPermission):
		return syscall.EACCES
	}
	return syscall.EIO
}

// loggedError is an error already logged where it arose.
type loggedError struct{ err error }

func (e *loggedError) Error() string { return e.err.Error() }
func (e *loggedError) Unwrap() error { return e.err }

// onceLogger logs each distinct error message once. Messages name secrets
// and operations, never values.
type onceLogger struct {
	mu   sync.Mutex
	seen map[string]struct{} // guarded by mu
}

func (o *onceLogger) once(log *slog.Logger, err error) {
	msg := err.Error()
	o.mu.Lock()
	if o.seen == nil {
		o.seen = make(map[string]struct{})
	}
	_, dup := o.seen[msg]
	if !dup && len(o.seen) < 1000 {
		o.seen[msg] = struct{}{}
	}
	o.mu.Unlock()
	if !dup {
		log.Warn("serving EIO", "error", err)
	}
}
