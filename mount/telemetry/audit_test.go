package telemetry

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// auditOpen records one open of path through a.
func auditOpen(a sfs.Auditor, path string) {
	a.Open(sfs.OpenEvent{Time: time.Now(), Path: path, SecretID: "app/db", Stage: "AWSCURRENT", VersionID: "v1"})
}

func TestDefect9_15_AuditLogRefusesASymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	if err := os.WriteFile(target, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "audit.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	a, err := OpenAudit(link, "/mnt", nil, slog.New(slog.DiscardHandler))
	if err == nil {
		auditOpen(a, "app/db/AWSCURRENT")
		a.Close()
		data, _ := os.ReadFile(target)
		t.Fatalf("the audit log followed a symlink and wrote %q into its target", data)
	}
	if !strings.Contains(err.Error(), "--audit-log") || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("error %q does not name --audit-log and the symbolic link", err)
	}
	if data, _ := os.ReadFile(target); string(data) != "precious\n" {
		t.Fatalf("the symlink's target was changed: %q", data)
	}
}

func TestDefect9_15_AuditLogFollowsARotationByRenaming(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	var logs bytes.Buffer
	a, err := OpenAudit(path, "/mnt", nil, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	auditOpen(a, "before")
	// logrotate without copytruncate: rename, then (maybe) create anew.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	auditOpen(a, "after")
	if !testutil.FileHas(path+".1", "/mnt/before") || testutil.FileHas(path+".1", "/mnt/after") {
		t.Fatal("the rotated file does not hold exactly the line written before the rotation")
	}
	if !testutil.FileHas(path, "/mnt/after") {
		t.Fatal("the line written after the rotation is not in a new file at the audit log's path")
	}
	if info, err := os.Stat(path); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the new audit file: %v, %v; want mode 0600", info, err)
	}
	// A rotation that leaves a file of its own at the path: that one is
	// written to.
	if err := os.Rename(path, path+".2"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	auditOpen(a, "third")
	if !testutil.FileHas(path, "/mnt/third") || testutil.FileHas(path+".2", "/mnt/third") {
		t.Fatal("the line after the second rotation is not in the file created by the rotation")
	}
	// Replaced by a symlink: not followed; the line goes to the file
	// already open and the failure is logged.
	if err := os.Rename(path, path+".3"); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
	auditOpen(a, "fourth")
	if testutil.FileHas(target, "fourth") || !testutil.FileHas(path+".3", "/mnt/fourth") {
		t.Fatal("after the path became a symlink the line went to its target, or was lost")
	}
	if !strings.Contains(logs.String(), "symbolic link") {
		t.Fatalf("the refused reopen is not logged: %s", logs.String())
	}
}

func TestDefect9_20_ARefusedLookupIsALookupLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a, err := OpenAudit(path, "/mnt", nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	a.Open(sfs.OpenEvent{Time: time.Now(), Path: "app/settings.ini", SecretID: "app/db", Errno: syscall.EIO, AtLookup: true})
	if !testutil.FileHas(path, `"event":"lookup","path":"/mnt/app/settings.ini","secret_id":"app/db"`) || !testutil.FileHas(path, `"result":"EIO"`) {
		data, _ := os.ReadFile(path)
		t.Fatalf("audit line %s", data)
	}
}

func TestProcessOfMapsAThreadToItsProcess(t *testing.T) {
	proc := t.TempDir()
	os.MkdirAll(filepath.Join(proc, "101"), 0o755)
	os.MkdirAll(filepath.Join(proc, "100"), 0o755)
	os.WriteFile(filepath.Join(proc, "101", "status"), []byte("Name:\tapp\nUmask:\t0022\nState:\tS\nTgid:\t100\nPid:\t101\n"), 0o644)
	os.Symlink("/usr/bin/app", filepath.Join(proc, "100", "exe"))
	if pid, exe := processOf(proc, 101); pid != 100 || exe != "/usr/bin/app" {
		t.Fatalf("processOf(101) = %d %q, want 100 /usr/bin/app", pid, exe)
	}
	if pid, exe := processOf(proc, 0); pid != 0 || exe != "" {
		t.Fatalf("processOf(0) = %d %q", pid, exe)
	}
	if pid, _ := processOf(proc, 999); pid != 0 {
		t.Fatalf("processOf of a gone thread = %d", pid)
	}
	// This very thread, through the real /proc.
	if pid, exe := processOf("/proc", uint32(syscall.Gettid())); pid != os.Getpid() || exe == "" {
		t.Fatalf("processOf(self) = %d %q, want %d", pid, exe, os.Getpid())
	}
}

// TestNoAuditLogIsANilAuditor: without --audit-log there is no Audit, and
// its Auditor is a nil interface, never one holding a nil pointer (which
// fs would call).
func TestNoAuditLogIsANilAuditor(t *testing.T) {
	a, err := OpenAudit("", "/mnt", nil, slog.New(slog.DiscardHandler))
	if a != nil || err != nil {
		t.Fatalf("OpenAudit(\"\") = %v, %v; want nil, nil", a, err)
	}
	if aud := a.Auditor(); aud != nil {
		t.Fatalf("Auditor of no audit log = %#v, want a nil interface", aud)
	}
	if err := a.Reopen(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}
