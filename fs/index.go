package fs

import (
	"slices"
	"strings"
	"sync"
)

// index is the catalog seen as a tree: for each directory path ("" is the
// root), the secret it is (if any) and its child segments, in order; and
// for each secret id, the directories showing it. It holds what the
// catalog's List said last, plus what Find found since; every rebuild
// starts again from List alone, so that the catalog alone decides what
// stays shown.
//
// Cost: a rebuild (once per change of the listing) is O(N log N); every
// question a request or a change asks (dir, hasChild, shows, pathsOf) is a
// map access or a binary search, and allocates nothing: the slices it
// returns are shared and read-only, replaced (never changed) when the tree
// changes. Paths are substrings of the secrets' names, not copies. Readdir's
// childSecrets is O(children) under one lock, with no allocation per child.
type index struct {
	mu   sync.RWMutex
	dirs map[string]*indexDir // guarded by mu
	byID map[string][]string  // secret id -> the directory paths showing it; guarded by mu
}

type indexDir struct {
	ref      *SecretRef // nil when the directory is no secret; replaced, never changed
	children []string   // child segments, sorted; replaced, never changed
}

func newIndex() *index {
	return &index{dirs: map[string]*indexDir{"": {}}, byID: map[string][]string{}}
}

// rebuild replaces the tree with the given secrets. Secrets whose names
// cannot be shown as paths are returned.
func (ix *index) rebuild(refs []SecretRef) (skipped []string) {
	dirs := make(map[string]*indexDir, len(refs)+1)
	dirs[""] = &indexDir{}
	byID := make(map[string][]string, len(refs))
	for _, r := range refs {
		if !addTo(dirs, byID, r, false) {
			skipped = append(skipped, r.Name)
		}
	}
	for _, d := range dirs {
		slices.Sort(d.children)
		d.children = slices.Clip(d.children)
	}
	ix.mu.Lock()
	ix.dirs, ix.byID = dirs, byID
	ix.mu.Unlock()
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
// It copies the child lists it changes (readers may hold them): O(children)
// once per secret found, never per lookup.
func (ix *index) add(r SecretRef) bool {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return addTo(ix.dirs, ix.byID, r, true)
}

// addTo adds a secret to a tree. Sorted keeps every child list sorted as it
// goes (a copy per list changed); without it, children are appended and
// the caller sorts them once at the end.
func addTo(dirs map[string]*indexDir, byID map[string][]string, r SecretRef, sorted bool) bool {
	dir, ok := DirOf(r.Name)
	if !ok {
		return false
	}
	parent := dirs[""]
	for i := 0; i <= len(dir); i++ {
		if i < len(dir) && dir[i] != '/' {
			continue
		}
		// dir[:i] is a path of the tree; its last segment starts after the
		// previous "/".
		path := dir[:i]
		d := dirs[path]
		if d == nil {
			d = &indexDir{}
			dirs[path] = d
			seg := path[strings.LastIndexByte(path, '/')+1:]
			if sorted {
				at, _ := slices.BinarySearch(parent.children, seg)
				parent.children = slices.Insert(slices.Clip(parent.children), at, seg)
			} else {
				parent.children = append(parent.children, seg)
			}
		}
		parent = d
	}
	if old := parent.ref; old != nil {
		byID[old.ID] = slices.DeleteFunc(slices.Clone(byID[old.ID]), func(p string) bool { return p == dir })
		if len(byID[old.ID]) == 0 {
			delete(byID, old.ID)
		}
	}
	ref := r
	parent.ref = &ref
	if sorted {
		byID[r.ID] = append(slices.Clip(byID[r.ID]), dir)
	} else {
		byID[r.ID] = append(byID[r.ID], dir)
	}
	return true
}

// shows reports whether a directory path shows a secret id now.
func (ix *index) shows(path, id string) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	d := ix.dirs[path]
	return d != nil && d.ref != nil && d.ref.ID == id
}

// dir returns the secret a directory path is (nil if none), its sorted
// child segments (shared: read-only), and whether the path exists.
func (ix *index) dir(path string) (ref *SecretRef, children []string, ok bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	d := ix.dirs[path]
	if d == nil {
		return nil, nil, false
	}
	return d.ref, d.children, true
}

// hasChild reports whether a directory path has a child segment name.
func (ix *index) hasChild(path, name string) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	d := ix.dirs[path]
	if d == nil {
		return false
	}
	_, ok := slices.BinarySearch(d.children, name)
	return ok
}

// childSecrets appends to ids the secret ids of a directory path's child
// directories that are secrets, in the children's order: one read lock and
// one map access per child, each child's path built in one reused buffer
// (a map access with string(buf) does not copy it).
func (ix *index) childSecrets(path string, ids []string) []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	d := ix.dirs[path]
	if d == nil {
		return ids
	}
	var buf []byte
	for _, name := range d.children {
		buf = append(buf[:0], path...)
		if path != "" {
			buf = append(buf, '/')
		}
		buf = append(buf, name...)
		if c := ix.dirs[string(buf)]; c != nil && c.ref != nil {
			ids = append(ids, c.ref.ID)
		}
	}
	return ids
}

// pathsOf returns the directory paths showing a secret id (shared:
// read-only).
func (ix *index) pathsOf(id string) []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.byID[id]
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
