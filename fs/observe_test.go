package fs

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secretsfs/secretsfs/cache/cachetest"
)

type opKey struct {
	op    string
	errno syscall.Errno
}

type recordingObserver struct {
	mu  sync.Mutex
	ops map[opKey]int // guarded by mu
	evs []OpenEvent   // guarded by mu
}

func (o *recordingObserver) Op(op string, errno syscall.Errno) {
	o.mu.Lock()
	o.ops[opKey{op, errno}]++
	o.mu.Unlock()
}

func (o *recordingObserver) Open(ev OpenEvent) {
	o.mu.Lock()
	o.evs = append(o.evs, ev)
	o.mu.Unlock()
}

func (o *recordingObserver) count(op string, errno syscall.Errno) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.ops[opKey{op, errno}]
}

func (o *recordingObserver) events() []OpenEvent {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]OpenEvent(nil), o.evs...)
}

func TestObserverSeesEveryRequestWithItsErrno(t *testing.T) {
	s, c := layoutStore()
	o := &recordingObserver{ops: map[opKey]int{}}
	mnt := mountFS(t, Options{Store: s, Catalog: c, Observer: o})
	if _, err := os.ReadFile(filepath.Join(mnt, "a/username")); err != nil {
		t.Fatal(err)
	}
	os.Stat(filepath.Join(mnt, "a/missing"))
	unix.Getxattr(filepath.Join(mnt, "a/username"), "user.other", make([]byte, 16))
	for _, want := range []opKey{{"lookup", 0}, {"open", 0}, {"read", 0}, {"lookup", syscall.ENOENT}, {"getxattr", syscall.ENODATA}} {
		if o.count(want.op, want.errno) == 0 {
			t.Errorf("no %s answered %v observed", want.op, want.errno)
		}
	}
}

func TestAuditorSeesEveryOpenWithItsCaller(t *testing.T) {
	s, c := layoutStore()
	o := &recordingObserver{}
	clock := cachetest.NewClock(testEpoch)
	mnt := mountFS(t, Options{Store: s, Catalog: c, Auditor: o, Clock: clock})
	// Looked up while it works; opened once it fails (the kernel keeps
	// the entry for a second).
	if _, err := os.Stat(filepath.Join(mnt, "bin/AWSCURRENT")); err != nil {
		t.Fatal(err)
	}
	s.setErr("bin", errUnavailable)
	if _, err := os.ReadFile(filepath.Join(mnt, "a/username")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(filepath.Join(mnt, "tagged/BLUE")); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute) // the last open is stamped a minute later
	os.ReadFile(filepath.Join(mnt, "bin/AWSCURRENT"))
	evs := o.events()
	if len(evs) != 3 {
		t.Fatalf("%d open events, want 3: %+v", len(evs), evs)
	}
	want := []OpenEvent{
		{Path: "a/username", SecretID: "a", Stage: "AWSCURRENT", Key: "username", VersionID: "a-v1"},
		{Path: "tagged/BLUE", SecretID: "tagged", Stage: "BLUE", VersionID: "tagged-v1"},
		{Path: "bin/AWSCURRENT", SecretID: "bin", Stage: "AWSCURRENT", Errno: syscall.EIO},
	}
	for i, ev := range evs {
		w := want[i]
		if ev.Path != w.Path || ev.SecretID != w.SecretID || ev.Stage != w.Stage || ev.Key != w.Key || ev.VersionID != w.VersionID || ev.Errno != w.Errno {
			t.Errorf("event %d = %+v, want %+v", i, ev, w)
		}
		if ev.TID == 0 || ev.UID != uint32(os.Geteuid()) || ev.GID != uint32(os.Getegid()) {
			t.Errorf("event %d caller: tid %d uid %d gid %d", i, ev.TID, ev.UID, ev.GID)
		}
		at := testEpoch
		if i == 2 {
			at = at.Add(time.Minute)
		}
		if !ev.Time.Equal(at) {
			t.Errorf("event %d at %v, want the mount's clock: %v", i, ev.Time, at)
		}
	}
}
