package fs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// The mount point is read-only for the kernel in both modes ("ro": a
// read-only mount, or a read-only clone of the read-write view as root,
// rootmount.go), so the kernel refuses every write, create, rename, link,
// chmod, chown, truncate, utimes, setxattr, removexattr and access(W_OK)
// with EROFS before it reaches the daemon; in kernel-cache mode the daemon
// does not even see OPEN. Should a request that would change something
// reach the daemon all the same (through the read-write view, which only
// the daemon reaches), it is answered EROFS here, for every node of the
// tree, before it reaches a node.

// writeFlags are the open flags that ask for writing.
const writeFlags = syscall.O_WRONLY | syscall.O_RDWR | syscall.O_TRUNC | syscall.O_APPEND | syscall.O_CREAT

// accessWrite is access(2)'s W_OK.
const accessWrite = 2

func (o *observedFS) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	return o.done("setattr", fuse.EROFS)
}

func (o *observedFS) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	return o.done("mknod", fuse.EROFS)
}

func (o *observedFS) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	return o.done("mkdir", fuse.EROFS)
}

func (o *observedFS) Unlink(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return o.done("unlink", fuse.EROFS)
}

func (o *observedFS) Rmdir(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return o.done("rmdir", fuse.EROFS)
}

func (o *observedFS) Rename(cancel <-chan struct{}, in *fuse.RenameIn, oldName, newName string) fuse.Status {
	return o.done("rename", fuse.EROFS)
}

func (o *observedFS) Link(cancel <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) fuse.Status {
	return o.done("link", fuse.EROFS)
}

func (o *observedFS) Symlink(cancel <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) fuse.Status {
	return o.done("symlink", fuse.EROFS)
}

func (o *observedFS) SetXAttr(cancel <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) fuse.Status {
	return o.done("setxattr", fuse.EROFS)
}

func (o *observedFS) RemoveXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string) fuse.Status {
	return o.done("removexattr", fuse.EROFS)
}

func (o *observedFS) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) fuse.Status {
	return o.done("create", fuse.EROFS)
}

func (o *observedFS) Tmpfile(cancel <-chan struct{}, in *fuse.CreateIn, out *fuse.CreateOut) fuse.Status {
	return o.done("tmpfile", fuse.EROFS)
}

func (o *observedFS) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (uint32, fuse.Status) {
	return 0, o.done("write", fuse.EROFS)
}

func (o *observedFS) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	return 0, o.done("write", fuse.EROFS)
}

func (o *observedFS) CopyFileRange(cancel <-chan struct{}, in *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	return 0, o.done("copy_file_range", fuse.EROFS)
}

func (o *observedFS) Fallocate(cancel <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	return o.done("fallocate", fuse.EROFS)
}
