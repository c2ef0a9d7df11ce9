package fs

import (
	"context"
	"crypto/sha256"
	"syscall"
)

// xattrRefresh forces a refresh of a file's secret: reading it refreshes and
// returns the version id served afterwards. Reading works for every reader
// of the file on the read-only mount, where the kernel refuses every
// setxattr. It is not listed, so that "getfattr -d" does not refresh.
const xattrRefresh = "user.secretsfs.refresh"

// Refresher forces a refresh of one secret: its metadata and the values its
// stages in use point at, reporting whether it succeeded.
type Refresher interface {
	RefreshNow(ctx context.Context, secretID string) error
}

// refreshXattr answers a read of user.secretsfs.refresh.
func (f *fileNode) refreshXattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	vid, errno := f.refresh(ctx)
	if errno != 0 {
		return 0, errno
	}
	return copyXattr(dest, vid)
}

// refresh refreshes every secret the file uses and, when the file's content
// is no longer what the kernel may hold, drops the kernel's caches of it
// before answering, so that the next read sees the new value. It returns the
// version id the file shows now (for a mapped file, that of the first secret
// it reads).
func (f *fileNode) refresh(ctx context.Context) (string, syscall.Errno) {
	if f.r.opts.Refresher == nil {
		return "", syscall.ENOTSUP
	}
	for _, id := range f.src.secretIDs() {
		if err := f.r.opts.Refresher.RefreshNow(ctx, id); err != nil {
			return "", f.r.toErrno(ctx, err)
		}
	}
	v, err := f.src.content(ctx)
	if err != nil {
		return "", f.r.toErrno(ctx, err)
	}
	sum := sha256.Sum256(v.Data)
	clear(v.Data)
	f.mu.Lock()
	changed := f.seen && f.kept != sum
	f.mu.Unlock()
	if changed || f.r.opts.KernelCache {
		// Safe while this request is outstanding: it holds no page of the
		// file (see notify.go).
		f.dropCache(ctx)
	}
	return v.VersionID, 0
}
