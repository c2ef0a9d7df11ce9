package fs

import (
	"syscall"
)

// invalidator drops the kernel's caches for what a change affects. It runs
// on one goroutine of its own, never inside a FUSE request: a notification
// sent while a related request is being served can deadlock.
type invalidator struct {
	r *root
	q *serial[job]
}

// job is a store change, one node to invalidate, or a directory of the
// tree that changed.
type job struct {
	change *Change
	node   *fileNode
	dir    *dirChange
	done   chan struct{} // closed when the job is done, if set
}

// dirChange is a directory path of the tree that a new listing changed: it
// appeared, it left, or (neither) it shows another secret now.
type dirChange struct {
	path           string
	appeared, left bool
}

func newInvalidator(r *root) *invalidator {
	iv := &invalidator{r: r}
	iv.q = newSerial(iv.do, func(j job) {
		if j.done != nil {
			close(j.done)
		}
	})
	return iv
}

func (iv *invalidator) start() { iv.q.start() }

func (iv *invalidator) stop() { iv.q.stop() }

// change queues a store change.
func (iv *invalidator) change(c Change) { iv.q.push(job{change: &c}) }

// dir queues a directory of the tree that changed.
func (iv *invalidator) dir(c dirChange) { iv.q.push(job{dir: &c}) }

// node queues one file node and returns a channel closed once its caches
// are dropped.
func (iv *invalidator) node(f *fileNode) <-chan struct{} {
	done := make(chan struct{})
	iv.q.push(job{node: f, done: done})
	return done
}

// do does one job.
func (iv *invalidator) do(j job) {
	switch {
	case j.node != nil:
		iv.content(j.node)
	case j.dir != nil:
		if !j.dir.appeared {
			// What the kernel holds below it is gone, with it or with
			// the secret it showed.
			dir, name := splitPath(j.dir.path)
			if d := iv.r.dirAt(dir); d != nil {
				iv.goneTree(d, name)
			}
		}
		if j.dir.appeared || j.dir.left {
			iv.r.writer.changeDir(*j.dir) // the event, once the names below it are dropped
		}
	default:
		iv.apply(*j.change)
		iv.r.writer.change(*j.change) // the events, once the caches are dropped
	}
	if j.done != nil {
		close(j.done)
	}
}

// apply invalidates the files a change affects: the stage's file, and when
// the default stage moved, the JSON key files; and the names that may have
// appeared or gone. A change without a stage affects every file of the
// secret, whose names stay.
func (iv *invalidator) apply(c Change) {
	r := iv.r
	if c.Stage == "" {
		for _, f := range r.filesOf(c.SecretID) {
			iv.content(f)
		}
		return
	}
	keysMoved := keysFollow(c.Stage, r.opts.DefaultStage)
	for _, f := range r.filesOf(c.SecretID) {
		kind := f.kind()
		if kind == kindMapped {
			iv.content(f) // any change of a secret it uses
			continue
		}
		if (kind == kindStage && f.name == c.Stage) || (kind == kindKey && keysMoved) {
			iv.content(f)
			if c.NewVersionID == "" || kind == kindKey {
				// The file may be gone (a stage removed, a key dropped).
				if d := r.dirAt(f.dir.path); d != nil {
					iv.entry(d, f.name)
				}
			}
		}
	}
	if c.OldVersionID == "" || c.NewVersionID == "" {
		for _, p := range r.ix.pathsOf(c.SecretID) {
			if d := r.dirAt(p); d != nil {
				iv.entry(d, c.Stage)
			}
		}
	}
}

// content drops a file's cached pages and attributes. ENOENT means the
// kernel has nothing cached for it.
func (iv *invalidator) content(f *fileNode) {
	if errno := f.NotifyContent(0, 0); errno != 0 && errno != syscall.ENOENT {
		iv.r.log.Debug("invalidating a file's cache failed", "file", f.path(), "errno", errno)
	}
}

// goneTree drops a name that is gone from a directory, after every name the
// kernel holds below it, deepest first: a process may hold a directory
// below open, and the names in it must go with it.
func (iv *invalidator) goneTree(d *dirNode, name string) {
	if ch := d.GetChild(name); ch != nil {
		if sub, ok := ch.Operations().(*dirNode); ok {
			for n := range sub.Children() {
				iv.goneTree(sub, n)
			}
		}
	}
	iv.entry(d, name)
}

// entry drops a cached name in a directory.
func (iv *invalidator) entry(d *dirNode, name string) {
	if errno := d.NotifyEntry(name); errno != 0 && errno != syscall.ENOENT {
		iv.r.log.Debug("invalidating a name failed", "dir", d.path, "name", name, "errno", errno)
	}
}
