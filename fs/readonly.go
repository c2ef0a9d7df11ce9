package fs

import (
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// As root the user's mount point is a read-only clone of a read-write view
// only the daemon reaches (rootmount.go), or, without the new mount API, a
// read-only mount: the kernel refuses every write, create, rename, link,
// chmod, chown, truncate, utimes, setxattr, removexattr and access(W_OK) on
// it with EROFS before it reaches the daemon. As non-root (fusermount3) the
// mount is read-write for the kernel, so that the daemon can raise change
// events by writing to its own files (selfwrite.go), and the filesystem
// refuses every write itself. Every request that would change something and
// reaches the daemon is answered EROFS here, for every node of the tree,
// before it reaches a node, unless it comes from the daemon's writer thread
// while it has an operation pending; the node then accepts it only if it is
// exactly that operation (file.go, dir.go).

// writeFlags are the open flags that ask for writing.
const writeFlags = syscall.O_WRONLY | syscall.O_RDWR | syscall.O_TRUNC | syscall.O_APPEND | syscall.O_CREAT

// accessWrite is access(2)'s W_OK.
const accessWrite = 2

// selfOnly passes a request of the writer's thread to the nodes, which
// accept only its pending operation; every other is EROFS, and so is one
// no node implements. (An open answered ENOSYS, kernel-cache mode's, stays
// ENOSYS.)
func (o *observedFS) selfOnly(op string, pid uint32, pass func() fuse.Status) fuse.Status {
	if !o.self.fromWriter(pid) {
		return o.done(op, fuse.EROFS)
	}
	st := pass()
	if st == fuse.ENOTSUP {
		st = fuse.EROFS // a node that does not write
	}
	return o.done(op, st)
}

func (o *observedFS) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) fuse.Status {
	return o.selfOnly("setattr", in.Pid, func() fuse.Status { return o.RawFileSystem.SetAttr(cancel, in, out) })
}

func (o *observedFS) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) fuse.Status {
	return o.selfOnly("mknod", in.Pid, func() fuse.Status { return o.RawFileSystem.Mknod(cancel, in, name, out) })
}

func (o *observedFS) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) fuse.Status {
	return o.selfOnly("mkdir", in.Pid, func() fuse.Status { return o.RawFileSystem.Mkdir(cancel, in, name, out) })
}

func (o *observedFS) Unlink(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return o.selfOnly("unlink", h.Pid, func() fuse.Status { return o.RawFileSystem.Unlink(cancel, h, name) })
}

func (o *observedFS) Rmdir(cancel <-chan struct{}, h *fuse.InHeader, name string) fuse.Status {
	return o.selfOnly("rmdir", h.Pid, func() fuse.Status { return o.RawFileSystem.Rmdir(cancel, h, name) })
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
	return o.selfWrite(in.Pid, func() (uint32, fuse.Status) { return o.RawFileSystem.Write(cancel, in, data) })
}

func (o *observedFS) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	return o.selfWrite(in.Pid, func() (uint32, fuse.Status) { return o.RawFileSystem.Writev(cancel, in, data) })
}

// selfWrite is selfOnly for a WRITE, which also answers a count.
func (o *observedFS) selfWrite(pid uint32, pass func() (uint32, fuse.Status)) (uint32, fuse.Status) {
	var n uint32
	st := o.selfOnly("write", pid, func() (st fuse.Status) {
		n, st = pass()
		return st
	})
	if st != fuse.OK {
		n = 0
	}
	return n, st
}

func (o *observedFS) CopyFileRange(cancel <-chan struct{}, in *fuse.CopyFileRangeIn) (uint32, fuse.Status) {
	return 0, o.done("copy_file_range", fuse.EROFS)
}

func (o *observedFS) Fallocate(cancel <-chan struct{}, in *fuse.FallocateIn) fuse.Status {
	return o.done("fallocate", fuse.EROFS)
}
