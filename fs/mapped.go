package fs

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// MappedFile is a file placed at a chosen path by a mapping file. Its content
// is computed by Render (the daemon reads the secrets, selects a key, applies
// a format or runs a template); the filesystem serves it like any secret
// file: a snapshot per open, the kernel's pages kept while the content is
// unchanged, and dropped when a secret it depends on changes.
type MappedFile struct {
	// Path is the file's path in the mount: relative, "/"-separated. Its
	// directories are made from it.
	Path string
	// Mode is the permission bits; zero means Options.FileMode.
	Mode os.FileMode
	// UID and GID own the file; 0 means Options.UID and Options.GID (as
	// everywhere in go-fuse), so the daemon gives the ids it means.
	UID, GID uint32
	// SecretIDs are the secrets the content depends on: a change to any of
	// them drops the kernel's caches of the file.
	SecretIDs []string
	// Render returns the content and, for the extended attributes, the
	// version, ARN, stages and freshness of the (first) secret it reads.
	// Errors map to errno as the Store's do; anything else is EIO.
	Render func(ctx context.Context) (Value, error)
}

// mappedTree is the mapped files seen as a tree: each directory's children
// (true for a directory) and each file by path.
type mappedTree struct {
	dirs  map[string]map[string]bool
	files map[string]*MappedFile
}

// newMappedTree builds the tree, refusing paths that are not clean relative
// paths, two files at one path, and a file where a directory is needed.
func newMappedTree(files []MappedFile) (*mappedTree, error) {
	t := &mappedTree{dirs: map[string]map[string]bool{"": {}}, files: map[string]*MappedFile{}}
	for i := range files {
		f := &files[i]
		segs, ok := splitSecretName(f.Path)
		if !ok {
			return nil, fmt.Errorf("mapped file %q: not a relative path of valid file names", f.Path)
		}
		if _, dup := t.files[f.Path]; dup {
			return nil, fmt.Errorf("mapped file %q: given twice", f.Path)
		}
		dir := ""
		for i, s := range segs {
			isDir := i < len(segs)-1
			if prev, ok := t.dirs[dir][s]; ok && prev != isDir {
				return nil, fmt.Errorf("mapped file %q: %q is both a file and a directory", f.Path, join(dir, s))
			}
			t.dirs[dir][s] = isDir
			dir = join(dir, s)
			if isDir && t.dirs[dir] == nil {
				t.dirs[dir] = map[string]bool{}
			}
		}
		t.files[f.Path] = f
	}
	return t, nil
}

// mappedNode is a mapped file.
type mappedNode struct {
	gofs.Inode
	r *root
	f *MappedFile

	mu   sync.Mutex
	kept [sha256.Size]byte // content whose pages the kernel may hold; guarded by mu
}

var (
	_ = (gofs.NodeOpener)((*mappedNode)(nil))
	_ = (gofs.NodeReader)((*mappedNode)(nil))
	_ = (gofs.NodeGetattrer)((*mappedNode)(nil))
	_ = (gofs.NodeFlusher)((*mappedNode)(nil))
	_ = (gofs.NodeGetxattrer)((*mappedNode)(nil))
	_ = (gofs.NodeListxattrer)((*mappedNode)(nil))
)

func (m *mappedNode) attr(out *fuse.Attr, size int, mtime time.Time) {
	m.r.fileAttr(out, size, mtime)
	mode := m.f.Mode
	if mode == 0 {
		mode = m.r.opts.FileMode
	}
	out.Mode = syscall.S_IFREG | uint32(mode.Perm())
	out.Owner = fuse.Owner{Uid: m.f.UID, Gid: m.f.GID}
}

// render computes the content; an error is logged once (by toErrno) with the
// file's path and why, never a value.
func (m *mappedNode) render(ctx context.Context) (Value, syscall.Errno) {
	v, err := m.f.Render(ctx)
	if err != nil {
		return Value{}, m.r.toErrno(ctx, fmt.Errorf("mapped file %s: %w", m.f.Path, err))
	}
	return v, 0
}

func (m *mappedNode) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if h, ok := fh.(*mappedHandle); ok {
		return h.Getattr(ctx, out)
	}
	v, errno := m.render(ctx)
	if errno != 0 {
		return errno
	}
	m.attr(&out.Attr, len(v.Data), v.CreatedDate)
	clear(v.Data)
	out.SetTimeout(m.r.attrTimeout())
	return 0
}

// Open takes a snapshot of the content, as fileNode.Open does; the kernel
// keeps its pages while the content is the same as at the last open.
func (m *mappedNode) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC|syscall.O_APPEND) != 0 {
		return nil, 0, syscall.EROFS
	}
	if m.r.opts.KernelCache {
		return nil, 0, syscall.ENOSYS
	}
	v, errno := m.render(ctx)
	m.auditOpen(ctx, v, errno)
	if errno != 0 {
		return nil, 0, errno
	}
	sum := sha256.Sum256(v.Data)
	m.mu.Lock()
	changed := m.kept != sum
	m.kept = sum
	m.mu.Unlock()
	open := uint32(fuse.FOPEN_NOFLUSH)
	if changed {
		open |= fuse.FOPEN_DIRECT_IO
		select {
		case <-m.r.inval.mapped(m):
		case <-ctx.Done():
		case <-time.After(time.Second):
			m.r.log.Warn("dropping the kernel's cache of a file is slow", "file", m.f.Path)
		}
	} else {
		open |= fuse.FOPEN_KEEP_CACHE
	}
	return &mappedHandle{handle: &handle{r: m.r, v: v}, n: m}, open, 0
}

// auditOpen reports an open to the auditor: the file's path and the first
// secret it reads.
func (m *mappedNode) auditOpen(ctx context.Context, v Value, errno syscall.Errno) {
	ev := OpenEvent{Path: m.f.Path, VersionID: v.VersionID, Stale: v.Stale, Errno: errno}
	if len(m.f.SecretIDs) > 0 {
		ev.SecretID = strings.Join(m.f.SecretIDs, ",")
	}
	m.r.audit(ctx, ev)
}

// Read serves reads in kernel-cache mode, where there is no handle.
func (m *mappedNode) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if h, ok := fh.(*mappedHandle); ok {
		return h.Read(ctx, dest, off)
	}
	v, errno := m.render(ctx)
	if errno != 0 {
		return nil, errno
	}
	return fuse.ReadResultData(slice(v.Data, dest, off)), 0
}

func (m *mappedNode) Flush(ctx context.Context, fh gofs.FileHandle) syscall.Errno {
	if m.r.opts.KernelCache {
		return syscall.ENOSYS
	}
	return 0
}

// Getxattr: the same attributes as a secret file; for a file made from
// several secrets (a template), those of the first one it names, with stale
// true when any value it read is stale.
func (m *mappedNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if !strings.HasPrefix(attr, "user.secretsfs.") {
		return 0, syscall.ENODATA
	}
	if attr == xattrRefresh {
		vid, errno := m.refresh(ctx)
		if errno != 0 {
			return 0, errno
		}
		return copyXattr(dest, vid)
	}
	v, errno := m.render(ctx)
	if errno != 0 {
		return 0, errno
	}
	clear(v.Data)
	s, ok := xattr(v, attr)
	if !ok {
		return 0, syscall.ENODATA
	}
	return copyXattr(dest, s)
}

func (m *mappedNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return copyXattr(dest, strings.Join(xattrNames, "\x00")+"\x00")
}

// mappedHandle is one open of a mapped file; fstat shows the file's own
// mode and owner.
type mappedHandle struct {
	*handle
	n *mappedNode
}

func (h *mappedHandle) Getattr(ctx context.Context, out *fuse.AttrOut) syscall.Errno {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n.attr(&out.Attr, len(h.v.Data), h.v.CreatedDate)
	out.SetTimeout(h.r.attrTimeout())
	return 0
}

// lookupMapped answers a lookup of a mapped file or of a directory made for
// one; ok is false when name is neither.
func (d *dirNode) lookupMapped(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno, bool) {
	t := d.r.mapped
	if t == nil {
		return nil, 0, false
	}
	isDir, ok := t.dirs[d.path][name]
	if !ok {
		return nil, 0, false
	}
	if isDir {
		return d.newDir(ctx, name, out), 0, true
	}
	p := join(d.path, name)
	m := &mappedNode{r: d.r, f: t.files[p]}
	// A file that cannot be rendered is not looked up, so that in
	// kernel-cache mode a read fails too instead of finding size 0.
	v, errno := m.render(ctx)
	if errno != 0 {
		return nil, errno, true
	}
	ch := d.NewInode(ctx, m, gofs.StableAttr{Mode: syscall.S_IFREG, Ino: d.r.ino("m:" + p)})
	if node, ok := ch.Operations().(*mappedNode); ok {
		if node == m {
			d.r.registerMapped(m)
		}
		node.attr(&out.Attr, len(v.Data), v.CreatedDate)
	}
	clear(v.Data)
	d.r.timeouts(out)
	return ch, 0, true
}

// withMapped adds a directory's mapped entries to its listing; a mapped name
// hides a default-layout name it clashes with.
func (r *root) withMapped(dir string, list []fuse.DirEntry) []fuse.DirEntry {
	if r.mapped == nil || len(r.mapped.dirs[dir]) == 0 {
		return list
	}
	children := r.mapped.dirs[dir]
	out := list[:0]
	for _, e := range list {
		if _, ok := children[e.Name]; !ok {
			out = append(out, e)
		}
	}
	for name, isDir := range children {
		p := join(dir, name)
		if isDir {
			out = append(out, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: r.ino("d:" + p)})
		} else {
			out = append(out, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG, Ino: r.ino("m:" + p)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// registerMapped remembers a mapped node so that changes of the secrets it
// depends on reach it.
func (r *root) registerMapped(m *mappedNode) {
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	for _, id := range m.f.SecretIDs {
		set := r.mappedNodes[id]
		if set == nil {
			set = map[*mappedNode]struct{}{}
			r.mappedNodes[id] = set
		}
		set[m] = struct{}{}
	}
}

// mappedOf returns the mapped nodes that depend on a secret.
func (r *root) mappedOf(id string) []*mappedNode {
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	out := make([]*mappedNode, 0, len(r.mappedNodes[id]))
	for m := range r.mappedNodes[id] {
		out = append(out, m)
	}
	return out
}

// pinMapped keeps every secret a mapped file depends on refreshed in the
// background, in both serving modes: mapped files are declared, so their
// changes are noticed (and their files re-rendered) without waiting for a
// reader.
func (r *root) pinMapped() {
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	for _, f := range r.opts.Files {
		for _, id := range f.SecretIDs {
			if r.pins[id] == nil {
				r.pins[id] = r.opts.Store.Pin(id)
			}
		}
	}
}

// mapped queues a mapped node's invalidation and returns a channel closed
// once its caches are dropped.
func (iv *invalidator) mapped(m *mappedNode) <-chan struct{} {
	done := make(chan struct{})
	iv.push(job{mapped: m, done: done})
	return done
}

// mappedContent drops a mapped file's cached pages and attributes.
func (iv *invalidator) mappedContent(m *mappedNode) {
	if errno := m.NotifyContent(0, 0); errno != 0 && errno != syscall.ENOENT {
		iv.r.log.Debug("invalidating a mapped file's cache failed", "file", m.f.Path, "errno", errno)
	}
}
