package fs

import (
	"context"
	"fmt"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dirNode is a directory: the root, a segment of secret names, or a secret
// (whose files are its stages and JSON keys), or both a secret and the
// parent of other secrets.
type dirNode struct {
	gofs.Inode
	lastUse // forget.go

	r      *root
	path   string // "" for the root
	secret string // the secret it shows, held (root.holdDir) until the kernel forgets it; "" if none
}

var (
	_ = (gofs.NodeLookuper)((*dirNode)(nil))
	_ = (gofs.NodeReaddirer)((*dirNode)(nil))
	_ = (gofs.NodeGetattrer)((*dirNode)(nil))
	_ = (gofs.NodeOnForgetter)((*dirNode)(nil))
	_ = (gofs.NodeMknoder)((*dirNode)(nil))
	_ = (gofs.NodeUnlinker)((*dirNode)(nil))
	_ = (gofs.NodeMkdirer)((*dirNode)(nil))
	_ = (gofs.NodeRmdirer)((*dirNode)(nil))
)

// contents is what a directory holds now.
type contents struct {
	ref      *SecretRef
	stages   map[string]string // stage -> version id
	children []string
	keys     map[string][]byte // JSON key -> file content
	err      error             // why the secret's files could not be listed
}

// contents reads the directory's entries from the catalog and the store.
// The JSON keys are read only when wantKeys is set.
func (d *dirNode) contents(ctx context.Context, wantKeys bool) contents {
	ref, children, _ := d.r.ix.dir(d.path)
	c := contents{ref: ref, children: children}
	if ref == nil {
		return c
	}
	c.stages, c.err = d.r.opts.Store.Stages(ctx, ref.ID)
	if c.err != nil || !wantKeys {
		return c
	}
	if _, ok := c.stages[d.r.opts.DefaultStage]; !ok {
		return c
	}
	v, err := d.r.opts.Store.Value(ctx, ref.ID, d.r.opts.DefaultStage)
	if err != nil {
		c.err = err
		return c
	}
	c.keys, _ = jsonKeys(v.Data)
	return c
}

// OnForget: the kernel forgot the directory; its secret need no longer be
// kept refreshed for it.
func (d *dirNode) OnForget() {
	if d.secret != "" {
		d.r.releaseDir(d.secret, d.StableAttr().Ino)
	}
}

func (d *dirNode) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.r.sweep.used(d.EmbeddedInode())
	d.r.dirAttr(&out.Attr)
	out.SetTimeout(d.r.attrTimeout())
	return 0
}

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if !validFileName(name) {
		return nil, syscall.ENOENT
	}
	// The writer's own lookups for the events of a file or a directory
	// that appeared (mknod and mkdir need it missing) or vanished (unlink
	// and rmdir need it there).
	w, path := d.r.writer, join(d.path, name)
	if w.op(ctx, opCreate, path) != nil || w.op(ctx, opMkdir, path) != nil {
		return nil, syscall.ENOENT
	}
	if op := w.op(ctx, opRemove, path); op != nil {
		return d.vanished(ctx, name, op.file, out)
	}
	if w.removesDir(ctx, path) {
		// The directory it removes or one on the way to it: the node the
		// kernel holds, or a new one, empty as the tree no longer has it.
		return d.newDir(ctx, name, out), 0
	}
	return d.lookupName(ctx, name, out)
}

// lookupName looks a valid name up.
func (d *dirNode) lookupName(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if n, errno, ok := d.lookupMapped(ctx, name, out); ok {
		return n, errno
	}
	c := d.contents(ctx, false)
	if _, ok := c.stages[name]; ok {
		f, live := d.file(ctx, kindStage, name, c.ref)
		return d.lookupFile(ctx, f, live, d.r.opts.KernelCache, out)
	}
	if d.r.ix.hasChild(d.path, name) {
		return d.newDir(ctx, name, out), 0
	}
	if c.ref != nil && c.err == nil {
		if f, live, found, err := d.keyFile(ctx, c, name); err != nil {
			c.err = err
		} else if found {
			return d.lookupFile(ctx, f, live, d.r.opts.KernelCache, out)
		}
	}
	if c.err != nil {
		// The secret's files cannot be known: say why, and audit it as a
		// refused open (a JSON key when the stages could be read).
		errno := d.r.toErrno(ctx, c.err)
		ev := OpenEvent{Path: join(d.path, name), SecretID: c.ref.ID, Errno: errno, AtLookup: true}
		if c.stages != nil {
			ev.Stage, ev.Key = d.r.opts.DefaultStage, name
		}
		d.r.audit(ctx, ev)
		return nil, errno
	}
	// Not known: maybe a secret the listing does not have yet.
	ref, ok, err := d.r.opts.Catalog.Find(ctx, join(d.path, name))
	if err != nil {
		return nil, d.r.toErrno(ctx, err)
	}
	if !ok || !d.r.ix.add(ref) {
		return nil, syscall.ENOENT
	}
	if d.r.ix.hasChild(d.path, name) {
		return d.newDir(ctx, name, out), 0
	}
	return nil, syscall.ENOENT
}

// vanished answers the writer's lookup of a file of a kind that is gone,
// so that it can unlink it: the node the kernel holds for it, or a new one,
// empty.
func (d *dirNode) vanished(ctx context.Context, name string, kind entryKind, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ref, _, _ := d.r.ix.dir(d.path)
	if ref == nil {
		return nil, syscall.ENOENT
	}
	f, _ := d.file(ctx, kind, name, ref)
	f.attr(&out.Attr, 0, time.Time{})
	d.r.timeouts(out)
	return f.EmbeddedInode(), 0
}

// Mknod accepts only the writer's mknod of a file that appeared
// (selfwrite.go), and answers it with the file, as a lookup would.
func (d *dirNode) Mknod(ctx context.Context, name string, mode, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if mode&syscall.S_IFMT != syscall.S_IFREG || !validFileName(name) ||
		d.r.writer.op(ctx, opCreate, join(d.path, name)) == nil {
		return nil, syscall.EROFS
	}
	n, errno := d.lookupName(ctx, name, out)
	if errno != 0 {
		return nil, errno
	}
	if _, ok := n.Operations().(*fileNode); !ok {
		return nil, syscall.EROFS
	}
	return n, 0
}

// Unlink accepts only the writer's unlink of a file that vanished
// (selfwrite.go); it changes nothing.
func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	if d.r.writer.op(ctx, opRemove, join(d.path, name)) == nil {
		return syscall.EROFS
	}
	return 0
}

// Mkdir accepts only the writer's mkdir of a directory that appeared in the
// tree (selfwrite.go), and answers it with the directory, as a lookup would.
func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if d.r.writer.op(ctx, opMkdir, join(d.path, name)) == nil || !d.r.ix.hasChild(d.path, name) {
		return nil, syscall.EROFS
	}
	return d.newDir(ctx, name, out), 0
}

// Rmdir accepts only the writer's rmdir of a directory that left the tree
// (selfwrite.go); it changes nothing.
func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	if d.r.writer.op(ctx, opRmdir, join(d.path, name)) == nil || d.r.ix.hasChild(d.path, name) {
		return syscall.EROFS
	}
	return 0
}

// stillShown checks that a directory path still shows a secret id: in the
// tree, or found again by the catalog (a secret the last listing lacked
// because ListSecrets does not show a new secret at once). A secret that is
// not is ENOENT.
func (r *root) stillShown(ctx context.Context, path, id string) error {
	if r.ix.shows(path, id) {
		return nil
	}
	ref, ok, err := r.opts.Catalog.Find(ctx, path)
	if err != nil {
		return err
	}
	if !ok || ref.ID != id || !r.ix.add(ref) {
		return fmt.Errorf("secret %q is no longer shown at %q: %w", id, path, syscall.ENOENT)
	}
	return nil
}

func (d *dirNode) Readdir(ctx context.Context) (gofs.DirStream, syscall.Errno) {
	d.r.sweep.used(d.EmbeddedInode())
	d.prefetchChildren()
	c := d.contents(ctx, true)
	if c.err != nil {
		d.r.log.Debug("listing a secret's files failed", "path", d.path, "error", c.err)
	}
	entries := mergeEntries(sortedKeys(c.stages), c.children, sortedKeys(c.keys))
	list := make([]fuse.DirEntry, 0, len(entries))
	for _, e := range entries {
		de := fuse.DirEntry{Name: e.name, Mode: syscall.S_IFREG, Ino: d.ino(e.kind, e.name)}
		if e.kind == kindDir {
			de.Mode = syscall.S_IFDIR
		}
		list = append(list, de)
	}
	list = d.withMapped(list)
	return gofs.NewListDirStream(list), 0
}

// prefetchChildren asks the store, in one go, for the values of the child
// directories that are secrets: listing each of them needs its JSON keys, so
// a listing of the tree (find, ls -R) fetches siblings together rather than
// one by one. The directory's own secret goes with them.
func (d *dirNode) prefetchChildren() {
	ref, _, _ := d.r.ix.dir(d.path)
	var ids []string
	if ref != nil {
		ids = append(ids, ref.ID)
	}
	ids = d.r.ix.childSecrets(d.path, ids)
	if len(ids) > 1 || len(ids) == 1 && ref == nil {
		d.r.opts.Store.Prefetch(ids)
	}
}

// ino returns the inode number of the entry of a kind under name in this
// directory.
func (d *dirNode) ino(kind entryKind, name string) uint64 {
	return d.r.ino(d.StableAttr().Ino, kind, name)
}

// liveChild returns the node the kernel already holds under name in this
// directory, if it has identity id. A lookup returns it instead of a new
// node: go-fuse keeps the node it has for an identity and drops a new one,
// which must then not be registered for change notifications.
func (d *dirNode) liveChild(name string, id gofs.StableAttr) *gofs.Inode {
	ch := d.GetChild(name)
	if ch == nil || ch.StableAttr() != id {
		return nil
	}
	return ch
}

// newDir answers a lookup of a child directory: the node the kernel holds,
// else a new one. The mount keeps no directory nodes of its own (root.dirAt
// finds them in go-fuse's tree), so a directory the kernel forgot is freed.
func (d *dirNode) newDir(ctx context.Context, name string, out *fuse.EntryOut) *gofs.Inode {
	id := d.r.id(syscall.S_IFDIR, d.StableAttr().Ino, kindDir, name, "")
	ch := d.liveChild(name, id)
	if ch == nil {
		n := &dirNode{r: d.r, path: join(d.path, name)}
		if ref, _, _ := d.r.ix.dir(n.path); ref != nil {
			n.secret = ref.ID
			d.r.holdDir(n.secret, id.Ino)
		}
		ch = d.NewInode(ctx, n, id)
	}
	d.r.sweep.lookedUp(d.EmbeddedInode(), ch)
	d.r.dirAttr(&out.Attr)
	d.r.timeouts(out)
	return ch
}

// file returns the node of a file of a kind under name in this directory,
// showing the secret ref (nil for a mapped file): the one the kernel holds
// under name (live), which keeps what it learnt of the value (where a key
// lies in a version), or a new one, with its identity but not yet in
// go-fuse's tree (lookupFile gives it).
func (d *dirNode) file(ctx context.Context, kind entryKind, name string, ref *SecretRef) (f *fileNode, live bool) {
	secretID := ""
	if ref != nil {
		secretID = ref.ID
	}
	id := d.r.id(syscall.S_IFREG, d.StableAttr().Ino, kind, name, secretID)
	if ch := d.liveChild(name, id); ch != nil {
		if f, ok := ch.Operations().(*fileNode); ok {
			return f, true
		}
	}
	f = &fileNode{dir: d, name: name, ref: ref}
	d.NewInode(ctx, f, id)
	return f, false
}

// keyFile looks name up among the JSON keys of the default stage's value
// of the secret of c, and returns the key file's node (file): parsed once
// per version, not on every lookup.
func (d *dirNode) keyFile(ctx context.Context, c contents, name string) (f *fileNode, live, found bool, err error) {
	if _, ok := c.stages[d.r.opts.DefaultStage]; !ok {
		return nil, false, false, nil
	}
	f, live = d.file(ctx, kindKey, name, c.ref)
	v, err := d.r.opts.Store.Value(ctx, c.ref.ID, d.r.opts.DefaultStage)
	if err != nil {
		return nil, false, false, err
	}
	data, found := f.key(v)
	clear(v.Data)
	clear(data)
	return f, live, found, nil
}

// lookupFile answers a lookup of the file f (live if the kernel holds it
// already) with its one node (root.fileFor). When its content cannot be
// read, per-open mode still finds it (the open fails with the errno, and
// is audited) unless strict is set: kernel-cache mode fails the lookup
// with the errno, since no OPEN reaches the daemon there and a file found
// with size 0 would read as empty.
func (d *dirNode) lookupFile(ctx context.Context, f *fileNode, live, strict bool, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	v, err := f.content(ctx)
	if err != nil && strict {
		// Refused before any open: audit it here.
		errno := d.r.toErrno(ctx, err)
		f.auditAt(ctx, Value{}, errno, true)
		return nil, errno
	}
	defer clear(v.Data)
	f = d.r.fileFor(f, live)
	if err == nil {
		// What a watcher of the file can know of it; a change event
		// updates it (selfwrite.go).
		f.told.CompareAndSwap(0, d.r.sum(v.Data))
	}
	d.r.sweep.lookedUp(d.EmbeddedInode(), f.EmbeddedInode())
	f.attr(&out.Attr, len(v.Data), v.CreatedDate)
	d.r.timeouts(out)
	return f.EmbeddedInode(), 0
}
