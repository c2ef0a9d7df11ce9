package fs

import (
	"context"
	"os"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// xattrRefresh forces a refresh of a file's secret: reading it refreshes and
// returns the version id served afterwards. Reading works for every reader
// of the file on the read-only mount, where the kernel refuses every
// setxattr. It is not listed, so that "getfattr -d" does not refresh.
const xattrRefresh = "user.secretsfs.refresh"

// Refresher forces a refresh of one secret for a reader of the mount: its
// metadata and the values its stages in use point at, reporting whether it
// succeeded. Since any reader may ask, it must bound what that costs: join
// a refresh in flight, call at most so often per secret, and while the
// secret backs off after errors call sooner only for the mount's owner.
type Refresher interface {
	RequestRefresh(ctx context.Context, secretID string, from Requester) error
}

// Requester is who asks for a forced refresh.
type Requester struct {
	// Owner is true for the user who mounted the filesystem and for root:
	// only they may cut short the wait of a secret backing off after
	// errors.
	Owner bool
}

// requester tells who makes the request ctx belongs to; owner is the uid
// that mounted the filesystem.
func requester(ctx context.Context, owner uint32) Requester {
	c, ok := fuse.FromContext(ctx)
	return Requester{Owner: ok && (c.Uid == 0 || c.Uid == owner)}
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
	if f.r().opts.Refresher == nil {
		return "", syscall.ENOTSUP
	}
	from := requester(ctx, uint32(os.Geteuid()))
	for _, id := range f.secretIDs() {
		if err := f.r().opts.Refresher.RequestRefresh(ctx, id, from); err != nil {
			return "", f.r().toErrno(ctx, err)
		}
	}
	v, err := f.content(ctx)
	if err != nil {
		return "", f.r().toErrno(ctx, err)
	}
	sum := f.r().sum(v.Data)
	clear(v.Data)
	if kept := f.kept.Load(); kept != 0 && kept != sum || f.r().opts.KernelCache {
		// Safe while this request is outstanding: it holds no page of the
		// file (see notify.go).
		f.dropCache(ctx)
	}
	return v.VersionID, 0
}
