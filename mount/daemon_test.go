package mount

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/secretsfs/secretsfs/mount/mapping"
	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// TestTwoMountsTwoIdentitiesOneProcess: one Daemon serves three mounts from
// one process, two of one identity (emulator A) and one of another
// (emulator B, a different endpoint). The two mounts of A share one cache:
// the second one's first read of a secret the first one read makes no call
// to Secrets Manager. Unmounting one mount leaves the others serving, and a
// rotation on B still reaches B's mount.
func TestTwoMountsTwoIdentitiesOneProcess(t *testing.T) {
	testutil.RequireFUSE(t)
	fa, fb := newEmu(t), newEmu(t)
	fa.create(t, "app/db", "from-A")
	fb.create(t, "app/db", "from-B")

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	deps := systemDeps()
	stdout := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	d := newDaemon(Env{Stdout: stdout}, deps, log, hygieneOutcome{})
	add := func(f *emuFixture) *Mount {
		t.Helper()
		m, err := d.Add(ctx, emuConfig(t, f, t.TempDir()))
		if err != nil {
			t.Fatalf("Add: %v", err)
		}
		t.Cleanup(m.Unmount)
		return m
	}
	read := func(m *Mount) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(m.Dir, "app", "db", "AWSCURRENT"))
		if err != nil {
			t.Fatalf("read in %s: %v", m.Dir, err)
		}
		return string(b)
	}

	m1, m2 := add(fa), add(fb)
	if got := read(m1); got != "from-A" {
		t.Fatalf("m1 (A) reads %q, want from-A", got)
	}
	if got := read(m2); got != "from-B" {
		t.Fatalf("m2 (B) reads %q, want from-B", got)
	}
	m3 := add(fa)
	if n := len(d.pool.caches()); n != 2 {
		t.Fatalf("the pool holds %d caches for three mounts of two identities, want 2", n)
	}
	if m3.cache != m1.cache || m2.cache == m1.cache {
		t.Fatal("m1 and m3 (A) do not share one cache, or m2 (B) shares A's")
	}
	describes, gets := fa.emu.Calls("DescribeSecret"), fa.emu.Calls("GetSecretValue")
	if got := read(m3); got != "from-A" {
		t.Fatalf("m3 (A again) reads %q, want from-A", got)
	}
	if d2, g2 := fa.emu.Calls("DescribeSecret"), fa.emu.Calls("GetSecretValue"); d2 != describes || g2 != gets {
		t.Fatalf("m3's first read of a secret A's cache holds called A: DescribeSecret %d -> %d, GetSecretValue %d -> %d", describes, d2, gets, g2)
	}

	m1.Unmount()
	if testutil.MountType(m1.Dir) != "" {
		t.Fatalf("%s is still in /proc/self/mountinfo after Unmount", m1.Dir)
	}
	if testutil.MountType(m2.Dir) == "" || testutil.MountType(m3.Dir) == "" {
		t.Fatal("unmounting m1 unmounted another mount")
	}
	if got := read(m3); got != "from-A" {
		t.Fatalf("after m1 left, m3 reads %q, want from-A", got)
	}
	if n := len(d.pool.caches()); n != 2 {
		t.Fatalf("after m1 left the pool holds %d caches, want 2 (m3 still uses A's)", n)
	}

	rotated := "from-B-2"
	if _, err := fb.emu.PutSecretValue("app/db", emulator.Version{SecretString: &rotated}); err != nil {
		t.Fatal(err)
	}
	if err := m2.cache.RefreshNow(ctx, "app/db"); err != nil {
		t.Fatalf("forced refresh on B: %v", err)
	}
	waitFor(t, "m2 to show B's rotation", func() bool { return read(m2) == rotated })
	if got := read(m3); got != "from-A" {
		t.Fatalf("after B's rotation m3 (A) reads %q, want from-A", got)
	}

	m3.Unmount()
	if n := len(d.pool.caches()); n != 1 {
		t.Fatalf("after A's last mount left the pool holds %d caches, want 1 (B's)", n)
	}
}

// TestIssue14_21_MountsNamingTheSameSecretsShareOneWatcher: two mounts of
// one identity whose mappings name the same secrets (one of them twice)
// share one watcher: one listing of them, not one per mount; every file
// reads its value; the last mount gone, the watcher stops.
func TestIssue14_21_MountsNamingTheSameSecretsShareOneWatcher(t *testing.T) {
	testutil.RequireFUSE(t)
	f := newEmu(t)
	f.create(t, "app/db", `{"user":"u","password":"p"}`)
	f.create(t, "app/key", "k")
	m, err := mapping.Parse("m.yaml", []byte("files:\n  - path: user\n    secret: app/db\n    key: user\n  - path: password\n    secret: app/db\n    key: password\n  - path: key\n    secret: app/key\n"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	d := newDaemon(Env{}, systemDeps(), log, hygieneOutcome{})
	var mounts []*Mount
	for range 2 {
		cfg := emuConfig(t, f, t.TempDir())
		cfg.Mapping = m
		mt, err := d.Add(context.Background(), cfg)
		if err != nil {
			t.Fatalf("Add: %v", err)
		}
		t.Cleanup(mt.Unmount)
		mounts = append(mounts, mt)
	}
	for _, mt := range mounts {
		for file, want := range map[string]string{"user": "u", "password": "p", "key": "k"} {
			if b, err := os.ReadFile(filepath.Join(mt.Dir, file)); err != nil || string(b) != want {
				t.Fatalf("%s in %s: %q, %v; want %q", file, mt.Dir, b, err, want)
			}
		}
	}
	if n := f.emu.Calls("ListSecrets"); n != 1 {
		t.Fatalf("%d listings of the named secrets for two mounts naming them, want 1", n)
	}
	d.pool.mu.Lock()
	sh := d.pool.entries[poolKeyOf(mounts[0].cfg, d.env)]
	watchers := len(sh.watchers)
	d.pool.mu.Unlock()
	if watchers != 1 {
		t.Fatalf("%d watchers, want 1", watchers)
	}
	mounts[0].Unmount()
	mounts[1].Unmount()
	d.pool.mu.Lock()
	defer d.pool.mu.Unlock()
	if len(sh.watchers) != 0 || len(d.pool.entries) != 0 {
		t.Fatalf("%d watchers and %d caches after the last mount", len(sh.watchers), len(d.pool.entries))
	}
}
