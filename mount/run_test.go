package mount

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/mount/mapping"
	"github.com/secretsfs/secretsfs/test/emulator"
	"github.com/secretsfs/secretsfs/test/testutil"
)

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer = testutil.SyncBuffer

// fakeServer stands in for a mounted filesystem.
type fakeServer struct {
	mu          sync.Mutex
	opts        sfs.Options
	unmountErr  error
	unmounts    int
	waits       int
	detachCalls int
}

func (f *fakeServer) Unmount() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unmounts++
	return f.unmountErr
}

func (f *fakeServer) Wait() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits++
}

func (f *fakeServer) Gone() <-chan struct{} { return nil }

func (f *fakeServer) deps(hup chan os.Signal) runDeps {
	d := systemDeps()
	d.hup = hup
	d.mount = func(dir string, opts sfs.Options) (mountedFS, error) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.opts = opts
		return f, nil
	}
	d.mountPoint.detach = func(context.Context, string) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.detachCalls++
		return nil
	}
	return d
}

// runInBackground starts run and returns a function that cancels it and
// returns its error.
func runInBackground(t *testing.T, cfg Config, d runDeps) (stdout, stderr *syncBuffer, stop func() error) {
	t.Helper()
	stdout, stderr = &syncBuffer{}, &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, Env{Stdout: stdout, Stderr: stderr}, d) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("run did not return after its context ended")
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stdout, stderr, stop
}

func emuConfig(t *testing.T, f *emuFixture, dir string) Config {
	isolateAWS(t)
	cfg := DefaultConfig()
	cfg.MountPoint = dir
	cfg.EndpointURL = f.srv.URL()
	cfg.LogLevel = "debug"
	return cfg
}

var servingLine = regexp.MustCompile(`^secretsfs: serving (\d+) secrets at (\S+) \((per-open|kernel-cache) mode\)\n$`)

func TestRunServesReloadsAndUnmounts(t *testing.T) {
	f := newEmu(t)
	f.create(t, "app/db", `{"password":"p4ss"}`)
	f.create(t, "app/key", "k")
	dir := t.TempDir()
	cfg := emuConfig(t, f, dir)
	cfg.UID, cfg.GID, cfg.FileMode, cfg.DirMode, cfg.AllowOther, cfg.KernelCache = 1234, 5678, 0o440, 0o550, true, true
	srv := &fakeServer{}
	hup := make(chan os.Signal, 1)
	stdout, stderr, stop := runInBackground(t, cfg, srv.deps(hup))

	waitFor(t, "the serving line", func() bool { return stdout.String() != "" })
	m := servingLine.FindStringSubmatch(stdout.String())
	if m == nil || m[1] != "2" || m[2] != dir || m[3] != "kernel-cache" {
		t.Fatalf("stdout = %q, want one serving line for 2 secrets at %s", stdout.String(), dir)
	}
	srv.mu.Lock()
	opts := srv.opts
	srv.mu.Unlock()
	if opts.UID != 1234 || opts.GID != 5678 || opts.FileMode != 0o440 || opts.DirMode != 0o550 || !opts.AllowOther || !opts.KernelCache || opts.DefaultStage != "AWSCURRENT" || opts.Logger == nil || opts.Clock == nil {
		t.Fatalf("fs options = %+v", opts)
	}
	if got := names(opts.Catalog.List()); strings.Join(got, ",") != "app/db,app/key" {
		t.Fatalf("catalog lists %v", got)
	}
	v, err := opts.Store.Value(context.Background(), "app/db", "")
	if err != nil || string(v.Data) != `{"password":"p4ss"}` {
		t.Fatalf("Store.Value = %q, %v", v.Data, err)
	}

	// SIGHUP refreshes the cached secret at once.
	before := f.emu.Calls(emulator.OpDescribeSecret)
	hup <- syscall.SIGHUP
	waitFor(t, "the forced refresh", func() bool { return strings.Contains(stderr.String(), "forced refresh done") })
	if after := f.emu.Calls(emulator.OpDescribeSecret); after != before+1 {
		t.Fatalf("SIGHUP made %d DescribeSecret calls, want 1", after-before)
	}
	if !strings.Contains(stderr.String(), "refreshed=1 failed=0") {
		t.Fatalf("the refresh outcome is not logged: %s", stderr.String())
	}

	if err := stop(); err != nil {
		t.Fatalf("run() = %v, want nil after its context ended", err)
	}
	if srv.unmounts != 1 || srv.waits != 1 || srv.detachCalls != 0 {
		t.Fatalf("%d unmounts, %d waits, %d detaches; want 1, 1, 0", srv.unmounts, srv.waits, srv.detachCalls)
	}
	if strings.Count(stdout.String(), "\n") != 1 {
		t.Fatalf("stdout has more than one line: %q", stdout.String())
	}
	if strings.Contains(stderr.String(), "p4ss") {
		t.Fatal("a secret value reached the log")
	}
}

func TestRunDetachesWhenUnmountFails(t *testing.T) {
	f := newEmu(t)
	srv := &fakeServer{unmountErr: syscall.EBUSY}
	stdout, _, stop := runInBackground(t, emuConfig(t, f, t.TempDir()), srv.deps(nil))
	waitFor(t, "the serving line", func() bool { return stdout.String() != "" })
	if err := stop(); err != nil {
		t.Fatalf("run() = %v", err)
	}
	if srv.unmounts != 1 || srv.detachCalls != 1 || srv.waits != 0 {
		t.Fatalf("%d unmounts, %d detaches, %d waits; want 1, 1, 0", srv.unmounts, srv.detachCalls, srv.waits)
	}
}

// Explicit mode lists the named secrets by name (ARNs never go in a name
// filter) and needs no ListSecrets permission: refused, it serves all the
// same, with DescribeSecret.
func TestRunExplicitModeListsByNameOnly(t *testing.T) {
	for _, refused := range []bool{false, true} {
		t.Run(fmt.Sprint("refused=", refused), func(t *testing.T) {
			f := newEmu(t)
			arn := f.create(t, "app/key", "k")
			f.create(t, "app/db", "d")
			if refused {
				f.emu.InjectFault(emulator.OpListSecrets, emulator.Fault{ErrorType: emulator.ErrAccessDenied})
			}
			cfg := emuConfig(t, f, t.TempDir())
			cfg.Secrets = []string{arn, "app/db", "app/missing"}
			srv := &fakeServer{}
			stdout, _, stop := runInBackground(t, cfg, srv.deps(nil))
			waitFor(t, "the serving line", func() bool { return stdout.String() != "" })
			if m := servingLine.FindStringSubmatch(stdout.String()); m == nil || m[1] != "3" {
				t.Fatalf("stdout = %q", stdout.String())
			}
			srv.mu.Lock()
			opts := srv.opts
			srv.mu.Unlock()
			if v, err := opts.Store.Value(context.Background(), "app/db", ""); err != nil || string(v.Data) != "d" {
				t.Fatalf("Store.Value(app/db) = %q, %v", v.Data, err)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			// One call for the two names; the ARN is described, and so is
			// the name the listing lacks (to learn it does not exist).
			if n := f.emu.Calls(emulator.OpListSecrets); n != 1 {
				t.Fatalf("%d ListSecrets calls in explicit mode, want 1", n)
			}
			wantDescribe := 2
			if refused {
				wantDescribe = 3
			}
			if n := f.emu.Calls(emulator.OpDescribeSecret); n != wantDescribe {
				t.Fatalf("%d DescribeSecret calls, want %d", n, wantDescribe)
			}
		})
	}
}

func TestRunRejectsBeforeMounting(t *testing.T) {
	f := newEmu(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir, want string
	}{
		{filepath.Join(t.TempDir(), "missing"), "does not exist"},
		{file, "not a directory"},
		{"", "MOUNTPOINT"},
	} {
		srv := &fakeServer{}
		mounted := false
		d := srv.deps(nil)
		d.mount = func(string, sfs.Options) (mountedFS, error) { mounted = true; return srv, nil }
		var stdout bytes.Buffer
		err := run(context.Background(), emuConfig(t, f, tc.dir), Env{Stdout: &stdout}, d)
		if err == nil || !strings.Contains(err.Error(), tc.want) || mounted || stdout.Len() != 0 {
			t.Errorf("run(%q) = %v (mounted %v, stdout %q); want an error containing %q and no mount", tc.dir, err, mounted, stdout.String(), tc.want)
		}
	}
}

func TestRunReportsMountFailure(t *testing.T) {
	f := newEmu(t)
	d := systemDeps()
	d.hup = make(chan os.Signal)
	d.mount = func(string, sfs.Options) (mountedFS, error) { return nil, errors.New("no fuse") }
	err := run(context.Background(), emuConfig(t, f, t.TempDir()), Env{}, d)
	if err == nil || !strings.Contains(err.Error(), "no fuse") {
		t.Fatalf("run() = %v", err)
	}
}

// TestRunMountsForReal mounts through FUSE, reads a secret and unmounts.
func TestRunMountsForReal(t *testing.T) {
	testutil.RequireFUSE(t)
	f := newEmu(t)
	f.create(t, "app/db", `{"password":"p4ss"}`)
	dir := t.TempDir()
	d := systemDeps()
	d.hup = make(chan os.Signal)
	stdout, _, stop := runInBackground(t, emuConfig(t, f, dir), d)
	waitFor(t, "the serving line", func() bool { return stdout.String() != "" })
	if !(testutil.MountType(dir) != "") {
		t.Fatalf("%s is not in /proc/mounts", dir)
	}
	got, err := os.ReadFile(filepath.Join(dir, "app", "db", "password"))
	if err != nil || string(got) != "p4ss" {
		t.Fatalf("read password = %q, %v", got, err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if testutil.MountType(dir) != "" {
		t.Fatalf("%s is still mounted after run returned", dir)
	}
}

// TestDefect9_22_ServingLineWithAMappingFile: with --config the serving line
// is the documented one, "serving N secrets", N counting the secrets the
// mapped files use (and, with --expose-all, the listed ones beside them).
func TestDefect9_22_ServingLineWithAMappingFile(t *testing.T) {
	f := newEmu(t)
	f.create(t, "app/db", `{"password":"p4ss"}`)
	f.create(t, "app/key", "k")
	f.create(t, "other", "o")
	m, err := mapping.Parse("m.yaml", []byte("files:\n  - path: a\n    secret: app/db\n    key: password\n"+
		"  - path: b\n    template: '{{ secret \"app/db\" }}{{ secret \"app/key\" }}'\n  - path: c\n    secret: app/key\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		exposeAll bool
		want      string
	}{{false, "2"}, {true, "3"}} {
		dir := t.TempDir()
		cfg := emuConfig(t, f, dir)
		cfg.Mapping, cfg.ExposeAll = m, c.exposeAll
		srv := &fakeServer{}
		stdout, _, stop := runInBackground(t, cfg, srv.deps(make(chan os.Signal, 1)))
		waitFor(t, "the serving line", func() bool { return stdout.String() != "" })
		if got := servingLine.FindStringSubmatch(stdout.String()); got == nil || got[1] != c.want || got[2] != dir {
			t.Fatalf("expose-all %v: stdout = %q, want the serving line for %s secrets at %s", c.exposeAll, stdout.String(), c.want, dir)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
}
