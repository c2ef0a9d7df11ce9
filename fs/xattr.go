package fs

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Extended attributes on every secret file; they tell where the content
// comes from and how fresh it is, never the value.
const (
	xattrVersionID = "user.secretsfs.version_id"
	xattrStages    = "user.secretsfs.stages"
	xattrARN       = "user.secretsfs.arn"
	xattrFetchedAt = "user.secretsfs.fetched_at"
	xattrStale     = "user.secretsfs.stale"
)

var xattrNames = []string{xattrVersionID, xattrStages, xattrARN, xattrFetchedAt, xattrStale}

// xattr returns the value of one of the extended attributes.
func xattr(v Value, name string) (string, bool) {
	switch name {
	case xattrVersionID:
		return v.VersionID, true
	case xattrStages:
		st := append([]string(nil), v.Stages...)
		sort.Strings(st)
		return strings.Join(st, ","), true
	case xattrARN:
		return v.ARN, true
	case xattrFetchedAt:
		return v.FetchedAt.UTC().Format(time.RFC3339), true
	case xattrStale:
		return strconv.FormatBool(v.Stale), true
	}
	return "", false
}

func (f *fileNode) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if !strings.HasPrefix(attr, "user.secretsfs.") {
		return 0, syscall.ENODATA
	}
	if attr == xattrRefresh {
		return f.refreshXattr(ctx, dest)
	}
	v, err := f.content(ctx)
	if err != nil {
		return 0, f.r().toErrno(ctx, err)
	}
	clear(v.Data)
	s, ok := xattr(v, attr)
	if !ok {
		return 0, syscall.ENODATA
	}
	return copyXattr(dest, s)
}

func (f *fileNode) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return copyXattr(dest, strings.Join(xattrNames, "\x00")+"\x00")
}

// copyXattr follows getxattr(2): with a too small buffer, ERANGE and the
// size needed; with an empty one, just the size.
func copyXattr(dest []byte, s string) (uint32, syscall.Errno) {
	if len(dest) == 0 {
		return uint32(len(s)), 0
	}
	if len(dest) < len(s) {
		return uint32(len(s)), syscall.ERANGE
	}
	return uint32(copy(dest, s)), 0
}
