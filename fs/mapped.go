package fs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// MappedFile is a file placed at a chosen path by a mapping file. Its content
// is computed by Render (the daemon reads the secrets, selects a key, applies
// a format or runs a template); the filesystem serves it like any secret
// file: a snapshot per open, read directly, and the kernel's caches of it
// dropped when a secret it depends on changes.
type MappedFile struct {
	// Path is the file's path in the mount: relative, "/"-separated. Its
	// directories are made from it.
	Path string
	// Mode is the permission bits; zero means Options.FileMode.
	Mode os.FileMode
	// UID and GID own the file, exactly: 0 is root, not a default (the
	// daemon gives the mount's owner where the mapping names none).
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
// (the file, nil for a directory); read-only but for failures, which has
// its own lock.
type mappedTree struct {
	dirs     map[string]map[string]*MappedFile
	failures *failureLog
}

// failureLog logs the failures of mapped files: what a reader gets and
// why (the error names the mapping file's line), once per file for each
// change of cause however often the file is read, and its recovery.
type failureLog struct {
	mu   sync.Mutex
	last map[string]string // path -> the failure last logged; guarded by mu
}

// note records the outcome of a rendering of the file at path: err nil
// (errno 0) for success.
func (l *failureLog) note(log *slog.Logger, path string, errno syscall.Errno, err error) {
	cause := ""
	if err != nil {
		cause = unix.ErrnoName(errno) + " " + err.Error()
	}
	l.mu.Lock()
	prev := l.last[path]
	if cause == "" {
		delete(l.last, path)
	} else {
		l.last[path] = cause
	}
	l.mu.Unlock()
	switch {
	case cause == prev:
	case err != nil:
		log.Warn("mapped file fails", "path", path, "errno", unix.ErrnoName(errno), "error", err)
	default:
		log.Info("mapped file serves again", "path", path)
	}
}

// newMappedTree builds the tree, refusing paths that are not clean relative
// paths, two files at one path, and a file where a directory is needed.
func newMappedTree(files []MappedFile) (*mappedTree, error) {
	t := &mappedTree{dirs: map[string]map[string]*MappedFile{"": {}}, failures: &failureLog{last: map[string]string{}}}
	for i := range files {
		f := &files[i]
		segs, ok := splitSecretName(f.Path)
		if !ok {
			return nil, fmt.Errorf("mapped file %q: not a relative path of valid file names", f.Path)
		}
		dir := ""
		for i, s := range segs {
			isDir := i < len(segs)-1
			if prev, ok := t.dirs[dir][s]; ok && !isDir && prev != nil {
				return nil, fmt.Errorf("mapped file %q: given twice", f.Path)
			} else if ok && (prev == nil) != isDir {
				return nil, fmt.Errorf("mapped file %q: %q is both a file and a directory", f.Path, join(dir, s))
			}
			if isDir {
				t.dirs[dir][s] = nil
			} else {
				t.dirs[dir][s] = f
			}
			dir = join(dir, s)
			if isDir && t.dirs[dir] == nil {
				t.dirs[dir] = map[string]*MappedFile{}
			}
		}
	}
	return t, nil
}

// mappedFile is the mapped file a file node shows.
func (f *fileNode) mappedFile() *MappedFile { return f.r().mapped.dirs[f.dir.path][f.name] }

// render returns a mapped file's content; an error names the file's path
// and why, never a value, and is logged here (failureLog) unless the caller
// was interrupted.
func (r *root) render(ctx context.Context, mf *MappedFile) (Value, error) {
	v, err := mf.Render(ctx)
	if err != nil {
		err = fmt.Errorf("mapped file %s: %w", mf.Path, err)
	}
	if errno := ErrnoOf(ctx, err); errno != syscall.EINTR {
		r.mapped.failures.note(r.log, mf.Path, errno, err)
	}
	if err != nil {
		return Value{}, &loggedError{err}
	}
	return v, nil
}

// mappedAttr gives a mapped file its own mode and owner.
func (r *root) mappedAttr(out *fuse.Attr, mf *MappedFile) {
	mode := mf.Mode
	if mode == 0 {
		mode = r.opts.FileMode
	}
	out.Mode = syscall.S_IFREG | uint32(mode.Perm())
	out.Owner = fuse.Owner{Uid: mf.UID, Gid: mf.GID}
}

// lookupMapped answers a lookup of a mapped file or of a directory made for
// one; ok is false when name is neither.
func (d *dirNode) lookupMapped(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno, bool) {
	t := d.r.mapped
	if t == nil {
		return nil, 0, false
	}
	mf, ok := t.dirs[d.path][name]
	if !ok {
		return nil, 0, false
	}
	if mf == nil {
		return d.newDir(ctx, name, out), 0, true
	}
	// A file that cannot be rendered is not looked up, so that in
	// kernel-cache mode a read fails too instead of finding size 0.
	f, live := d.file(ctx, kindMapped, name, nil)
	ch, errno := d.lookupFile(ctx, f, live, true, out)
	return ch, errno, true
}

// withMapped adds a directory's mapped entries to its listing; a mapped name
// hides a default-layout name it clashes with.
func (d *dirNode) withMapped(list []fuse.DirEntry) []fuse.DirEntry {
	r, dir := d.r, d.path
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
	for name, mf := range children {
		if mf == nil {
			out = append(out, fuse.DirEntry{Name: name, Mode: syscall.S_IFDIR, Ino: d.ino(kindDir, name)})
		} else {
			out = append(out, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG, Ino: d.ino(kindMapped, name)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
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
			if r.forMount == nil {
				r.forMount = make(map[string]bool)
			}
			r.forMount[id] = true
			if r.pins[id] == nil {
				r.pins[id] = r.opts.Store.Pin(id)
			}
		}
	}
}
