package telemetry

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// AppendFile is a log file the daemon appends to: the audit log
// (--audit-log) and its own log (--log-file). It is opened by its path,
// created with mode 0600, never through a symbolic link, and follows a log
// rotation: when the path no longer names the open file (renamed or removed
// by logrotate) the next write opens the path again; SIGHUP reopens it too.
type AppendFile struct {
	path string
	// lost is called once when a rotation cannot be followed (the
	// writes then go on to the file already open); nil ignores it.
	lost func(error)

	mu           sync.Mutex
	f            *os.File // guarded by mu
	reopenFailed bool     // lost was called; guarded by mu
}

// OpenAppendFile opens path for appending; lost is told once when a
// rotation cannot be followed (nil ignores it).
func OpenAppendFile(path string, lost func(error)) (*AppendFile, error) {
	f, err := openForAppend(path)
	if err != nil {
		return nil, err
	}
	return &AppendFile{path: path, lost: lost, f: f}, nil
}

// openForAppend opens path for appending, creating it with mode 0600. A
// symbolic link is refused: whoever can place one must not choose where
// the daemon writes.
func openForAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link; give the path of the file itself", path)
	}
	return f, err
}

// Write appends p, following a rotation first.
func (a *AppendFile) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.followRotation()
	return a.f.Write(p)
}

// Reopen opens the file again by its path, as after a rotation (SIGHUP);
// the file already open is kept when that fails.
func (a *AppendFile) Reopen() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reopenLocked()
}

// reopenLocked does Reopen's work. The caller holds mu.
func (a *AppendFile) reopenLocked() error {
	f, err := openForAppend(a.path)
	if err != nil {
		return err
	}
	a.f.Close()
	a.f, a.reopenFailed = f, false
	return nil
}

// followRotation reopens the file when its path no longer names the file
// open. The caller holds mu.
func (a *AppendFile) followRotation() {
	named, err := os.Lstat(a.path)
	if err == nil {
		if open, err := a.f.Stat(); err != nil || os.SameFile(named, open) {
			return
		}
	}
	if err := a.reopenLocked(); err != nil && !a.reopenFailed {
		a.reopenFailed = true
		if a.lost != nil {
			a.lost(err)
		}
	}
}

// Path is the path the file was opened by.
func (a *AppendFile) Path() string { return a.path }

// Close closes the file.
func (a *AppendFile) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.f.Close()
}
