package fs

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// fileNode is a secret's file: a stage's whole value, or one top-level key
// of the JSON value of the default stage.
type fileNode struct {
	gofs.Inode
	r        *root
	secretID string
	dir      string // the secret's directory path
	name     string // the stage or the key
	kind     entryKind

	mu          sync.Mutex
	keptVersion string // version whose pages the kernel may hold; guarded by mu
}

var (
	_ = (gofs.NodeOpener)((*fileNode)(nil))
	_ = (gofs.NodeReader)((*fileNode)(nil))
	_ = (gofs.NodeGetattrer)((*fileNode)(nil))
	_ = (gofs.NodeFlusher)((*fileNode)(nil))
	_ = (gofs.NodeGetxattrer)((*fileNode)(nil))
	_ = (gofs.NodeListxattrer)((*fileNode)(nil))
)

// value reads the file's current content from the store.
func (f *fileNode) value(ctx context.Context) (Value, error) {
	if f.kind == kindStage {
		return f.r.opts.Store.Value(ctx, f.secretID, f.name)
	}
	v, err := f.r.opts.Store.Value(ctx, f.secretID, f.r.opts.DefaultStage)
	if err != nil {
		return v, err
	}
	keys, ok := jsonKeys(v.Data)
	clear(v.Data)
	data, found := keys[f.name]
	if !ok || !found {
		return Value{}, fmt.Errorf("secret %q has no JSON key %q: %w", f.secretID, f.name, syscall.ENOENT)
	}
	v.Data = data
	return v, nil
}

func (f *fileNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := fh.(*handle); ok {
		return h.Getattr(ctx, out)
	}
	v, err := f.value(ctx)
	if err != nil {
		return f.r.toErrno(ctx, err)
	}
	f.r.fileAttr(&out.Attr, len(v.Data), v.CreatedDate)
	clear(v.Data)
	out.SetTimeout(f.r.attrTimeout())
	return 0
}

// Open takes a snapshot of the value for the handle. In kernel-cache mode it
// declines, which makes the kernel stop sending OPEN for the whole mount.
func (f *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	if f.r.opts.KernelCache {
		return nil, 0, syscall.ENOSYS
	}
	v, err := f.value(ctx)
	if err != nil {
		errno := f.r.toErrno(ctx, err)
		f.auditOpen(ctx, Value{}, errno)
		return nil, 0, errno
	}
	f.auditOpen(ctx, v, 0)
	f.mu.Lock()
	changed := f.keptVersion != v.VersionID
	f.keptVersion = v.VersionID
	f.mu.Unlock()
	open := uint32(fuse.FOPEN_NOFLUSH)
	if changed {
		// The kernel may hold pages and a size of another version: read
		// this snapshot directly, and have the invalidation goroutine drop
		// the kernel's caches before the open completes, so that a stat
		// after this open shows the new size. (A notification sent while
		// OPEN is outstanding is safe; one sent during a READ of the same
		// file is not, which is why it is never sent from a handler.)
		open |= fuse.FOPEN_DIRECT_IO
		select {
		case <-f.r.inval.node(f):
		case <-ctx.Done():
		case <-time.After(time.Second):
			f.r.log.Warn("dropping the kernel's cache of a file is slow", "secret", f.secretID, "file", f.name)
		}
	} else {
		open |= fuse.FOPEN_KEEP_CACHE
	}
	return &handle{r: f.r, v: v}, open, 0
}

// Read serves reads in kernel-cache mode, where there is no handle.
func (f *fileNode) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h, ok := fh.(*handle); ok {
		return h.Read(ctx, dest, off)
	}
	v, err := f.value(ctx)
	if err != nil {
		return nil, f.r.toErrno(ctx, err)
	}
	return fuse.ReadResultData(slice(v.Data, dest, off)), 0
}

// Flush: nothing to flush. In kernel-cache mode ENOSYS makes the kernel stop
// sending FLUSH for the whole mount.
func (f *fileNode) Flush(ctx context.Context, fh gofs.FileHandle) syscall.Errno {
	if f.r.opts.KernelCache {
		return syscall.ENOSYS
	}
	return 0
}

// slice copies the part of data a read at off asks for into dest.
func slice(data, dest []byte, off int64) []byte {
	if off >= int64(len(data)) {
		return dest[:0]
	}
	n := copy(dest, data[off:])
	return dest[:n]
}

// handle is one open of a file: a snapshot that every read through it sees.
type handle struct {
	r  *root
	mu sync.Mutex
	v  Value // guarded by mu; Data zeroed on release
}

var (
	_ = (gofs.FileReader)((*handle)(nil))
	_ = (gofs.FileGetattrer)((*handle)(nil))
	_ = (gofs.FileReleaser)((*handle)(nil))
)

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fuse.ReadResultData(slice(h.v.Data, dest, off)), 0
}

func (h *handle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.r.fileAttr(&out.Attr, len(h.v.Data), h.v.CreatedDate)
	out.SetTimeout(h.r.attrTimeout())
	return 0
}

// Release zeroes the snapshot, so the value does not linger in memory
// longer than its readers need it.
func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	clear(h.v.Data)
	h.v.Data = nil
	h.mu.Unlock()
	return 0
}
