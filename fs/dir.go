package fs

import (
	"context"
	"fmt"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dirNode is a directory: the root, a segment of secret names, or a secret
// (whose files are its stages and JSON keys), or both a secret and the
// parent of other secrets.
type dirNode struct {
	gofs.Inode
	r    *root
	path string // "" for the root
}

var (
	_ = (gofs.NodeLookuper)((*dirNode)(nil))
	_ = (gofs.NodeReaddirer)((*dirNode)(nil))
	_ = (gofs.NodeGetattrer)((*dirNode)(nil))
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

func (d *dirNode) Getattr(ctx context.Context, _ gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.r.dirAttr(&out.Attr)
	out.SetTimeout(d.r.attrTimeout())
	return 0
}

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	if !validFileName(name) {
		return nil, syscall.ENOENT
	}
	if n, errno, ok := d.lookupMapped(ctx, name, out); ok {
		return n, errno
	}
	c := d.contents(ctx, false)
	if _, ok := c.stages[name]; ok {
		return d.newFile(ctx, d.layoutSource(c.ref.ID, kindStage, name), out)
	}
	if d.r.ix.hasChild(d.path, name) {
		return d.newDir(ctx, name, out), 0
	}
	if c.ref != nil && c.err == nil {
		if src, found, err := d.keyFile(ctx, c, name); err != nil {
			c.err = err
		} else if found {
			return d.newFile(ctx, src, out)
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
	return d.r.ino(newNodeKey(d.StableAttr().Ino, kind, name))
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

func (d *dirNode) newDir(ctx context.Context, name string, out *fuse.EntryOut) *gofs.Inode {
	path := join(d.path, name)
	id := gofs.StableAttr{Mode: syscall.S_IFDIR, Ino: d.ino(kindDir, name)}
	var live *dirNode
	if ch := d.liveChild(name, id); ch != nil {
		live, _ = ch.Operations().(*dirNode)
	}
	ch := d.r.dirFor(ctx, d, path, id, live).EmbeddedInode()
	d.r.dirAttr(&out.Attr)
	d.r.timeouts(out)
	return ch
}

// newFile answers a lookup of a stage or key file. When its content cannot
// be read, per-open mode still finds it (the open fails with the errno, and
// is audited); kernel-cache mode fails the lookup with the errno, since no
// OPEN reaches the daemon there and a file found with size 0 would read as
// empty.
func (d *dirNode) newFile(ctx context.Context, src *layoutFile, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	id := gofs.StableAttr{Mode: syscall.S_IFREG, Ino: d.ino(src.kind, src.name)}
	return d.lookupFile(ctx, src.name, id, src, d.r.opts.KernelCache, out)
}

// layoutSource is the source of a stage or key file of the secret: the one
// of the node the kernel holds under name when it shows the same, which
// keeps what it learnt of the value (where a key lies in a version), or a
// new one.
func (d *dirNode) layoutSource(secretID string, kind entryKind, name string) *layoutFile {
	if ch := d.GetChild(name); ch != nil {
		if f, ok := ch.Operations().(*fileNode); ok {
			if l, ok := f.src.(*layoutFile); ok && l.secretID == secretID && l.kind == kind {
				return l
			}
		}
	}
	return &layoutFile{r: d.r, secretID: secretID, dir: d.path, name: name, kind: kind}
}

// keyFile looks name up among the JSON keys of the default stage's value
// of the secret of c, and returns the key file's source (layoutSource):
// parsed once per version, not on every lookup.
func (d *dirNode) keyFile(ctx context.Context, c contents, name string) (*layoutFile, bool, error) {
	if _, ok := c.stages[d.r.opts.DefaultStage]; !ok {
		return nil, false, nil
	}
	src := d.layoutSource(c.ref.ID, kindKey, name)
	v, err := d.r.opts.Store.Value(ctx, c.ref.ID, d.r.opts.DefaultStage)
	if err != nil {
		return nil, false, err
	}
	data, found := src.key(v)
	clear(v.Data)
	clear(data)
	return src, found, nil
}

// lookupFile answers a lookup of a file showing src with identity id, with
// its one node (root.fileFor). When its content cannot be read and strict
// is set, the lookup fails with the errno.
func (d *dirNode) lookupFile(ctx context.Context, name string, id gofs.StableAttr, src source, strict bool, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	v, err := src.content(ctx)
	if err != nil && strict {
		// Refused before any open: audit it here.
		errno := d.r.toErrno(ctx, err)
		d.r.auditSource(ctx, src, Value{}, errno, true)
		return nil, errno
	}
	defer clear(v.Data)
	var live *fileNode
	if ch := d.liveChild(name, id); ch != nil {
		live, _ = ch.Operations().(*fileNode)
	}
	f := d.r.fileFor(ctx, d, id, src, live)
	f.attr(&out.Attr, len(v.Data), v.CreatedDate)
	d.r.timeouts(out)
	return f.EmbeddedInode(), 0
}
