package hooks

import (
	"context"
	"crypto/sha256"
	"path/filepath"
	"sync"
	"time"

	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/mount/mapping"
)

// Watch is a mapped file with a hook: the runner renders it again whenever
// a secret it uses changes, and runs the hook when its bytes changed.
type Watch struct {
	// Path is the file's absolute path.
	Path string
	// SecretIDs are the secrets its content depends on.
	SecretIDs []string
	// SecretID, Stage and VersionID are what the hook's environment says
	// the file shows.
	SecretID, Stage, VersionID string
	// Render returns the file's content.
	Render func(ctx context.Context) (sfs.Value, error)
	// Hook runs when the content changes. Files that share an on_change
	// share the pointer, and so its runs.
	Hook *mapping.OnChange
}

// WatchesOf pairs each mapped file that has an on_change (its own or the
// mapping's top-level one) with its rendering; files are the mapped files
// as mounted at mountDir. The files that share the top-level on_change
// share one hook, run once for all of them.
func WatchesOf(m *mapping.Config, files []sfs.MappedFile, mountDir, defaultStage string) []Watch {
	if m == nil {
		return nil
	}
	byPath := make(map[string]sfs.MappedFile, len(files))
	for _, mf := range files {
		byPath[mf.Path] = mf
	}
	var out []Watch
	for _, file := range m.Files {
		oc := m.OnChangeOf(file)
		mf, ok := byPath[file.Path]
		if oc == nil || !ok {
			continue
		}
		ref := shownBy(file, defaultStage)
		out = append(out, Watch{
			Path:      absPath(mountDir, file.Path),
			SecretIDs: mf.SecretIDs,
			SecretID:  ref.secretID,
			Stage:     ref.stage,
			VersionID: ref.versionID,
			Render:    mf.Render,
			Hook:      oc, // the files of one on_change share it
		})
	}
	return out
}

// shownBy tells what a mapped file shows, for its hook's environment: the
// secret and the stage or version it names; for a template, the default
// stage of the first secret it names. (No stage means the default stage,
// as the cache reads it; this fills it in for the environment only.)
func shownBy(file mapping.File, defaultStage string) fileRef {
	ref := fileRef{secretID: file.Ref.SecretID, stage: file.Ref.Stage, versionID: file.Ref.VersionID}
	if file.Template != nil {
		ref = fileRef{}
		if ids := file.SecretIDs(); len(ids) > 0 {
			ref.secretID = ids[0]
		}
	}
	if ref.stage == "" && ref.versionID == "" {
		ref.stage = defaultStage
	}
	return ref
}

// absPath is the absolute path of rel ("/"-separated, relative to the
// mount) in the mount at mountDir: for the default layout's files and the
// mapped files alike.
func absPath(mountDir, rel string) string {
	return filepath.Join(mountDir, filepath.FromSlash(rel))
}

// mappedWatch is a Watch as the runner follows it. Its content is compared
// by SHA-256 with the last rendering, so the hook runs only when the bytes
// changed.
type mappedWatch struct {
	path   string // absolute
	ids    []string
	ref    fileRef // what the hook's environment says it shows
	render func(ctx context.Context) (sfs.Value, error)
	hook   *mapping.OnChange

	mu    sync.Mutex
	sum   [sha256.Size]byte // guarded by mu
	known bool              // sum is set; guarded by mu
}

// newMappedWatch starts following w.
func newMappedWatch(w Watch) *mappedWatch {
	return &mappedWatch{
		path:   w.Path,
		ids:    w.SecretIDs,
		ref:    fileRef{secretID: w.SecretID, stage: w.Stage, versionID: w.VersionID},
		render: w.Render,
		hook:   w.Hook,
	}
}

// changed renders the file and reports whether its content differs from
// the last rendering (or there was none). A failed rendering changes
// nothing: readers get an error, and the hook runs once it works again with
// other bytes.
func (w *mappedWatch) changed(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := w.render(ctx)
	if err != nil {
		return false
	}
	sum := sha256.Sum256(v.Data)
	clear(v.Data)
	w.mu.Lock()
	defer w.mu.Unlock()
	changed := !w.known || sum != w.sum
	w.sum, w.known = sum, true
	return changed
}
