package fs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// Server is a mounted secretsfs.
type Server struct {
	fuse   *fuse.Server
	root   *root
	cancel []func()
	// rootMount is the mount in the root layout (rootmount.go); nil when
	// mounted with fusermount3 or mount(2).
	rootMount *rootMount
	// reindexMu keeps reindexes one at a time: each compares the tree
	// before and after its own rebuild.
	reindexMu sync.Mutex
	// gone is closed once the filesystem is no longer served (Gone).
	gone chan struct{}
	// conn is the filesystem's FUSE connection (connOf); 0 if unknown.
	conn uint32
}

// Mount mounts the filesystem at dir and serves it in the background until
// Unmount. As root the mount point is a read-only clone of a read-write
// mount only the daemon reaches (rootmount.go), or, where the kernel lacks
// the new mount API, a read-only mount made with mount(2); it fails rather
// than fall back to fusermount3, which it uses otherwise (Debian package
// fuse3).
func Mount(dir string, opts Options) (*Server, error) {
	return mount(dir, opts, unix.Fsopen)
}

func mount(dir string, opts Options, fsopen fsopenFunc) (*Server, error) {
	if opts.Store == nil || opts.Catalog == nil {
		return nil, errors.New("fs: Options.Store and Options.Catalog are required")
	}
	if opts.Clock == nil {
		return nil, errors.New("fs: Options.Clock is required: pass the cache's clock")
	}
	s, top, err := newServer(opts)
	if err != nil {
		return nil, err
	}
	opts = s.root.opts // defaulted

	var mountOpts []string
	if opts.AllowOther {
		// Without it the kernel lets any user read a 0400 file.
		mountOpts = append(mountOpts, "default_permissions")
	}
	asRoot := os.Geteuid() == 0
	gopts := &gofs.Options{
		MountOptions: fuse.MountOptions{
			FsName:               opts.FsName,
			Name:                 "secretsfs",
			AllowOther:           opts.AllowOther,
			Options:              mountOpts,
			Debug:                opts.Debug,
			IgnoreSecurityLabels: true,
			MaxReadAhead:         64 << 10,
			MaxWrite:             maxRead,
			// Handles read directly (file.go); this lets programs map
			// them with MAP_SHARED too (without it: ENODEV).
			ExtraCapabilities: fuse.CAP_DIRECT_IO_ALLOW_MMAP,
		},
		RootStableAttr: &gofs.StableAttr{Ino: 1},
		// No UID or GID here: go-fuse would put them in place of every
		// owner 0, so that a file meant for root would be the mount
		// user's. Every node fills its owner itself (root.go).
	}
	var server *fuse.Server
	if asRoot {
		server, s.rootMount, err = mountRoot(dir, s.root, func() fuse.RawFileSystem {
			return newObservedFS(top, gopts, opts.Observer)
		}, &gopts.MountOptions, fsopen, opts.MountTable)
		if errors.Is(err, errNoMountAPI) {
			s.root.log.Warn("mounting without a read-write view", "reason", err)
		}
	}
	if !asRoot || errors.Is(err, errNoMountAPI) {
		if asRoot {
			// Read-only: the kernel refuses every write before it
			// reaches the daemon (readonly.go); no change events.
			mountOpts = append(mountOpts, "ro")
		}
		// Else read-write, so that the daemon can raise change events
		// by writing to its own files (selfwrite.go); the filesystem
		// refuses every other write (readonly.go).
		gopts.MountOptions.Options = mountOpts
		// With allow_other, default_permissions keeps the daemon's own
		// writes out of its 0400 files too: no events there.
		s.root.events.Store(!asRoot && !opts.AllowOther)
		gopts.MountOptions.DirectMount = asRoot
		gopts.MountOptions.DirectMountStrict = asRoot
		server, err = mountObserved(dir, top, opts.Observer, gopts)
	}
	if err != nil {
		for _, c := range s.cancel {
			c()
		}
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	closeFuseOnExec()
	s.fuse = server
	if s.rootMount != nil {
		s.conn = s.rootMount.conn
	} else if conn, err := connOf(unix.AT_FDCWD, dir); err == nil {
		s.conn = conn
	}
	if s.rootMount != nil || asRoot {
		// The writer writes through the read-write view, or, on a
		// read-only mount, not at all.
	} else if err := s.root.writer.at(dir); err != nil {
		server.Unmount()
		for _, c := range s.cancel {
			c()
		}
		return nil, fmt.Errorf("mount %s: %w", dir, err)
	}
	s.root.inval.start()
	s.root.sweep.start()
	s.root.writer.start()
	s.gone = make(chan struct{})
	go func() {
		// Unmounted by someone else (umount): no name to drop any more,
		// no event to raise.
		server.Wait()
		s.root.sweep.stop()
		s.root.writer.stop()
		close(s.gone)
	}()
	s.cancel = append(s.cancel, opts.Store.Subscribe(s.root.inval.change))
	s.root.pinMapped()
	return s, nil
}

// newServer builds the tree of a mount (options defaulted, the index built
// from the catalog and kept in step with it) and returns its top directory,
// without mounting it.
func newServer(opts Options) (*Server, *dirNode, error) {
	if opts.DefaultStage == "" {
		opts.DefaultStage = "AWSCURRENT"
	}
	if opts.FileMode == 0 {
		opts.FileMode = 0o400
	}
	if opts.DirMode == 0 {
		opts.DirMode = 0o500
	}
	if opts.FsName == "" {
		opts.FsName = "secretsfs"
	}
	r := newRoot(opts)
	if len(opts.Files) > 0 {
		t, err := newMappedTree(opts.Files)
		if err != nil {
			return nil, nil, err
		}
		r.mapped = t
	}
	s := &Server{root: r}
	s.rebuild() // what the mount shows from the start: no event
	s.cancel = append(s.cancel, opts.Catalog.OnChange(s.reindex))
	top := &dirNode{r: r, path: ""}
	r.top = top
	return s, top, nil
}

// rebuild rebuilds the tree from the catalog's list.
func (s *Server) rebuild() {
	if skipped := s.root.ix.rebuild(s.root.opts.Catalog.List()); len(skipped) > 0 {
		s.root.log.Warn("secrets whose names cannot be paths are not shown", "names", strings.Join(skipped, ", "))
	}
}

// reindex rebuilds the tree from a new listing. The kernel forgets the
// directories that left or no longer show the secret they showed, with
// everything below them (new ones need nothing: misses are not cached).
// A directory that appeared raises IN_CREATE in its parent, the topmost
// new one only (the kernel holds nothing below it, so nothing there is
// watched; a directory made for mapped files was always there), and one
// that left IN_DELETE, the deepest first, as rm -r would (selfwrite.go). A directory the catalog's Find added at a lookup
// since the last listing was in the tree before: it raises nothing now.
func (s *Server) reindex() {
	s.reindexMu.Lock()
	defer s.reindexMu.Unlock()
	before := s.root.ix.paths()
	s.rebuild()
	after := s.root.ix.paths()
	var changed []dirChange
	for p, id := range before {
		switch now, ok := after[p]; {
		case p == "":
		case !ok:
			changed = append(changed, dirChange{path: p, left: true})
		case id != "" && now != id:
			changed = append(changed, dirChange{path: p})
		}
	}
	for p := range after {
		if _, ok := before[p]; ok {
			continue
		}
		if parent, _ := splitPath(p); s.root.hadDir(before, parent) {
			changed = append(changed, dirChange{path: p, appeared: true})
		}
	}
	// A path sorts before the paths below it: reversed, the deepest first.
	slices.SortFunc(changed, func(a, b dirChange) int { return strings.Compare(b.path, a.path) })
	for _, c := range changed {
		s.root.inval.dir(c)
	}
}

// hadDir reports whether a directory path was in the tree before a
// reindex: in the index then, or made for mapped files (always there).
func (r *root) hadDir(before map[string]string, path string) bool {
	if _, ok := before[path]; ok {
		return true
	}
	return r.mapped != nil && r.mapped.dirs[path] != nil
}

// Unmount unmounts and stops serving. It fails with EBUSY while files are
// open on the mount. Binds of the mount in other mount namespaces do not
// hold it up: their connection is ended (endConnection).
func (s *Server) Unmount() error {
	// Not while the writer holds the mount point open (EBUSY).
	resume := s.root.writer.pause()
	var err error
	if s.rootMount != nil {
		// The view closes with it: the connection ends once nothing else
		// holds the filesystem.
		err = s.rootMount.unmount()
	} else {
		// go-fuse's Unmount also waits for the connection to end.
		unmounted := make(chan error, 1)
		go func() { unmounted <- s.fuse.Unmount() }()
		select {
		case err = <-unmounted:
		case <-time.After(connEndGrace):
			// Unmounted, and waiting: what endConnection handles.
		}
	}
	resume()
	if err != nil {
		return err
	}
	s.endConnection()
	s.shutdown()
	return nil
}

// Wait returns when the filesystem is no longer served (unmounted, also by
// someone else with umount: in the root layout the read-write view is then
// closed, which ends the filesystem).
func (s *Server) Wait() {
	s.fuse.Wait()
}

// Gone is closed once the filesystem is no longer served, whoever
// unmounted it (as Wait returns), without a goroutine of the caller's
// waiting for it.
func (s *Server) Gone() <-chan struct{} { return s.gone }

func (s *Server) shutdown() {
	for _, c := range s.cancel {
		c()
	}
	s.cancel = nil
	s.root.inval.stop()
	s.root.writer.stop()
	s.root.sweep.stop()
	s.root.unpinAll()
}

// closeFuseOnExec marks this process's /dev/fuse descriptors close-on-exec:
// a direct mount opens it without, and a child that inherited it would keep
// a dead daemon's mount hanging instead of failing with ENOTCONN.
func closeFuseOnExec() {
	fds, _ := fuseDevices("/proc/self/fd")
	for _, fd := range fds {
		unix.CloseOnExec(fd)
	}
}

// fuseDevices returns the descriptors open on /dev/fuse in the table that
// dir lists (/proc/self/fd, /proc/thread-self/fd).
func fuseDevices(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var fds []int
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && target == "/dev/fuse" {
			fds = append(fds, fd)
		}
	}
	return fds, nil
}
