package fs

import (
	"context"
	"hash/maphash"
	"log/slog"
	"slices"
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
	seed   maphash.Seed // of sum

	inoMu   sync.Mutex
	inos    map[nodeKey]uint64 // node -> inode number; guarded by inoMu
	nextIno uint64             // guarded by inoMu

	nodesMu  sync.Mutex
	files    map[uint64]*fileNode // inode number -> the file node the kernel holds; guarded by nodesMu
	bySecret map[string][]uint64  // secret id -> inode numbers of the files using it (a few); guarded by nodesMu
	dirs     map[string]*dirNode  // path -> directory node; guarded by nodesMu
	pins     map[string]func()    // secret id -> unpin; guarded by nodesMu

	mapped *mappedTree // nil without mapped files; read-only
}

func newRoot(opts Options) *root {
	r := &root{
		opts:     opts,
		log:      opts.Logger,
		ix:       newIndex(),
		inos:     make(map[nodeKey]uint64),
		nextIno:  1, // the root is 1
		files:    make(map[uint64]*fileNode),
		bySecret: make(map[string][]uint64),
		dirs:     make(map[string]*dirNode),
		pins:     make(map[string]func()),
		seed:     maphash.MakeSeed(),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.inval = newInvalidator(r)
	return r
}

// sum is what a file node keeps of a content it served, to tell whether
// the next one differs: a 64-bit keyed hash, 8 bytes per file node (a
// SHA-256 took 32), with a chance of 2^-64 that a change goes unnoticed.
func (r *root) sum(data []byte) uint64 { return maphash.Bytes(r.seed, data) }

// nodeKey names a node for its inode number: what it is (entryKind, in the
// top byte) in the directory with inode number dir (which names that
// directory's path in turn), and its name there. It holds no path: a key
// costs the same at any depth, and shares its name with the tree.
type nodeKey struct {
	kindDir uint64
	name    string
}

func newNodeKey(dir uint64, kind entryKind, name string) nodeKey {
	return nodeKey{kindDir: uint64(kind)<<56 | dir, name: name}
}

// ino returns the inode number of a node, the same for the life of the
// mount.
func (r *root) ino(key nodeKey) uint64 {
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

// fileFor returns the node a lookup in parent gives the kernel for the file
// with identity id showing src, and keeps it registered, so that changes of
// the secrets it uses reach it, until the kernel forgets it (OnForget); in
// kernel-cache mode it pins those secrets. The node is live, the one go-fuse
// has in its tree under the name, if any; else the one registered for the
// inode number (a concurrent lookup may be giving it to the kernel); else a
// new one. So there is one node per inode number: go-fuse would keep the
// node it has and drop any other, which would then never be forgotten.
func (r *root) fileFor(ctx context.Context, parent *dirNode, id gofs.StableAttr, src source, live *fileNode) *fileNode {
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	ino := id.Ino
	f := live
	if f == nil {
		f = r.files[ino]
	}
	if f == nil || (live == nil && !slices.Equal(f.src.secretIDs(), src.secretIDs())) {
		f = &fileNode{r: r, src: src}
		// Before the invalidator can see it.
		parent.NewInode(ctx, f, id)
	}
	old := r.files[ino]
	if old == f {
		return f
	}
	if old != nil {
		r.unregisterLocked(ino, old)
	}
	r.files[ino] = f
	for _, id := range f.src.secretIDs() {
		if !slices.Contains(r.bySecret[id], ino) {
			r.bySecret[id] = append(r.bySecret[id], ino)
		}
		if r.opts.KernelCache && r.pins[id] == nil {
			r.pins[id] = r.opts.Store.Pin(id)
		}
	}
	return f
}

// unregisterFile forgets a file node the kernel forgot. (Should go-fuse
// give it back to the kernel after all, as a lookup racing with the forget
// can make it do, the next lookup of its name registers it again.)
func (r *root) unregisterFile(f *fileNode) {
	ino := f.StableAttr().Ino
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	if r.files[ino] == f {
		r.unregisterLocked(ino, f)
	}
}

func (r *root) unregisterLocked(ino uint64, f *fileNode) {
	delete(r.files, ino)
	for _, id := range f.src.secretIDs() {
		inos := slices.DeleteFunc(r.bySecret[id], func(n uint64) bool { return n == ino })
		if len(inos) == 0 {
			delete(r.bySecret, id)
		} else {
			r.bySecret[id] = inos
		}
	}
}

// dirFor returns the node a lookup in parent gives the kernel for the
// directory at path with identity id, one per path for the life of the
// mount, as fileFor does for files: the live one (in go-fuse's tree), else
// the one registered, else a new one.
func (r *root) dirFor(ctx context.Context, parent *dirNode, path string, id gofs.StableAttr, live *dirNode) *dirNode {
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	d := live
	if d == nil {
		d = r.dirs[path]
	}
	if d == nil {
		d = &dirNode{r: r, path: path}
		parent.NewInode(ctx, d, id) // before the invalidator can see it
	}
	r.dirs[path] = d
	return d
}

// registerDir remembers the directory node for its path.
func (r *root) registerDir(d *dirNode) {
	r.nodesMu.Lock()
	r.dirs[d.path] = d
	r.nodesMu.Unlock()
}

// filesOf returns the file nodes that use a secret.
func (r *root) filesOf(id string) []*fileNode {
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	out := make([]*fileNode, 0, len(r.bySecret[id]))
	for _, ino := range r.bySecret[id] {
		out = append(out, r.files[ino])
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
