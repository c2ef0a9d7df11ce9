package fs

import (
	"encoding/binary"
	"hash/maphash"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
	writer *selfWriter // raises the change events (selfwrite.go)
	sweep  *sweeper
	seed   maphash.Seed // of sum and of inode numbers
	genKey maphash.Seed // of generations, independent of seed
	top    *dirNode     // the mount's top directory; set once by newServer

	nodesMu  sync.Mutex
	bySecret map[string][]*fileNode // secret id -> the file nodes the kernel holds that show it (a few); guarded by nodesMu
	dirsHeld map[string][]uint64    // secret id -> inode numbers of the directories showing it that the kernel holds; guarded by nodesMu
	pins     map[string]func()      // secret id -> unpin; guarded by nodesMu
	forMount map[string]bool        // secret ids pinned for the life of the mount (mapped files'); guarded by nodesMu

	mapped *mappedTree // nil without mapped files; read-only

	// events is set once the mount can raise change events (a read-write
	// view, or a read-write mount): the secrets whose files or
	// directories the kernel holds are then kept refreshed in both serving
	// modes, so that a watcher that never reads still sees a rotation.
	events atomic.Bool

	// rwDir is a directory descriptor of the top of the mount's read-write
	// view (rootmount.go): made as root, the filesystem is also mounted
	// read-write where only the daemon reaches it. -1 when there is none
	// (mounted with fusermount3, or the view is closed). Use it through
	// withRWDir, which keeps it open meanwhile.
	rwMu  sync.RWMutex
	rwDir int // guarded by rwMu
}

func newRoot(opts Options) *root {
	r := &root{
		opts:     opts,
		log:      opts.Logger,
		ix:       newIndex(),
		bySecret: make(map[string][]*fileNode),
		dirsHeld: make(map[string][]uint64),
		pins:     make(map[string]func()),
		seed:     maphash.MakeSeed(),
		genKey:   maphash.MakeSeed(),
		rwDir:    -1,
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.inval = newInvalidator(r)
	r.writer = newSelfWriter(r)
	r.sweep = newSweeper(r)
	return r
}

// sum is what a file node keeps of a content it served, to tell whether
// the next one differs: a 64-bit keyed hash, never 0 (which stands for no
// content yet), 8 bytes per file node (a SHA-256 took 32), with a chance of
// 2^-63 that a change goes unnoticed.
func (r *root) sum(data []byte) uint64 { return maphash.Bytes(r.seed, data) | 1 }

// Inode numbers. A name's inode number is a keyed 63-bit hash of what
// names it: the inode number of its directory, what it is there
// (entryKind) and its name. So it is the same for the life of the mount
// (the key, root.seed, is), also after the kernel forgot the name and
// looked it up again, and it costs no memory: a table of the numbers given
// out would have to keep every name ever looked up, since a name the
// kernel forgot may come back and must get its number again.
//
// Two names may hash alike (among the n names of a mount, with a chance of
// about n²/2^64: 2·10^-10 for 60 000 names). go-fuse tells nodes apart by
// their whole StableAttr, so the generation (Gen) carries a second hash of
// the same under another key, and for a file the secret it shows: two
// names with one inode number stay two nodes, each serving its own file
// (what such a clash costs is that stat shows them one st_ino, as hard
// links). The generation also makes a file of another secret at the same
// path another node, never the one the kernel may still hold for the old
// secret, as a reused inode number should (see go-fuse's StableAttr). Its
// low bits are the entry's kind (kindMask), which a file node reads back
// instead of keeping a field of its own.

// kindMask: the generation's bits that hold the entryKind.
const kindMask = 3

// ino returns the inode number of the entry of a kind named name in the
// directory with inode number dir.
func (r *root) ino(dir uint64, kind entryKind, name string) uint64 {
	var h maphash.Hash
	hashEntry(&h, r.seed, dir, kind, name)
	return inoOf(h.Sum64())
}

// id returns the identity of the entry of a kind named name in the
// directory with inode number dir, showing the secret secretID ("" for a
// directory or a mapped file).
func (r *root) id(mode uint32, dir uint64, kind entryKind, name, secretID string) gofs.StableAttr {
	var h maphash.Hash
	hashEntry(&h, r.genKey, dir, kind, name)
	h.WriteByte(0)
	h.WriteString(secretID)
	gen := h.Sum64()&^kindMask | uint64(kind)
	return gofs.StableAttr{Mode: mode, Ino: r.ino(dir, kind, name), Gen: gen}
}

// hashEntry writes an entry's directory, kind and name to h, keyed with
// seed.
func hashEntry(h *maphash.Hash, seed maphash.Seed, dir uint64, kind entryKind, name string) {
	h.SetSeed(seed)
	var b [9]byte
	binary.LittleEndian.PutUint64(b[:8], dir)
	b[8] = byte(kind)
	h.Write(b[:])
	h.WriteString(name)
}

// inoOf makes a hash an inode number: below 2^63 (go-fuse's own numbers
// start there), never 0 or 1 (the root).
func inoOf(h uint64) uint64 {
	h &^= 1 << 63
	if h < 2 {
		h += 2
	}
	return h
}

// fileFor returns the node a lookup gives the kernel for the file f (live:
// the node go-fuse has in its tree under the name; else new), and keeps it
// registered, so that changes of the secrets it uses reach it, until the
// kernel forgets it (OnForget); in kernel-cache mode, and wherever the
// mount raises change events, it pins those secrets until the kernel has
// forgotten their last file and directory (unregisterFile, releaseDir).
// For a new f, it is rather the node registered with the same identity, if
// any (a concurrent lookup may be giving it to the kernel). So there is one
// node per identity: go-fuse would keep the node it has and drop any other,
// which would then never be forgotten.
func (r *root) fileFor(f *fileNode, live bool) *fileNode {
	id := f.StableAttr()
	ids := f.secretIDs()
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	if !live {
		if g := r.registeredLocked(ids[0], id); g != nil {
			f = g
		}
	}
	for _, sid := range ids {
		nodes := r.bySecret[sid]
		// One node per identity: one registered before go-fuse chose f
		// is not the kernel's.
		at := slices.IndexFunc(nodes, func(g *fileNode) bool { return g.StableAttr() == id })
		switch {
		case at < 0:
			r.bySecret[sid] = append(nodes, f)
		case nodes[at] != f:
			nodes[at] = f
		}
		r.pinLocked(sid)
	}
	return f
}

// keepsRefreshed reports whether the secrets of what the kernel holds are
// kept refreshed in the background: in kernel-cache mode, whose reads do
// not reach the cache, and wherever the mount raises change events, whose
// watchers need not read.
func (r *root) keepsRefreshed() bool {
	return r.opts.KernelCache || r.events.Load()
}

// pinLocked pins a secret the kernel holds a file or directory of, if the
// mount keeps those refreshed and it is not pinned yet.
func (r *root) pinLocked(sid string) {
	if r.keepsRefreshed() && r.pins[sid] == nil {
		r.pins[sid] = r.opts.Store.Pin(sid)
	}
}

// unpinLocked releases a secret's pin once the kernel holds none of its
// files and directories, unless a mapped file depends on it.
func (r *root) unpinLocked(sid string) {
	if len(r.bySecret[sid]) > 0 || len(r.dirsHeld[sid]) > 0 || r.forMount[sid] {
		return
	}
	if unpin := r.pins[sid]; unpin != nil {
		unpin()
		delete(r.pins, sid)
		if len(r.pins) == 0 {
			r.pins = make(map[string]func()) // a map keeps its peak size: let it go
		}
	}
}

// holdDir records that a lookup gave the kernel the directory with inode
// number ino, which shows the secret sid, and pins the secret (pinLocked):
// a watcher of the directory alone sees the files of a rotation appear and
// vanish. Keyed by inode number, as a lookup racing another may make a node
// go-fuse then drops for the one it has: the one the kernel holds releases
// it (releaseDir). (A lookup racing the kernel's forget of the directory
// can see its hold released by the old node's forget; the next lookup
// holds it again.)
func (r *root) holdDir(sid string, ino uint64) {
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	if !slices.Contains(r.dirsHeld[sid], ino) {
		r.dirsHeld[sid] = append(r.dirsHeld[sid], ino)
	}
	r.pinLocked(sid)
}

// releaseDir undoes holdDir when the kernel forgets the directory.
func (r *root) releaseDir(sid string, ino uint64) {
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	held := slices.DeleteFunc(r.dirsHeld[sid], func(n uint64) bool { return n == ino })
	if len(held) > 0 {
		r.dirsHeld[sid] = held
		return
	}
	delete(r.dirsHeld, sid)
	if len(r.dirsHeld) == 0 {
		r.dirsHeld = make(map[string][]uint64)
	}
	r.unpinLocked(sid)
}

// registeredLocked returns the node registered for a secret with identity
// id, if any.
func (r *root) registeredLocked(secretID string, id gofs.StableAttr) *fileNode {
	for _, g := range r.bySecret[secretID] {
		if g.StableAttr() == id {
			return g
		}
	}
	return nil
}

// unregisterFile forgets a file node the kernel forgot. A secret whose
// last file and directory the kernel forgot is no longer read or watched
// through the mount, so its pin is released, unless a mapped file depends
// on it;
// the next lookup of one of its files pins it again. (Should go-fuse give
// the node back to the kernel after all, as a lookup racing with the
// forget can make it do, the next lookup of its name registers it again.)
func (r *root) unregisterFile(f *fileNode) {
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	for _, sid := range f.secretIDs() {
		nodes := slices.DeleteFunc(r.bySecret[sid], func(g *fileNode) bool { return g == f })
		if len(nodes) > 0 {
			r.bySecret[sid] = nodes
			continue
		}
		delete(r.bySecret, sid)
		r.unpinLocked(sid)
	}
}

// filesOf returns the file nodes that use a secret.
func (r *root) filesOf(id string) []*fileNode {
	r.nodesMu.Lock()
	defer r.nodesMu.Unlock()
	return slices.Clone(r.bySecret[id])
}

// dirAt returns the directory node the kernel holds at path, if any: found
// in go-fuse's tree, which keeps what the kernel holds (and the parents of
// it), one map access per segment. The mount keeps no directory nodes of
// its own: a directory the kernel forgot costs nothing.
func (r *root) dirAt(path string) *dirNode {
	d := r.top
	for rest := path; rest != "" && d != nil; {
		seg, tail, _ := strings.Cut(rest, "/")
		ch := d.GetChild(seg)
		if ch == nil {
			return nil
		}
		d, _ = ch.Operations().(*dirNode)
		rest = tail
	}
	return d
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
