package fs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// valueFailingStore fails every Value of one secret while its stages can
// still be read: a value stale beyond --max-stale, or a KMS refusal.
type valueFailingStore struct {
	*fakeStore
	failing string
	err     error
}

func (s valueFailingStore) Value(ctx context.Context, id, stage string) (Value, error) {
	if id == s.failing {
		return Value{}, s.err
	}
	return s.fakeStore.Value(ctx, id, stage)
}

// TestDefect9_20_RefusalAtLookupIsAudited: a file whose refusal comes at
// LOOKUP, before any OPEN (a JSON key of a value that cannot be served, a
// secret whose stages cannot be read, a mapped file that fails to render),
// is audited with the errno the caller got, as a refused open is.
func TestDefect9_20_RefusalAtLookupIsAudited(t *testing.T) {
	s, c := layoutStore()
	s.setErr("bin", errUnavailable) // neither stages nor values
	broken := MappedFile{Path: "conf/broken.ini", SecretIDs: []string{"tagged"},
		Render: func(context.Context) (Value, error) { return Value{}, errors.New("template: executing: no key hots") }}
	o := &recordingObserver{}
	mnt := mountFS(t, Options{
		Store:   valueFailingStore{fakeStore: s, failing: "a", err: errUnavailable},
		Catalog: c, Auditor: o, Files: []MappedFile{broken},
	})
	for _, p := range []string{"a/username", "bin/AWSCURRENT", "conf/broken.ini", "a/AWSCURRENT"} {
		if _, err := os.ReadFile(filepath.Join(mnt, p)); !errors.Is(err, syscall.EIO) {
			t.Fatalf("read %s: %v, want EIO", p, err)
		}
	}
	want := []OpenEvent{
		{Path: "a/username", SecretID: "a", Stage: "AWSCURRENT", Key: "username", Errno: syscall.EIO, AtLookup: true},
		{Path: "bin/AWSCURRENT", SecretID: "bin", Errno: syscall.EIO, AtLookup: true},
		{Path: "conf/broken.ini", SecretID: "tagged", Errno: syscall.EIO, AtLookup: true},
		// A stage file is looked up from the stages and refused at OPEN.
		{Path: "a/AWSCURRENT", SecretID: "a", Stage: "AWSCURRENT", Errno: syscall.EIO},
	}
	evs := o.events()
	if len(evs) != len(want) {
		t.Fatalf("%d audit events, want %d: %+v", len(evs), len(want), evs)
	}
	for i, ev := range evs {
		w := want[i]
		if ev.Path != w.Path || ev.SecretID != w.SecretID || ev.Stage != w.Stage || ev.Key != w.Key ||
			ev.VersionID != "" || ev.Errno != w.Errno || ev.AtLookup != w.AtLookup {
			t.Errorf("event %d = %+v, want %+v", i, ev, w)
		}
		if ev.TID == 0 || ev.UID != uint32(os.Geteuid()) || ev.Time.IsZero() {
			t.Errorf("event %d caller: tid %d uid %d time %v", i, ev.TID, ev.UID, ev.Time)
		}
	}
	// A name that is no file at all is not audited.
	os.Stat(filepath.Join(mnt, "tagged/nothing"))
	if n := len(o.events()); n != len(want) {
		t.Errorf("a lookup of a missing name was audited (%d events)", n)
	}
}
