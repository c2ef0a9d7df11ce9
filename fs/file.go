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

// fileNode is a file of secret content: a stage or a JSON key of a secret
// in the default layout, or a mapped file. Every open takes a snapshot that
// all reads through the handle see.
//
// It is what the mount keeps per file the kernel holds, beside go-fuse's
// Inode, so it is small (192 bytes with the Inode, one allocation of 192):
// no interface to a source of its own, strings shared with the tree (the
// name go-fuse keeps, the index's secret), no lock, its kind read back
// from its identity (root.id), and one word for the idle-name sweeper.
type fileNode struct {
	gofs.Inode
	lastUse // forget.go

	dir  *dirNode   // the directory it was looked up in: its path, and the root
	name string     // the stage, the JSON key, or the mapped file's name
	ref  *SecretRef // the secret shown (the index's, shared; its Name is dir's path); nil for a mapped file
	// span is where a key file's key lies in the last version read, so
	// that the next open of that version does not parse it again.
	span atomic.Pointer[keySpan]
	kept atomic.Uint64 // sum (root.sum) of the content whose size (and pages) the kernel may hold; 0 before any
	// told is the sum of the content watchers last learnt of (at the first
	// lookup, then by each change event, selfwrite.go); 0 before any and
	// once the file vanished.
	told atomic.Uint64
}

// newFileNode returns a file node, not yet in go-fuse's tree, for a file of
// directory d.
func newFileNode(d *dirNode, name string, ref *SecretRef) *fileNode {
	return &fileNode{dir: d, name: name, ref: ref}
}

func (f *fileNode) r() *root { return f.dir.r }

// kind says what the file is: a stage's, a JSON key's or a mapped file.
func (f *fileNode) kind() entryKind { return entryKind(f.StableAttr().Gen & kindMask) }

// path is the file's path in the mount.
func (f *fileNode) path() string { return join(f.dir.path, f.name) }

// secretIDs are the secrets the content depends on.
func (f *fileNode) secretIDs() []string {
	if f.ref == nil {
		return f.mappedFile().SecretIDs
	}
	return []string{f.ref.ID}
}

// content returns the file's current content; the caller owns Data.
func (f *fileNode) content(ctx context.Context) (Value, error) {
	if f.ref == nil {
		return f.r().render(ctx, f.mappedFile())
	}
	return f.layoutContent(ctx)
}

// adjust changes the mount's default attributes where the file has its own
// mode or owner (a mapped file).
func (f *fileNode) adjust(out *fuse.Attr) {
	if f.ref == nil {
		f.r().mappedAttr(out, f.mappedFile())
	}
}

// describe adds to an audit event what the file shows (stage, key).
func (f *fileNode) describe(ev *OpenEvent) {
	switch f.kind() {
	case kindStage:
		ev.Stage = f.name
	case kindKey:
		ev.Stage, ev.Key = f.r().opts.DefaultStage, f.name
	}
}

var (
	_ = (gofs.NodeOpener)((*fileNode)(nil))
	_ = (gofs.NodeReader)((*fileNode)(nil))
	_ = (gofs.NodeGetattrer)((*fileNode)(nil))
	_ = (gofs.NodeFlusher)((*fileNode)(nil))
	_ = (gofs.NodeGetxattrer)((*fileNode)(nil))
	_ = (gofs.NodeListxattrer)((*fileNode)(nil))
	_ = (gofs.NodeOnForgetter)((*fileNode)(nil))
	_ = (gofs.NodeWriter)((*fileNode)(nil))
	_ = (gofs.NodeSetattrer)((*fileNode)(nil))
)

// OnForget: the kernel forgot the file, so changes need not reach this node
// any more; a later lookup makes a new one.
func (f *fileNode) OnForget() {
	f.r().unregisterFile(f)
}

// attr fills the file's attributes.
func (f *fileNode) attr(out *fuse.Attr, size int, mtime time.Time) {
	f.r().fileAttr(out, size, mtime)
	f.adjust(out)
}

// Getattr answers with the file's current content, also when the request
// carries a handle (the kernel's, or one go-fuse picks among the open ones
// for a plain stat): the kernel keeps one size per inode for every handle
// and every stat, so it must be the size the next open reads. A handle's
// reads do not depend on it (they are direct, see Open).
func (f *fileNode) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	f.r().sweep.used(f.EmbeddedInode())
	v, err := f.content(ctx)
	if err != nil {
		return f.r().toErrno(ctx, err)
	}
	f.attr(&out.Attr, len(v.Data), v.CreatedDate)
	clear(v.Data)
	out.SetTimeout(f.r().attrTimeout())
	return 0
}

// Open takes a snapshot of the content for the handle. In kernel-cache mode
// it declines, which makes the kernel stop sending OPEN for the whole mount.
func (f *fileNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	f.r().sweep.used(f.EmbeddedInode())
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return f.openSelf(ctx, flags)
	}
	if f.r().opts.KernelCache {
		return nil, 0, syscall.ENOSYS
	}
	v, err := f.content(ctx)
	if err != nil {
		errno := f.r().toErrno(ctx, err)
		f.audit(ctx, Value{}, errno)
		return nil, 0, errno
	}
	f.audit(ctx, v, 0)
	if sum := f.r().sum(v.Data); f.kept.Swap(sum) != sum {
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

// openSelf opens the file for the daemon's own write of its new bytes
// (selfwrite.go): write only, from the writer's thread, for the write it
// has pending; anything else is EROFS. In kernel-cache mode it declines
// like any open, and the write goes through the page cache.
func (f *fileNode) openSelf(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_WRONLY || flags&syscall.O_APPEND != 0 ||
		f.r().writer.op(ctx, opWrite, f.path()) == nil {
		return nil, 0, syscall.EROFS
	}
	if f.r().opts.KernelCache {
		return nil, 0, syscall.ENOSYS
	}
	return selfHandle{}, fuse.FOPEN_NOFLUSH, 0
}

// selfHandle is the daemon's own open for writing: it holds nothing, the
// node checks each request (Write, Setattr).
type selfHandle struct{}

// Write accepts the writer's write of exactly the bytes the file serves
// (the pending operation's, at their offset); it changes nothing.
func (f *fileNode) Write(ctx context.Context, fh gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	op := f.r().writer.op(ctx, opWrite, f.path())
	if op == nil || !op.matchWrite(data, off) {
		return 0, syscall.EROFS
	}
	return uint32(len(data)), 0
}

// Setattr accepts the truncation of the writer's pending write, and
// answers the attributes of the content the file serves (so the kernel's
// size goes straight to the new one, never through 0). Nothing else may
// change an attribute.
func (f *fileNode) Setattr(ctx context.Context, fh gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	op := f.r().writer.op(ctx, opWrite, f.path())
	if op == nil || !op.matchSetattr(in) {
		return syscall.EROFS
	}
	f.attr(&out.Attr, len(op.data), f.mtime(ctx))
	out.Ino = f.StableAttr().Ino // the kernel takes the inode number from the answer
	out.SetTimeout(f.r().attrTimeout())
	return 0
}

// mtime is the file's modification time now (the zero time if it cannot
// be read).
func (f *fileNode) mtime(ctx context.Context) time.Time {
	v, err := f.content(ctx)
	if err != nil {
		return time.Time{}
	}
	clear(v.Data)
	return v.CreatedDate
}

// dropCache has the invalidation goroutine drop the kernel's caches of the
// file and waits for it, at most a second.
func (f *fileNode) dropCache(ctx context.Context) {
	select {
	case <-f.r().inval.node(f):
	case <-ctx.Done():
	case <-f.r().opts.Clock.Alarm(f.r().opts.Clock.Now().Add(time.Second)):
		f.r().log.Warn("dropping the kernel's cache of a file is slow", "file", f.path())
	}
}

// audit reports an open, with the version served or the errno the caller
// got.
func (f *fileNode) audit(ctx context.Context, v Value, errno syscall.Errno) {
	f.auditAt(ctx, v, errno, false)
}

// auditAt reports an open of the file, or its refusal at lookup
// (atLookup), with the version served or the errno the caller got.
func (f *fileNode) auditAt(ctx context.Context, v Value, errno syscall.Errno, atLookup bool) {
	ev := OpenEvent{Path: f.path(), SecretID: strings.Join(f.secretIDs(), ","),
		VersionID: v.VersionID, Stale: v.Stale, Errno: errno, AtLookup: atLookup}
	f.describe(&ev)
	f.r().audit(ctx, ev)
}

// Read serves reads in kernel-cache mode, where there is no handle.
func (f *fileNode) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h, ok := fh.(*handle); ok {
		return h.Read(ctx, dest, off)
	}
	v, err := f.content(ctx)
	if err != nil {
		return nil, f.r().toErrno(ctx, err)
	}
	return fuse.ReadResultData(slice(v.Data, dest, off)), 0
}

// Flush: nothing to flush. In kernel-cache mode ENOSYS makes the kernel stop
// sending FLUSH for the whole mount.
func (f *fileNode) Flush(ctx context.Context, fh gofs.FileHandle) syscall.Errno {
	if f.r().opts.KernelCache {
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

// layoutContent is a default-layout file's content: a stage's whole
// value, or one top-level key of the JSON value of the default stage.
func (f *fileNode) layoutContent(ctx context.Context) (Value, error) {
	r, id := f.r(), f.ref.ID
	// The kernel may still hold the inode (an open file, a working
	// directory) of a secret that has left the mount's scope since.
	if err := r.stillShown(ctx, f.dir.path, id); err != nil {
		return Value{}, err
	}
	if f.kind() == kindStage {
		return r.opts.Store.Value(ctx, id, f.name)
	}
	v, err := r.opts.Store.Value(ctx, id, r.opts.DefaultStage)
	if err != nil {
		return v, err
	}
	data, found := f.key(v)
	clear(v.Data)
	if !found {
		return Value{}, fmt.Errorf("secret %q has no JSON key %q: %w", id, f.name, syscall.ENOENT)
	}
	v.Data = data
	return v, nil
}

// key is the key file's bytes in v, the default stage's value: cut out
// where the key was found in that version, parsing the value only for a
// version not seen before.
func (f *fileNode) key(v Value) ([]byte, bool) {
	sp := f.span.Load()
	if sp == nil || sp.versionID != v.VersionID || v.VersionID == "" {
		sp = findKeySpan(v.VersionID, v.Data, f.name)
		f.span.Store(sp)
	}
	return sp.content(v.Data)
}
