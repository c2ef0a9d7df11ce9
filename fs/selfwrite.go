package fs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Change events. inotify events come from the VFS, per inode: a write to a
// file through any path raises IN_MODIFY and IN_CLOSE_WRITE for every
// watcher of it, a mknod IN_CREATE and an unlink IN_DELETE in the
// directory. A FUSE daemon changing what it serves raises none. So when a
// change of the store changes a file's bytes, the daemon makes those
// system calls itself, on its own mount: it writes the new bytes to the
// file (O_TRUNC, then exactly the bytes the file now serves), mknods a file
// that appeared and unlinks one that vanished; when a new listing changes
// the tree, it mkdirs a directory that appeared and rmdirs one that left
// (dirChanged). The filesystem accepts such a request only from the thread
// making it, and only for exactly the pending operation (selfOp); every
// other write is EROFS (readonly.go). It changes nothing: the store
// already serves the new value when the write is made, which is why a
// watcher that reads on the event reads the new bytes.
//
// The writer runs on a goroutine of its own, never inside a FUSE request
// (its system calls are FUSE requests, served by other goroutines), and no
// request waits for it. Changes are written in the order the store
// reported them, one burst per file whose bytes changed; files whose bytes
// did not change get none, and nothing is written at mount.

// selfOpKind is what a self-write does.
type selfOpKind int

const (
	opWrite  selfOpKind = iota + 1 // truncate and write a file's bytes
	opCreate                       // mknod a file that appeared
	opRemove                       // unlink a file that vanished
	opMkdir                        // mkdir a directory that appeared in the tree
	opRmdir                        // rmdir a directory that left the tree
)

// selfOp is the one operation the writer has pending: only requests of its
// thread (tid) for its path are accepted, and only as it describes.
type selfOp struct {
	tid  uint32
	kind selfOpKind
	path string    // in the mount, "/"-separated
	data []byte    // opWrite: the bytes the file serves now
	file entryKind // opRemove: what the vanished file was (kindStage, kindKey)
}

// selfWriter raises the change events.
type selfWriter struct {
	r *root
	q *serial[job] // store changes and directories of the tree that changed

	pending atomic.Pointer[selfOp] // nil but while the writer makes an operation's calls

	// dir is where the mount is, and dev its device: without a layout's
	// read-write view (root.withRWDir), on a read-write mount, the events
	// are written through it, and only while it is this mount. Set once
	// by at; "" on a read-only mount.
	dir string
	dev uint64
	// busy is held while an operation's calls are made, and by pause.
	busy sync.Mutex
}

func newSelfWriter(r *root) *selfWriter {
	w := &selfWriter{r: r}
	w.q = newSerial(w.run, nil)
	return w
}

func (w *selfWriter) start() { w.q.start() }

func (w *selfWriter) stop() { w.q.stop() }

// change queues a change whose caches the invalidator has dropped.
func (w *selfWriter) change(c Change) { w.q.push(job{change: &c}) }

// changeDir queues a directory that appeared in the tree or left it, once the
// invalidator has dropped what the kernel held below it.
func (w *selfWriter) changeDir(c dirChange) { w.q.push(job{dir: &c}) }

// run raises the events of a change or of a directory.
func (w *selfWriter) run(j job) {
	if j.dir != nil {
		w.dirChanged(*j.dir)
		return
	}
	w.apply(*j.change)
}

// at sets where the mount is, once it is mounted.
func (w *selfWriter) at(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	dev, err := devOf(unix.AT_FDCWD, abs, 0)
	if err != nil {
		return err
	}
	w.dir, w.dev = abs, dev
	return nil
}

// devOf returns the device of a file without asking the filesystem
// (AT_STATX_DONT_SYNC): the daemon must not have the kernel cache its top
// directory's attributes, or a stat of a dead daemon's mount would find
// them instead of ENOTCONN.
func devOf(dirfd int, path string, flags int) (uint64, error) {
	var stx unix.Statx_t
	if err := unix.Statx(dirfd, path, flags|unix.AT_STATX_DONT_SYNC, 0, &stx); err != nil {
		return 0, err
	}
	return unix.Mkdev(stx.Dev_major, stx.Dev_minor), nil
}

// pause waits for the operation in progress and keeps the writer off the
// mount until resume is called.
func (w *selfWriter) pause() (resume func()) {
	w.busy.Lock()
	return w.busy.Unlock
}

// op returns the pending operation if the request ctx belongs to was made
// by the writer's thread for path as kind; nil for any other request.
func (w *selfWriter) op(ctx context.Context, kind selfOpKind, path string) *selfOp {
	if p := w.mine(ctx); p != nil && p.kind == kind && p.path == path {
		return p
	}
	return nil
}

// removesDir reports whether the request ctx belongs to was made by the
// writer's thread for its rmdir of path or of a directory below it (whose
// walk looks path up): every directory on the way left the tree, or is
// still there.
func (w *selfWriter) removesDir(ctx context.Context, path string) bool {
	p := w.mine(ctx)
	return p != nil && p.kind == opRmdir && (p.path == path || strings.HasPrefix(p.path, path+"/"))
}

// mine returns the pending operation if the request ctx belongs to was
// made by the writer's thread; nil for any other request.
func (w *selfWriter) mine(ctx context.Context) *selfOp {
	p := w.pending.Load()
	if p == nil {
		return nil // what almost every request finds: one atomic load
	}
	if c, ok := fuse.FromContext(ctx); ok && p.tid == c.Pid {
		return p
	}
	return nil
}

// fromWriter reports whether a request comes from the writer's thread
// while it has an operation pending: the raw filesystem refuses every
// other write before it reaches a node (readonly.go).
func (w *selfWriter) fromWriter(pid uint32) bool {
	p := w.pending.Load()
	return p != nil && p.tid == pid && pid != 0
}

// matchWrite reports whether a WRITE of data at off writes exactly the
// bytes op will serve there.
func (op *selfOp) matchWrite(data []byte, off int64) bool {
	return off >= 0 && off <= int64(len(op.data)) && int64(len(data)) <= int64(len(op.data))-off &&
		bytes.Equal(op.data[off:off+int64(len(data))], data)
}

// selfSetattr are the attributes an open with O_TRUNC (or ftruncate) may
// set: the size, and the times the kernel sets with it.
const selfSetattr = fuse.FATTR_SIZE | fuse.FATTR_FH | fuse.FATTR_MTIME | fuse.FATTR_MTIME_NOW |
	fuse.FATTR_CTIME | fuse.FATTR_LOCKOWNER | fuse.FATTR_KILL_SUIDGID

// matchSetattr reports whether a SETATTR is the truncation of a write of
// op: to nothing (O_TRUNC) or to the new size.
func (op *selfOp) matchSetattr(in *fuse.SetAttrIn) bool {
	return in.Valid&fuse.FATTR_SIZE != 0 && in.Valid&^selfSetattr == 0 &&
		(in.Size == 0 || in.Size == uint64(len(op.data)))
}

// do makes the system calls of one operation on the mount through the
// read-write directory, with op pending for the thread that makes them, a
// thread of its own (onOwnThread).
func (w *selfWriter) do(op selfOp, call func(dirfd int) error) error {
	w.busy.Lock()
	defer w.busy.Unlock()
	run := func(dirfd int) error {
		return onOwnThread(func() error {
			op.tid = uint32(unix.Gettid())
			w.pending.Store(&op)
			defer w.pending.Store(nil)
			return call(dirfd)
		})
	}
	// The layout's read-write view, kept open meanwhile (root.withRWDir).
	if err := w.r.withRWDir(run); !errors.Is(err, errNoRWView) {
		return err
	}
	dirfd, release, err := w.openDir()
	if err != nil {
		return err
	}
	defer release()
	return run(dirfd)
}

// write writes data to the file at path: IN_MODIFY and IN_CLOSE_WRITE.
func (w *selfWriter) write(path string, data []byte) error {
	return w.do(selfOp{kind: opWrite, path: path, data: data}, func(dirfd int) error {
		fd, err := unix.Openat(dirfd, path, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		for off := 0; off < len(data); {
			n, err := unix.Pwrite(fd, data[off:], int64(off))
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				unix.Close(fd)
				return err
			}
			off += n
		}
		return unix.Close(fd)
	})
}

// create mknods the file at path, which the mount shows now: IN_CREATE.
func (w *selfWriter) create(path string) error {
	return w.do(selfOp{kind: opCreate, path: path}, func(dirfd int) error {
		return unix.Mknodat(dirfd, path, unix.S_IFREG|0o400, 0)
	})
}

// remove unlinks the file at path, which the mount no longer shows:
// IN_DELETE.
func (w *selfWriter) remove(path string, kind entryKind) error {
	return w.do(selfOp{kind: opRemove, path: path, file: kind}, func(dirfd int) error {
		return unix.Unlinkat(dirfd, path, 0)
	})
}

// mkdir makes the directory at path, which the tree shows now: IN_CREATE
// with IN_ISDIR.
func (w *selfWriter) mkdir(path string) error {
	return w.do(selfOp{kind: opMkdir, path: path}, func(dirfd int) error {
		return unix.Mkdirat(dirfd, path, 0o500)
	})
}

// rmdir removes the directory at path, which the tree no longer shows:
// IN_DELETE with IN_ISDIR, and for a watcher of the directory itself
// IN_DELETE_SELF once nothing else holds it.
func (w *selfWriter) rmdir(path string) error {
	return w.do(selfOp{kind: opRmdir, path: path}, func(dirfd int) error {
		return unix.Unlinkat(dirfd, path, unix.AT_REMOVEDIR)
	})
}

// openDir returns a directory fd of the mount point, for a mount without
// a read-write view (made with fusermount3, read-write), and what to call
// when done with it. It is opened for each operation, not held (an fd on
// the mount would make every umount of it fail with EBUSY), and only while
// it is this mount (never what an unmount uncovered). A read-only mount
// has none (at was not called): errNoRWView.
func (w *selfWriter) openDir() (int, func(), error) {
	if w.dir == "" {
		return -1, nil, errNoRWView
	}
	fd, err := unix.Open(w.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, nil, err
	}
	if dev, err := devOf(fd, "", unix.AT_EMPTY_PATH); err != nil || dev != w.dev {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("%s is no longer the mount: %w", w.dir, syscall.ENOTCONN)
	}
	return fd, func() { unix.Close(fd) }, nil
}

// selfTimeout bounds the reads of the store a change's writes need.
const selfTimeout = 30 * time.Second

// apply raises the events of one change: a write for each file the kernel
// holds whose bytes changed, an unlink for each that vanished, and in each
// directory of the secret the kernel holds, a mknod for each file that
// appeared, an unlink for each that vanished and a write for each other
// file whose bytes changed (a watcher of a directory sees its files
// change, as on tmpfs). A change without a stage
// (values turned too stale to serve) changes no bytes a file could show.
func (w *selfWriter) apply(c Change) {
	r := w.r
	if c.Stage == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), selfTimeout)
	defer cancel()
	keysMoved := keysFollow(c.Stage, r.opts.DefaultStage)
	held := map[string]bool{}
	for _, f := range r.filesOf(c.SecretID) {
		kind := f.kind()
		if kind != kindMapped && !(kind == kindStage && f.name == c.Stage) && !(kind == kindKey && keysMoved) {
			continue
		}
		held[f.path()] = true
		w.sync(ctx, f)
	}
	n := w.names(ctx, c)
	if n.empty() {
		return
	}
	for _, p := range r.ix.pathsOf(c.SecretID) {
		d := r.dirAt(p)
		if d == nil {
			continue // nobody watches a directory the kernel does not hold
		}
		shown := d.shownFiles(ctx)
		for _, name := range n.appeared {
			if path := join(p, name); !held[path] && !d.isMapped(name) && d.GetChild(name) == nil && shown[name] {
				r.inval.entry(d, name) // a lookup since the change may have made it positive
				if err := w.create(path); err != nil {
					r.log.Debug("raising a file's creation failed", "file", path, "error", err)
				}
			}
		}
		for name, kind := range n.vanished {
			if path := join(p, name); !held[path] && !d.isMapped(name) && !shown[name] {
				w.unlink(path, kind)
			}
		}
		for name, kind := range n.changed {
			if path := join(p, name); !held[path] && !d.isMapped(name) && shown[name] {
				w.rewrite(ctx, d, name, kind)
			}
		}
	}
}

// dirChanged raises the event of a directory that appeared in the tree (a
// mkdir) or left it (an rmdir) in its parent, if the kernel holds that: a
// watched directory always is, and one it does not hold has no watcher to
// tell. Nothing for a name the parent shows as something else (a mapped
// name, a stage's file), nor when the tree shows the directory again, or
// no longer, by the time the writer gets to it.
func (w *selfWriter) dirChanged(c dirChange) {
	r := w.r
	parent, name := splitPath(c.path)
	d := r.dirAt(parent)
	if d == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), selfTimeout)
	defer cancel()
	if d.hidesDir(ctx, name) {
		return
	}
	shown := r.ix.hasChild(parent, name)
	var err error
	switch {
	case c.appeared && shown:
		r.inval.entry(d, name) // a lookup since the change may have made it positive
		err = w.mkdir(c.path)
	case c.left && !shown:
		err = w.rmdir(c.path)
	default:
		return
	}
	if err != nil {
		r.log.Debug("raising a directory's change failed", "dir", c.path, "error", err)
	}
}

// rewrite raises the event of a changed file the kernel does not hold, in
// a directory it holds (a watcher of the directory sees its files change):
// as sync does for a new node of the file, which has announced nothing.
func (w *selfWriter) rewrite(ctx context.Context, d *dirNode, name string, kind entryKind) {
	if ref, _, _ := w.r.ix.dir(d.path); ref != nil {
		f, _ := d.file(ctx, kind, name, ref)
		w.sync(ctx, f)
	}
}

// unlink raises the removal of a file that vanished, logging a failure
// (ENOENT: the kernel has no such name, nobody to tell).
func (w *selfWriter) unlink(path string, kind entryKind) {
	if err := w.remove(path, kind); err != nil && !errors.Is(err, syscall.ENOENT) {
		w.r.log.Debug("raising a file's removal failed", "file", path, "error", err)
	}
}

// sync raises the event of a file the kernel holds: a write if its bytes
// are not those it last announced (told), an unlink if it vanished.
func (w *selfWriter) sync(ctx context.Context, f *fileNode) {
	r := w.r
	v, err := f.content(ctx)
	if err != nil {
		if f.ref != nil && ErrnoOf(ctx, err) == syscall.ENOENT && f.told.Swap(0) != 0 {
			w.unlink(f.path(), f.kind())
		}
		return
	}
	defer clear(v.Data)
	sum := r.sum(v.Data)
	if f.told.Swap(sum) == sum {
		return
	}
	if err := w.write(f.path(), v.Data); err != nil {
		r.log.Debug("raising a file's change failed", "file", f.path(), "error", err)
	}
}

// nameChanges are what a change does to the files of a secret's
// directory: the names that appear and vanish, and the files shown before
// and after whose bytes differ.
type nameChanges struct {
	appeared []string
	vanished map[string]entryKind
	changed  map[string]entryKind
}

func (n nameChanges) empty() bool {
	return len(n.appeared)+len(n.vanished)+len(n.changed) == 0
}

// names returns what a change does to a secret's directory: the stage's
// file appears, vanishes or changes (when its bytes differ, or the old
// value is no longer at hand), and when the default stage moved, the JSON
// keys appear, vanish and change by what the old and the new value differ
// by (when the old value is still at hand: else only the files the kernel
// holds get events).
func (w *selfWriter) names(ctx context.Context, c Change) nameChanges {
	r := w.r
	n := nameChanges{vanished: map[string]entryKind{}, changed: map[string]entryKind{}}
	switch {
	case c.OldVersionID == "" && c.NewVersionID != "":
		n.appeared = append(n.appeared, c.Stage)
	case c.OldVersionID != "" && c.NewVersionID == "":
		n.vanished[c.Stage] = kindStage
	}
	var newVal, oldVal []byte
	if c.NewVersionID != "" {
		v, err := r.opts.Store.Value(ctx, c.SecretID, c.Stage)
		if err != nil {
			return n
		}
		newVal = v.Data
		defer clear(newVal)
	}
	haveOld := false
	if c.OldVersionID != "" {
		if oldVal, haveOld = w.version(ctx, c.SecretID, c.OldVersionID); haveOld {
			defer clear(oldVal)
		}
	}
	if c.OldVersionID != "" && c.NewVersionID != "" && (!haveOld || !bytes.Equal(oldVal, newVal)) {
		n.changed[c.Stage] = kindStage
	}
	if !keysFollow(c.Stage, r.opts.DefaultStage) || c.OldVersionID != "" && !haveOld {
		return n
	}
	newKeys, _ := jsonKeys(newVal)
	oldKeys, _ := jsonKeys(oldVal)
	defer clearKeys(newKeys)
	defer clearKeys(oldKeys)
	for k, v := range newKeys {
		switch old, ok := oldKeys[k]; {
		case !ok:
			n.appeared = append(n.appeared, k)
		case !bytes.Equal(old, v):
			n.changed[k] = kindKey
		}
	}
	for k := range oldKeys {
		if _, ok := newKeys[k]; !ok {
			if _, ok := n.vanished[k]; !ok {
				n.vanished[k] = kindKey
			}
		}
	}
	return n
}

// clearKeys wipes the key files' bytes jsonKeys returned.
func clearKeys(keys map[string][]byte) {
	for _, b := range keys {
		clear(b)
	}
}

// version returns a version's value if a stage of the secret still points
// at it (the old AWSCURRENT is AWSPREVIOUS now).
func (w *selfWriter) version(ctx context.Context, secretID, versionID string) ([]byte, bool) {
	stages, err := w.r.opts.Store.Stages(ctx, secretID)
	if err != nil {
		return nil, false
	}
	for stage, vid := range stages {
		if vid != versionID {
			continue
		}
		v, err := w.r.opts.Store.Value(ctx, secretID, stage)
		if err == nil && v.VersionID == versionID {
			return v.Data, true
		}
		clear(v.Data)
	}
	return nil, false
}

// shownFiles returns the names of the files a directory shows now (not
// its directories), as a listing would: without looking them up.
func (d *dirNode) shownFiles(ctx context.Context) map[string]bool {
	c := d.contents(ctx, true)
	shown := map[string]bool{}
	for _, e := range mergeEntries(sortedKeys(c.stages), c.children, sortedKeys(c.keys)) {
		shown[e.name] = e.kind != kindDir
	}
	return shown
}

// hidesDir reports whether the directory shows name as something else
// than a directory of the tree: a mapped name, or a stage's file (which
// hides a directory of the same name, mergeEntries).
func (d *dirNode) hidesDir(ctx context.Context, name string) bool {
	if d.isMapped(name) {
		return true
	}
	_, isStage := d.contents(ctx, false).stages[name]
	return isStage
}

// isMapped reports whether a name of the directory is a mapped file's or
// directory's: such a name neither appears nor vanishes with a change.
func (d *dirNode) isMapped(name string) bool {
	if d.r.mapped == nil {
		return false
	}
	_, ok := d.r.mapped.dirs[d.path][name]
	return ok
}
