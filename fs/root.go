package fs

import (
	"log/slog"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// root is the state every node of one mount shares.
type root struct {
	opts   Options
	log    *slog.Logger
	ix     *index
	logged onceLogger
	inval  *invalidator

	inoMu   sync.Mutex
	inos    map[string]uint64 // node key -> inode number; guarded by inoMu
	nextIno uint64            // guarded by inoMu

	nodesMu sync.Mutex
	files   map[string]map[*fileNode]struct{} // secret id -> the file nodes using it; guarded by nodesMu
	dirs    map[string]*dirNode               // path -> directory node; guarded by nodesMu
	pins    map[string]func()                 // secret id -> unpin; guarded by nodesMu

	mapped *mappedTree // nil without mapped files; read-only
}

func newRoot(opts Options) *root {
	r := &root{
		opts:    opts,
		log:     opts.Logger,
		ix:      newIndex(),
		inos:    make(map[string]uint64),
		nextIno: 1, // the root is 1
		files:   make(map[string]map[*fileNode]struct{}),
		dirs:    make(map[string]*dirNode),
		pins:    make(map[string]func()),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.inval = newInvalidator(r)
	return r
}

// ino returns the inode number of a node key, the same for the life of the
// mount.
func (r *root) ino(key string) uint64 {
	r.inoMu.Lock()
	defer r.inoMu.Unlock()
	n, ok := r.inos[key]
	if !ok {
		r.nextIno++
		n = r.nextIno
		r.inos[key] = n
	}
	return n
}

// registerFile remembers a file node so that changes of the secrets it
// uses reach it, and in kernel-cache mode pins those secrets.
func (r *root) registerFile(f *fileNode) {
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	for _, id := range f.src.secretIDs() {
		set := r.files[id]
		if set == nil {
			set = make(map[*fileNode]struct{})
			r.files[id] = set
		}
		set[f] = struct{}{}
		if r.opts.KernelCache && r.pins[id] == nil {
			r.pins[id] = r.opts.Store.Pin(id)
		}
	}
}

func (r *root) registerDir(d *dirNode) {
	r.nodesMu.Lock()
	r.dirs[d.path] = d
	r.nodesMu.Unlock()
}

// filesOf returns the file nodes that use a secret.
func (r *root) filesOf(id string) []*fileNode {
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	out := make([]*fileNode, 0, len(r.files[id]))
	for f := range r.files[id] {
		out = append(out, f)
	}
	return out
}

func (r *root) dirAt(path string) *dirNode {
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	return r.dirs[path]
}

func (r *root) unpinAll() {
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	for id, unpin := range r.pins {
		unpin()
		delete(r.pins, id)
	}
}

// fileAttr fills a secret file's attributes.
func (r *root) fileAttr(out *fuse.Attr, size int, mtime time.Time) {
	out.Mode = syscall.S_IFREG | uint32(r.opts.FileMode.Perm())
	out.Size = uint64(size)
	out.Blocks = (uint64(size) + 511) / 512
	out.Nlink = 1
	out.Owner = fuse.Owner{Uid: r.opts.UID, Gid: r.opts.GID}
	out.SetTimes(&mtime, &mtime, &mtime)
}

// dirAttr fills a directory's attributes.
func (r *root) dirAttr(out *fuse.Attr) {
	out.Mode = syscall.S_IFDIR | uint32(r.opts.DirMode.Perm())
	out.Nlink = 2
	out.Owner = fuse.Owner{Uid: r.opts.UID, Gid: r.opts.GID}
}

// timeouts sets how long the kernel may trust an entry and its attributes.
func (r *root) timeouts(out *fuse.EntryOut) {
	d := r.attrTimeout()
	out.SetEntryTimeout(d)
	out.SetAttrTimeout(d)
}

// attrTimeout: in kernel-cache mode the kernel's caches are dropped on every
// change, so they may be trusted long; in per-open mode one second keeps
// lookups cheap while bounding what a missed notification could cost.
func (r *root) attrTimeout() time.Duration {
	if r.opts.KernelCache {
		return time.Minute
	}
	return time.Second
}

var _ = (gofs.InodeEmbedder)((*dirNode)(nil))
