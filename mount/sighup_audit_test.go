package mount

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	sfs "github.com/secretsfs/secretsfs/fs"
)

// auditOpen records one open of path through a.
func auditOpen(a sfs.Auditor, path string) {
	a.Open(sfs.OpenEvent{Time: time.Now(), Path: path, SecretID: "app/db", Stage: "AWSCURRENT", VersionID: "v1"})
}

// fileHas reports whether a file exists and contains s.
func fileHas(path, s string) bool {
	data, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(data), s)
}

func TestDefect9_15_SIGHUPReopensTheAuditLog(t *testing.T) {
	f := newEmu(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	cfg := emuConfig(t, f, t.TempDir())
	cfg.AuditLog = path
	srv := &fakeServer{}
	hup := make(chan os.Signal, 1)
	stdout, _, stop := runInBackground(t, cfg, srv.deps(hup))
	waitFor(t, "the serving line", func() bool { return stdout.String() != "" })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	hup <- syscall.SIGHUP
	waitFor(t, "the audit log opened again at its path", func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
	srv.mu.Lock()
	auditor := srv.opts.Auditor
	srv.mu.Unlock()
	auditOpen(auditor, "app/db/AWSCURRENT")
	if !fileHas(path, "app/db/AWSCURRENT") {
		t.Fatal("the line after SIGHUP is not in the reopened file")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
