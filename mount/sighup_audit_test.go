package mount

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/test/testutil"
)

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
	auditor.Open(sfs.OpenEvent{Time: time.Now(), Path: "app/db/AWSCURRENT", SecretID: "app/db", Stage: "AWSCURRENT", VersionID: "v1"})
	if !testutil.FileHas(path, "app/db/AWSCURRENT") {
		t.Fatal("the line after SIGHUP is not in the reopened file")
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
