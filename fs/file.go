package fs

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// source is where a file's content comes from: a stage or a JSON key of a
// secret in the default layout (layoutFile), or the rendering of a mapped
// file (mappedSource).
type source interface {
	// content returns the file's current content; the caller owns Data.
	content(ctx context.Context) (Value, error)
	// secretIDs are the secrets the content depends on.
	secretIDs() []string
	// path is the file's path in the mount.
	path() string
	// adjust changes the mount's default attributes where the file has its
	// own mode or owner.
	adjust(out *fuse.Attr)
	// describe adds to an audit event what the file shows (stage, key).
	describe(ev *OpenEvent)
}

// fileNode is a file of secret content. Every open takes a snapshot that all
// reads through the handle see.
type fileNode struct {
	gofs.Inode
	r   *root
	src source

	mu   sync.Mutex
	kept uint64 // sum (root.sum) of the content whose size (and pages) the kernel may hold; guarded by mu
	seen bool   // kept is set; guarded by mu
}

var (
	_ = (gofs.NodeOpener)((*fileNode)(nil))
	_ = (gofs.NodeReader)((*fileNode)(nil))
	_ = (gofs.NodeGetattrer)((*fileNode)(nil))
	_ = (gofs.NodeFlusher)((*fileNode)(nil))
	_ = (gofs.NodeGetxattrer)((*fileNode)(nil))
	_ = (gofs.NodeListxattrer)((*fileNode)(nil))
	_ = (gofs.NodeOnForgetter)((*fileNode)(nil))
)

// OnForget: the kernel forgot the file, so changes need not reach this node
// any more; a later lookup makes a new one.
func (f *fileNode) OnForget() {
	f.r.unregisterFile(f)
}

// attr fills the file's attributes.
func (f *fileNode) attr(out *fuse.Attr, size int, mtime time.Time) {
	f.r.fileAttr(out, size, mtime)
	f.src.adjust(out)
}

// Getattr answers with the file's current content, also when the request
// carries a handle (the kernel's, or one go-fuse picks among the open ones
// for a plain stat): the kernel keeps one size per inode for every handle
// and every stat, so it must be the size the next open reads. A handle's
// reads do not depend on it (they are direct, see Open).
func (f *fileNode) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	v, err := f.src.content(ctx)
	if err != nil {
		return f.r.toErrno(ctx, err)
	}
	f.attr(&out.Attr, len(v.Data), v.CreatedDate)
	clear(v.Data)
	out.SetTimeout(f.r.attrTimeout())
	return 0
}

// Open takes a snapshot of the content for the handle. In kernel-cache mode
// it declines, which makes the kernel stop sending OPEN for the whole mount.
func (f *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	if f.r.opts.KernelCache {
		return nil, 0, syscall.ENOSYS
	}
	v, err := f.src.content(ctx)
	if err != nil {
		errno := f.r.toErrno(ctx, err)
		f.audit(ctx, Value{}, errno)
		return nil, 0, errno
	}
	f.audit(ctx, v, 0)
	sum := f.r.sum(v.Data)
	f.mu.Lock()
	changed := !f.seen || f.kept != sum
	f.kept, f.seen = sum, true
	f.mu.Unlock()
	if changed {
		// The kernel may hold a size (and pages of a mapping) of other
		// content: have the invalidation goroutine drop them before the
		// open completes, so that a stat after this open shows the new
		// size. (A notification sent while OPEN is outstanding is safe;
		// one sent during a READ of the same file is not, which is why it
		// is never sent from a handler.)
		f.dropCache(ctx)
	}
	// Every handle reads its own snapshot directly, never through the page
	// cache: the kernel keeps one page cache and one size per inode for all
	// handles, so a handle opened before a rotation would read pages of the
	// new version, or other readers would be cut to its size. Direct reads
	// are not bounded by the kernel's size. A mapping (mmap) still goes
	// through the page cache (CAP_DIRECT_IO_ALLOW_MMAP, mount.go).
	return &handle{v: v}, fuse.FOPEN_DIRECT_IO | fuse.FOPEN_NOFLUSH, 0
}

// dropCache has the invalidation goroutine drop the kernel's caches of the
// file and waits for it, at most a second.
func (f *fileNode) dropCache(ctx context.Context) {
	select {
	case <-f.r.inval.node(f):
	case <-ctx.Done():
	case <-f.r.opts.Clock.Alarm(f.r.opts.Clock.Now().Add(time.Second)):
		f.r.log.Warn("dropping the kernel's cache of a file is slow", "file", f.src.path())
	}
}

// audit reports an open, with the version served or the errno the caller
// got.
func (f *fileNode) audit(ctx context.Context, v Value, errno syscall.Errno) {
	f.r.auditSource(ctx, f.src, v, errno, false)
}

// auditSource reports an open of src, or its refusal at lookup (atLookup),
// with the version served or the errno the caller got.
func (r *root) auditSource(ctx context.Context, src source, v Value, errno syscall.Errno, atLookup bool) {
	ev := OpenEvent{Path: src.path(), SecretID: strings.Join(src.secretIDs(), ","),
		VersionID: v.VersionID, Stale: v.Stale, Errno: errno, AtLookup: atLookup}
	src.describe(&ev)
	r.audit(ctx, ev)
}

// Read serves reads in kernel-cache mode, where there is no handle.
func (f *fileNode) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h, ok := fh.(*handle); ok {
		return h.Read(ctx, dest, off)
	}
	v, err := f.src.content(ctx)
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
	mu sync.Mutex
	v  Value // guarded by mu; Data zeroed on release
}

var (
	_ = (gofs.FileReader)((*handle)(nil))
	_ = (gofs.FileReleaser)((*handle)(nil))
)

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fuse.ReadResultData(slice(h.v.Data, dest, off)), 0
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

// layoutFile is a file of the default layout: a stage's whole value, or one
// top-level key of the JSON value of the default stage.
type layoutFile struct {
	r        *root
	secretID string
	dir      string // the secret's directory path
	name     string // the stage or the key
	kind     entryKind
	// span is where a key file's key lies in the last version read, so
	// that the next open of that version does not parse it again.
	span atomic.Pointer[keySpan]
}

func (l *layoutFile) content(ctx context.Context) (Value, error) {
	// The kernel may still hold the inode (an open file, a working
	// directory) of a secret that has left the mount's scope since.
	if err := l.r.stillShown(ctx, l.dir, l.secretID); err != nil {
		return Value{}, err
	}
	if l.kind == kindStage {
		return l.r.opts.Store.Value(ctx, l.secretID, l.name)
	}
	v, err := l.r.opts.Store.Value(ctx, l.secretID, l.r.opts.DefaultStage)
	if err != nil {
		return v, err
	}
	data, found := l.key(v)
	clear(v.Data)
	if !found {
		return Value{}, fmt.Errorf("secret %q has no JSON key %q: %w", l.secretID, l.name, syscall.ENOENT)
	}
	v.Data = data
	return v, nil
}

// key is the key file's bytes in v, the default stage's value: cut out
// where the key was found in that version, parsing the value only for a
// version not seen before.
func (l *layoutFile) key(v Value) ([]byte, bool) {
	sp := l.span.Load()
	if sp == nil || sp.versionID != v.VersionID || v.VersionID == "" {
		sp = findKeySpan(v.VersionID, v.Data, l.name)
		l.span.Store(sp)
	}
	return sp.content(v.Data)
}

func (l *layoutFile) secretIDs() []string { return []string{l.secretID} }
func (l *layoutFile) path() string        { return join(l.dir, l.name) }
func (l *layoutFile) adjust(*fuse.Attr)   {}

func (l *layoutFile) describe(ev *OpenEvent) {
	if l.kind == kindStage {
		ev.Stage = l.name
	} else {
		ev.Stage, ev.Key = l.r.opts.DefaultStage, l.name
	}
}
