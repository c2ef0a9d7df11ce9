package fs

import (
	"context"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Observer learns of every FUSE request the mount answers, for metrics. Op
// is called once per request, from the request's goroutine, and must not
// block.
type Observer interface {
	// Op reports a request by its operation ("lookup", "getattr", "open",
	// "read", "getxattr", "setxattr", ...) and the errno it was answered
	// with (0 for success).
	Op(op string, errno syscall.Errno)
}

// Auditor learns of every open of a secret file in per-open mode, served or
// refused, and of every lookup of one that is refused before an OPEN could
// come (OpenEvent.AtLookup). Open is called from the request before it is
// answered, so the caller's process still exists; it must not block long.
type Auditor interface {
	Open(OpenEvent)
}

// OpenEvent is one open of a secret file. It never holds the value.
type OpenEvent struct {
	Time time.Time
	// Path is the file's path inside the mount, without a leading "/".
	Path     string
	SecretID string
	// Stage is the stage read (for a JSON key file, the default stage).
	Stage string
	// Key is the JSON key a key file shows; empty for a stage file.
	Key       string
	VersionID string // the version served; empty when refused
	Stale     bool
	// Errno is 0 when the open was served, else what the caller got.
	Errno syscall.Errno
	// AtLookup says that the file was refused when the kernel looked it up,
	// before any OPEN (e.g. a JSON key of a value that cannot be served, a
	// mapped file that cannot be rendered): the caller may have been
	// opening it or only asking about it (stat).
	AtLookup bool
	// TID is the calling thread's id as the kernel reports it (the process
	// is found through /proc/TID/status), UID and GID its effective ids.
	TID      uint32
	UID, GID uint32
}

// audit reports an open to the auditor, if there is one, with the caller
// taken from the request.
func (r *root) audit(ctx context.Context, ev OpenEvent) {
	if r.opts.Auditor == nil {
		return
	}
	ev.Time = r.opts.Clock.Now()
	if c, ok := fuse.FromContext(ctx); ok {
		ev.TID, ev.UID, ev.GID = c.Pid, c.Uid, c.Gid
	}
	r.opts.Auditor.Open(ev)
}

// observedFS is the mount's raw filesystem: go-fuse's node filesystem with
// every request reported to an Observer on its way back, and every request
// that would write answered EROFS before it reaches a node (readonly.go),
// but for the daemon's own change events (selfwrite.go).
type observedFS struct {
	fuse.RawFileSystem
	obs  Observer
	self *selfWriter
}

type nopObserver struct{}

func (nopObserver) Op(string, syscall.Errno) {}

func newObservedFS(top *dirNode, opts *gofs.Options, obs Observer) *observedFS {
	if obs == nil {
		obs = nopObserver{}
	}
	return &observedFS{RawFileSystem: gofs.NewNodeFS(top, opts), obs: obs, self: top.r.writer}
}

// done reports a request's answer and returns it.
func (o *observedFS) done(op string, st fuse.Status) fuse.Status {
	o.obs.Op(op, syscall.Errno(st))
	return st
}

func (o *observedFS) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) fuse.Status {
	return o.done("lookup", o.RawFileSystem.Lookup(cancel, h, name, out))
}

func (o *observedFS) Forget(nodeid, nlookup uint64) {
	o.RawFileSystem.Forget(nodeid, nlookup)
	o.obs.Op("forget", 0)
}

func (o *observedFS) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) fuse.Status {
	return o.done("getattr", o.RawFileSystem.GetAttr(cancel, in, out))
}

func (o *observedFS) Readlink(cancel <-chan struct{}, h *fuse.InHeader) ([]byte, fuse.Status) {
	b, st := o.RawFileSystem.Readlink(cancel, h)
	return b, o.done("readlink", st)
}

func (o *observedFS) Access(cancel <-chan struct{}, in *fuse.AccessIn) fuse.Status {
	if in.Mask&accessWrite != 0 {
		return o.done("access", fuse.EROFS)
	}
	return o.done("access", o.RawFileSystem.Access(cancel, in))
}

func (o *observedFS) GetXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (uint32, fuse.Status) {
	n, st := o.RawFileSystem.GetXAttr(cancel, h, attr, dest)
	return n, o.done("getxattr", st)
}

func (o *observedFS) ListXAttr(cancel <-chan struct{}, h *fuse.InHeader, dest []byte) (uint32, fuse.Status) {
	n, st := o.RawFileSystem.ListXAttr(cancel, h, dest)
	return n, o.done("listxattr", st)
}

func (o *observedFS) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	if in.Flags&writeFlags != 0 {
		return o.selfOnly("open", in.Pid, func() fuse.Status { return o.RawFileSystem.Open(cancel, in, out) })
	}
	return o.done("open", o.RawFileSystem.Open(cancel, in, out))
}

func (o *observedFS) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (fuse.ReadResult, fuse.Status) {
	r, st := o.RawFileSystem.Read(cancel, in, buf)
	return r, o.done("read", st)
}

func (o *observedFS) Lseek(cancel <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) fuse.Status {
	return o.done("lseek", o.RawFileSystem.Lseek(cancel, in, out))
}

func (o *observedFS) GetLk(cancel <-chan struct{}, in *fuse.LkIn, out *fuse.LkOut) fuse.Status {
	return o.done("getlk", o.RawFileSystem.GetLk(cancel, in, out))
}

func (o *observedFS) SetLk(cancel <-chan struct{}, in *fuse.LkIn) fuse.Status {
	return o.done("setlk", o.RawFileSystem.SetLk(cancel, in))
}

func (o *observedFS) SetLkw(cancel <-chan struct{}, in *fuse.LkIn) fuse.Status {
	return o.done("setlkw", o.RawFileSystem.SetLkw(cancel, in))
}

func (o *observedFS) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	o.RawFileSystem.Release(cancel, in)
	o.obs.Op("release", 0)
}

func (o *observedFS) Flush(cancel <-chan struct{}, in *fuse.FlushIn) fuse.Status {
	return o.done("flush", o.RawFileSystem.Flush(cancel, in))
}

func (o *observedFS) Fsync(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return o.done("fsync", o.RawFileSystem.Fsync(cancel, in))
}

func (o *observedFS) Ioctl(cancel <-chan struct{}, in *fuse.IoctlIn, inbuf []byte, out *fuse.IoctlOut, outbuf []byte) fuse.Status {
	return o.done("ioctl", o.RawFileSystem.Ioctl(cancel, in, inbuf, out, outbuf))
}

func (o *observedFS) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	return o.done("opendir", o.RawFileSystem.OpenDir(cancel, in, out))
}

func (o *observedFS) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return o.done("readdir", o.RawFileSystem.ReadDir(cancel, in, out))
}

func (o *observedFS) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return o.done("readdirplus", o.RawFileSystem.ReadDirPlus(cancel, in, out))
}

func (o *observedFS) ReleaseDir(in *fuse.ReleaseIn) {
	o.RawFileSystem.ReleaseDir(in)
	o.obs.Op("releasedir", 0)
}

func (o *observedFS) FsyncDir(cancel <-chan struct{}, in *fuse.FsyncIn) fuse.Status {
	return o.done("fsyncdir", o.RawFileSystem.FsyncDir(cancel, in))
}

func (o *observedFS) StatFs(cancel <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) fuse.Status {
	return o.done("statfs", o.RawFileSystem.StatFs(cancel, h, out))
}

func (o *observedFS) Statx(cancel <-chan struct{}, in *fuse.StatxIn, out *fuse.StatxOut) fuse.Status {
	return o.done("statx", o.RawFileSystem.Statx(cancel, in, out))
}

// mountObserved is gofs.Mount with the node filesystem wrapped in an
// observedFS.
func mountObserved(dir string, top *dirNode, obs Observer, opts *gofs.Options) (*fuse.Server, error) {
	server, err := fuse.NewServer(newObservedFS(top, opts, obs), dir, &opts.MountOptions)
	if err != nil {
		return nil, err
	}
	go server.Serve()
	if err := server.WaitMount(); err != nil {
		return nil, err
	}
	return server, nil
}
