package mount

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeMountPoint plays a mount point through a list of stat answers.
type fakeMountPoint struct {
	stats     []error // the answers in turn; nil means a directory
	file      bool    // answer a regular file instead of a directory
	detached  int
	detachErr error
	top       mountEntry // what is mounted on the mount point, if anything
	statfsErr error
	apiErr    error // what mountAPI answers
}

type fakeInfo struct{ dir bool }

func (i fakeInfo) Name() string { return "mnt" }
func (i fakeInfo) Size() int64  { return 0 }
func (i fakeInfo) Mode() fs.FileMode {
	return map[bool]fs.FileMode{true: fs.ModeDir | 0o755, false: 0o644}[i.dir]
}
func (i fakeInfo) ModTime() time.Time { return time.Time{} }
func (i fakeInfo) IsDir() bool        { return i.dir }
func (i fakeInfo) Sys() any           { return nil }

func (f *fakeMountPoint) mountPoint() mountPoint {
	return mountPoint{
		stat: func(string) (os.FileInfo, error) {
			err := f.stats[0]
			if len(f.stats) > 1 {
				f.stats = f.stats[1:]
			}
			if err != nil {
				return nil, &fs.PathError{Op: "stat", Path: "/mnt", Err: err}
			}
			return fakeInfo{dir: !f.file}, nil
		},
		detach: func(context.Context, string) error {
			f.detached++
			if f.detachErr == nil {
				f.top = mountEntry{}
			}
			return f.detachErr
		},
		mounted: func(dir string) (mountEntry, bool) {
			return f.top, f.top.fstype != "" && dir == "/mnt"
		},
		statfs:   func(string) error { return f.statfsErr },
		mountAPI: func() error { return f.apiErr },
	}
}

func TestMountPointPrepare(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name        string
		fake        fakeMountPoint
		wantCleared bool
		wantDetach  int
		wantErr     string
		over        bool // Config.Handover
	}{
		{name: "directory", fake: fakeMountPoint{stats: []error{nil}}},
		{name: "stale mount cleared", fake: fakeMountPoint{stats: []error{syscall.ENOTCONN, nil}}, wantCleared: true, wantDetach: 1},
		{name: "stale mount stays", fake: fakeMountPoint{stats: []error{syscall.ENOTCONN, syscall.ENOTCONN}}, wantCleared: true, wantDetach: 1, wantErr: "still holds a stale mount"},
		{name: "detach fails", fake: fakeMountPoint{stats: []error{syscall.ENOTCONN}, detachErr: errors.New("EPERM")}, wantDetach: 1, wantErr: "umount -l"},
		{name: "missing", fake: fakeMountPoint{stats: []error{syscall.ENOENT}}, wantErr: "mkdir -p"},
		{name: "a file", fake: fakeMountPoint{stats: []error{nil}, file: true}, wantErr: "not a directory"},
		{name: "denied", fake: fakeMountPoint{stats: []error{syscall.EACCES}}, wantErr: "permission denied"},
		// Issue 10, item 4.
		{name: "served by a live secretsfs", fake: fakeMountPoint{stats: []error{nil}, top: mountEntry{fstype: "fuse.secretsfs", source: "none"}},
			wantErr: `is already mounted: a running secretsfs serves it (source "none"); unmount it first (umount /mnt)`},
		{name: "another filesystem mounted there", fake: fakeMountPoint{stats: []error{nil}, top: mountEntry{fstype: "tmpfs", source: "tmpfs"}}},
		{name: "stale secretsfs whose attributes the kernel still caches", fake: fakeMountPoint{stats: []error{nil}, top: mountEntry{fstype: "fuse.secretsfs"}, statfsErr: syscall.ENOTCONN},
			wantCleared: true, wantDetach: 1},
		// Issue 14: a CSI driver mounts over what a previous one left.
		{name: "over a stale mount", over: true, fake: fakeMountPoint{stats: []error{syscall.ENOTCONN}, top: mountEntry{fstype: "fuse.secretsfs"}}},
		{name: "over a live secretsfs", over: true, fake: fakeMountPoint{stats: []error{nil}, top: mountEntry{fstype: "fuse.secretsfs"}}},
		{name: "over another filesystem", over: true, fake: fakeMountPoint{stats: []error{nil}, top: mountEntry{fstype: "tmpfs", source: "tmpfs"}},
			wantErr: `holds a tmpfs mount (source "tmpfs") that secretsfs did not make; unmount it (umount /mnt)`},
		{name: "over a stale mount without the mount API", over: true, fake: fakeMountPoint{stats: []error{syscall.ENOTCONN, nil}, top: mountEntry{fstype: "fuse.secretsfs"}, apiErr: errors.New("ENOSYS")},
			wantCleared: true, wantDetach: 1},
		{name: "over a directory", over: true, fake: fakeMountPoint{stats: []error{nil}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cleared, err := tc.fake.mountPoint().prepare(context.Background(), "/mnt", tc.over, log)
			if cleared != tc.wantCleared || tc.fake.detached != tc.wantDetach {
				t.Errorf("cleared %v, %d detaches; want %v, %d", cleared, tc.fake.detached, tc.wantCleared, tc.wantDetach)
			}
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("prepare() = %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "/mnt")):
				t.Errorf("prepare() = %v, want an error naming /mnt and containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestSystemMountPoint(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	if _, err := systemMountPoint().prepare(context.Background(), dir, false, log); err != nil {
		t.Fatalf("prepare(%s) = %v", dir, err)
	}
	if _, err := systemMountPoint().prepare(context.Background(), dir+"/missing", false, log); err == nil {
		t.Fatal("prepare accepted a missing directory")
	}
}
