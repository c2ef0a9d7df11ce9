package fs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
)

var _ = (gofs.NodeSetxattrer)((*mappedNode)(nil))

// Setxattr of user.secretsfs.refresh refreshes every secret the mapped file
// depends on (see refresh.go).
func (m *mappedNode) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	if attr != xattrRefresh {
		return syscall.EROFS
	}
	_, errno := m.refresh(ctx)
	return errno
}

// refresh refreshes the file's secrets, drops the kernel's caches of the
// file, and returns the version id the file shows now (that of the first
// secret it reads).
func (m *mappedNode) refresh(ctx context.Context) (string, syscall.Errno) {
	if m.r.opts.Refresher == nil {
		return "", syscall.ENOTSUP
	}
	for _, id := range m.f.SecretIDs {
		if err := m.r.opts.Refresher.RefreshNow(ctx, id); err != nil {
			return "", m.r.toErrno(ctx, err)
		}
	}
	v, errno := m.render(ctx)
	if errno != 0 {
		return "", errno
	}
	clear(v.Data)
	select {
	case <-m.r.inval.mapped(m):
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
	return v.VersionID, 0
}
