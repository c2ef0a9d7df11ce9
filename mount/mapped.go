package mount

import (
	"context"
	"fmt"

	sfs "github.com/secretsfs/secretsfs/fs"
	"github.com/secretsfs/secretsfs/mount/mapping"
)

// mappedFiles turns a mapping file's entries into the filesystem's mapped
// files, each rendered from the store on demand, with the mount's mode and
// owner where the entry gives none.
func mappedFiles(m *mapping.Config, st store, cfg Config) []sfs.MappedFile {
	out := make([]sfs.MappedFile, 0, len(m.Files))
	for _, f := range m.Files {
		mf := sfs.MappedFile{
			Path:      f.Path,
			Mode:      f.Mode,
			UID:       cfg.UID,
			GID:       cfg.GID,
			SecretIDs: f.SecretIDs(),
		}
		if mf.Mode == 0 {
			mf.Mode = cfg.FileMode
		}
		if f.UID != nil {
			mf.UID = *f.UID
		}
		if f.GID != nil {
			mf.GID = *f.GID
		}
		mf.Render = func(ctx context.Context) (sfs.Value, error) { return renderMapped(ctx, st, f) }
		out = append(out, mf)
	}
	return out
}

// servedSecrets counts the secrets a mount serves: those its catalog lists
// and those its mapped files use.
func servedSecrets(listed []sfs.SecretRef, m *mapping.Config) int {
	ids := make(map[string]bool, len(listed))
	for _, r := range listed {
		ids[r.Name] = true
	}
	if m != nil {
		for _, f := range m.Files {
			for _, id := range f.SecretIDs() {
				ids[id] = true
			}
		}
	}
	return len(ids)
}

// renderMapped computes a mapped file's content. The metadata (version id,
// ARN, stages, dates) is that of the first value the file reads; it is stale
// when any value it read is. An error names the entry (file, line, path)
// and never a value.
func renderMapped(ctx context.Context, st store, f mapping.File) (sfs.Value, error) {
	var meta sfs.Value
	first, stale := true, false
	fetch := func(ctx context.Context, ref mapping.Ref) ([]byte, error) {
		v, err := st.ref(ctx, ref)
		if err != nil {
			return nil, err
		}
		if first {
			meta, first = v, false
			meta.Data = nil
		}
		stale = stale || v.Stale
		return v.Data, nil
	}
	data, err := f.Render(ctx, fetch)
	if err != nil {
		return sfs.Value{}, fmt.Errorf("%s: %w", f.At(), err)
	}
	meta.Data, meta.Stale = data, stale
	return meta, nil
}

// ref reads what a mapping entry names: a stage (empty: the default) or a
// version id, with the same --max-stale bound as every other read.
func (s store) ref(ctx context.Context, ref mapping.Ref) (sfs.Value, error) {
	if ref.VersionID == "" {
		return s.Value(ctx, ref.SecretID, ref.Stage)
	}
	v, err := s.c.GetValueByVersion(ctx, ref.SecretID, ref.VersionID)
	return s.served(ref.SecretID, v, err)
}
