package mount

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	sfs "github.com/secretsfs/secretsfs/fs"
)

// auditLog writes one JSON line per open of a secret file: when, which file
// and version, and which process asked. It never holds a value.
type auditLog struct {
	mountDir string
	path     string // the file's path; "" for stderr
	log      *slog.Logger
	procDir  string // /proc, replaced in tests

	mu     sync.Mutex
	w      io.Writer // guarded by mu
	f      *os.File  // the open file, nil for stderr; guarded by mu
	failed bool      // a write failed and was logged; guarded by mu
	// reopenFailed: reopening failed and was logged; guarded by mu
	reopenFailed bool
}

// auditLine is the JSON form of one audited open.
type auditLine struct {
	Time      string `json:"time"`
	Event     string `json:"event"`
	Path      string `json:"path"`
	SecretID  string `json:"secret_id"`
	Stage     string `json:"stage"`
	Key       string `json:"key,omitempty"`
	VersionID string `json:"version_id,omitempty"`
	Stale     bool   `json:"stale"`
	Result    string `json:"result"`
	PID       int    `json:"pid"`
	TID       uint32 `json:"tid"`
	UID       uint32 `json:"uid"`
	GID       uint32 `json:"gid"`
	Exe       string `json:"exe"`
}

// openAuditLog opens the audit log: "-" is stderr; a file is opened for
// appending and created with mode 0600, never through a symbolic link.
func openAuditLog(path, mountDir string, stderr io.Writer, log *slog.Logger) (*auditLog, error) {
	a := &auditLog{mountDir: mountDir, log: log, procDir: "/proc"}
	if path == "-" {
		a.w = stderr
		return a, nil
	}
	f, err := openAuditFile(path)
	if err != nil {
		return nil, fmt.Errorf("--audit-log: %w", err)
	}
	a.path, a.w, a.f = path, f, f
	return a, nil
}

// openAuditFile opens path for appending, creating it with mode 0600. A
// symbolic link is refused: whoever can place one must not choose where
// the daemon writes.
func openAuditFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link; give the path of the file itself", path)
	}
	return f, err
}

// Reopen opens the audit file again by its path, as after a rotation
// (SIGHUP); the file already open is kept when that fails.
func (a *auditLog) Reopen() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reopenLocked()
}

// reopenLocked does Reopen's work. The caller holds mu.
func (a *auditLog) reopenLocked() error {
	if a.f == nil {
		return nil
	}
	f, err := openAuditFile(a.path)
	if err != nil {
		return fmt.Errorf("reopening the audit log: %w", err)
	}
	a.f.Close()
	a.w, a.f, a.failed, a.reopenFailed = f, f, false, false
	return nil
}

// followRotation reopens the audit file when its path no longer names the
// file open (renamed or removed by a log rotation). The caller holds mu.
func (a *auditLog) followRotation() {
	if a.f == nil {
		return
	}
	named, err := os.Lstat(a.path)
	if err == nil {
		if open, err := a.f.Stat(); err != nil || os.SameFile(named, open) {
			return
		}
	}
	if err := a.reopenLocked(); err != nil && !a.reopenFailed {
		a.reopenFailed = true
		a.log.Error("the audit log was moved and cannot be opened again; writing to the moved file", "error", err)
	}
}

var _ sfs.Auditor = (*auditLog)(nil)

// Open writes the line of one open. The caller's process is looked up now,
// while its OPEN request is outstanding and the process therefore exists.
func (a *auditLog) Open(ev sfs.OpenEvent) {
	line := auditLine{
		Time:      ev.Time.UTC().Format(time.RFC3339Nano),
		Event:     auditEvent(ev),
		Path:      filepath.Join(a.mountDir, ev.Path),
		SecretID:  ev.SecretID,
		Stage:     ev.Stage,
		Key:       ev.Key,
		VersionID: ev.VersionID,
		Stale:     ev.Stale,
		Result:    "ok",
		TID:       ev.TID,
		UID:       ev.UID,
		GID:       ev.GID,
	}
	if ev.Errno != 0 {
		line.Result = unix.ErrnoName(ev.Errno)
	}
	line.PID, line.Exe = processOf(a.procDir, ev.TID)
	data, err := json.Marshal(line)
	if err != nil {
		return
	}
	data = append(data, '\n')
	a.mu.Lock()
	defer a.mu.Unlock()
	a.followRotation()
	if _, err := a.w.Write(data); err != nil && !a.failed {
		a.failed = true
		a.log.Error("writing the audit log failed; later failures are not logged", "error", err)
	}
}

// auditEvent is a line's event: "open", or "lookup" for a file refused when
// the kernel looked it up, before any OPEN.
func auditEvent(ev sfs.OpenEvent) string {
	if ev.AtLookup {
		return "lookup"
	}
	return "open"
}

// Close closes the audit log file.
func (a *auditLog) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	return a.f.Close()
}

// processOf finds the process a thread belongs to (its Tgid) and the
// process's executable. The kernel reports the calling thread, not the
// process. Zero and "" when unknown (the thread is gone, or tid is 0 for a
// request the kernel made itself).
func processOf(procDir string, tid uint32) (pid int, exe string) {
	if tid == 0 {
		return 0, ""
	}
	status, err := os.ReadFile(filepath.Join(procDir, strconv.FormatUint(uint64(tid), 10), "status"))
	if err != nil {
		return 0, ""
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("Tgid:")); ok {
			pid, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
			break
		}
	}
	if pid == 0 {
		return 0, ""
	}
	exe, _ = os.Readlink(filepath.Join(procDir, strconv.Itoa(pid), "exe"))
	return pid, exe
}
