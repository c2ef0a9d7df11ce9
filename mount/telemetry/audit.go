package telemetry

import (
	"bufio"
	"bytes"
	"encoding/json"
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

// Audit writes one JSON line per open of a secret file: when, which file
// and version, and which process asked. It never holds a value.
type Audit struct {
	mountDir string
	log      *slog.Logger
	procDir  string      // /proc, replaced in tests
	w        io.Writer   // stderr or file
	file     *AppendFile // nil for stderr

	mu     sync.Mutex
	failed bool // a write failed and was logged; guarded by mu
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

// OpenAudit opens the audit log: "-" is stderr; a file is opened for
// appending and created with mode 0600, never through a symbolic link, and
// follows a log rotation (AppendFile). An empty path is no audit log: nil,
// and nil error.
func OpenAudit(path, mountDir string, stderr io.Writer, log *slog.Logger) (*Audit, error) {
	if path == "" {
		return nil, nil
	}
	a := &Audit{mountDir: mountDir, log: log, procDir: "/proc"}
	if path == "-" {
		a.w = stderr
		return a, nil
	}
	f, err := OpenAppendFile(path, func(err error) {
		log.Error("the audit log was moved and cannot be opened again; writing to the moved file", "error", err)
	})
	if err != nil {
		return nil, fmt.Errorf("--audit-log: %w", err)
	}
	a.w, a.file = f, f
	return a, nil
}

// Auditor is a as the filesystem's auditor: a nil interface when a is nil,
// never an interface holding a nil pointer.
func (a *Audit) Auditor() sfs.Auditor {
	if a == nil {
		return nil
	}
	return a
}

// Reopen opens the audit file again by its path, as after a rotation
// (SIGHUP); the file already open is kept when that fails. Nothing to do
// for stderr or no audit log (a nil a).
func (a *Audit) Reopen() error {
	if a == nil || a.file == nil {
		return nil
	}
	if err := a.file.Reopen(); err != nil {
		return fmt.Errorf("reopening the audit log: %w", err)
	}
	return nil
}

var _ sfs.Auditor = (*Audit)(nil)

// Open writes the line of one open. The caller's process is looked up now,
// while its OPEN request is outstanding and the process therefore exists.
func (a *Audit) Open(ev sfs.OpenEvent) {
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

// Close closes the audit log file; nil a is no audit log.
func (a *Audit) Close() error {
	if a == nil || a.file == nil {
		return nil
	}
	return a.file.Close()
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
