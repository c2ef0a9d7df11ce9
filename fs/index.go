package fs

import (
	"sort"
	"strings"
	"sync"
)

// index is the catalog seen as a tree: for each directory path ("" is the
// root), the secret it is (if any) and its child segments. It holds what
// the catalog's List said last, plus what Find found since; every rebuild
// starts again from List alone, so that the catalog alone decides what
// stays shown.
type index struct {
	mu   sync.RWMutex
	dirs map[string]*indexDir // guarded by mu
}

type indexDir struct {
	ref      *SecretRef
	children map[string]struct{}
}

func newIndex() *index {
	return &index{dirs: map[string]*indexDir{"": {children: map[string]struct{}{}}}}
}

// rebuild replaces the tree with the given secrets. Secrets whose names
// cannot be shown as paths are returned.
func (ix *index) rebuild(refs []SecretRef) (skipped []string) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.dirs = map[string]*indexDir{"": {children: map[string]struct{}{}}}
	for _, r := range refs {
		if !ix.addLocked(r) {
			skipped = append(skipped, r.Name)
		}
	}
	return skipped
}

// paths returns every directory path in the tree, with the id of the
// secret it shows ("" for none).
func (ix *index) paths() map[string]string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	out := make(map[string]string, len(ix.dirs))
	for p, d := range ix.dirs {
		out[p] = ""
		if d.ref != nil {
			out[p] = d.ref.ID
		}
	}
	return out
}

// add puts one secret found by Find into the tree, until the next rebuild.
func (ix *index) add(r SecretRef) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return ix.addLocked(r)
}

// shows reports whether a directory path shows a secret id now.
func (ix *index) shows(path, id string) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	d := ix.dirs[path]
	return d != nil && d.ref != nil && d.ref.ID == id
}

func (ix *index) addLocked(r SecretRef) bool {
	dir, ok := DirOf(r.Name)
	if !ok {
		return false
	}
	path := ""
	for _, s := range strings.Split(dir, "/") {
		parent := ix.dirs[path]
		parent.children[s] = struct{}{}
		path = join(path, s)
		if ix.dirs[path] == nil {
			ix.dirs[path] = &indexDir{children: map[string]struct{}{}}
		}
	}
	ref := r
	ix.dirs[path].ref = &ref
	return true
}

// dir returns the secret a directory path is (nil if none), its sorted
// child segments, and whether the path exists.
func (ix *index) dir(path string) (ref *SecretRef, children []string, ok bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	d := ix.dirs[path]
	if d == nil {
		return nil, nil, false
	}
	children = make([]string, 0, len(d.children))
	for c := range d.children {
		children = append(children, c)
	}
	sort.Strings(children)
	return d.ref, children, true
}

// pathsOf returns the directory paths showing a secret id.
func (ix *index) pathsOf(id string) []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []string
	for p, d := range ix.dirs {
		if d.ref != nil && d.ref.ID == id {
			out = append(out, p)
		}
	}
	return out
}

// join appends a segment to a directory path.
func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// splitPath returns a path's parent directory and last segment.
func splitPath(p string) (dir, name string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}
