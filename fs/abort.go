package fs

import (
	"errors"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// A bind of the mount that another mount namespace holds (a container's,
// made while it was mounted) is a mount of the same filesystem: it keeps
// the filesystem, and with it the FUSE connection, alive after the daemon
// unmounts its mount point and closes its read-write view, and go-fuse's
// server serves until the connection ends. Unmount does not wait for those
// binds to go: it ends the connection (abortConnection), as the daemon's
// exit would, and they answer ENOTCONN.

// connEndGrace bounds how long Unmount waits for the connection to end by
// itself before it ends it, and then for the server to stop. It bounds a
// wait on the kernel, not a schedule: the real clock.
const connEndGrace = 2 * time.Second

// connOf is the FUSE connection of the filesystem of path at dirfd (the
// descriptor itself when path is ""): the minor number of its device, the
// name of its directory in fusectl. It asks the kernel for what it has
// (AT_STATX_DONT_SYNC, no attribute): a GETATTR would fill the kernel's
// cache of the root's attributes, which would then answer a stat after
// kill -9 for a while instead of ENOTCONN.
func connOf(dirfd int, path string) (uint32, error) {
	flags := unix.AT_STATX_DONT_SYNC
	if path == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	var stx unix.Statx_t
	if err := unix.Statx(dirfd, path, flags, 0, &stx); err != nil {
		return 0, err
	}
	return stx.Dev_minor, nil
}

// abortConnection ends the FUSE connection id, as `echo 1 >
// /sys/fs/fuse/connections/ID/abort` does: every request waiting on it and
// every later one fails with ENOTCONN, and the server's reads end. It uses
// a fusectl filesystem made for the call with the new mount API and
// attached nowhere, else the one mounted on /sys/fs/fuse/connections. Root
// only. A connection already gone is no error.
func abortConnection(id uint32) error {
	name := strconv.FormatUint(uint64(id), 10) + "/abort"
	err := writeAbort(unix.AT_FDCWD, "/sys/fs/fuse/connections/"+name)
	if err == nil {
		return nil
	}
	if fsfd, ferr := unix.Fsopen("fusectl", unix.FSOPEN_CLOEXEC); ferr == nil {
		defer unix.Close(fsfd)
		if ferr = unix.FsconfigCreate(fsfd); ferr == nil {
			if mnt, merr := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0); merr == nil {
				defer unix.Close(mnt)
				err = writeAbort(mnt, name)
			}
		}
	}
	if errors.Is(err, unix.ENOENT) {
		return nil // no such connection any more
	}
	return err
}

func writeAbort(dirfd int, path string) error {
	fd, err := unix.Openat(dirfd, path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte("1")); err != nil {
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
}

// endConnection waits, for at most connEndGrace, for the server to stop
// once the mount point is unmounted; if binds elsewhere keep it serving,
// it ends the connection (as root) and waits as long again. Past that it
// logs and returns: the connection ends with the process.
func (s *Server) endConnection() {
	stopped := s.Gone()
	select {
	case <-stopped:
		return
	case <-time.After(connEndGrace):
	}
	if os.Geteuid() != 0 || s.conn == 0 {
		s.root.log.Warn("binds of the mount elsewhere (containers') keep its filesystem; it ends with this process")
		return
	}
	s.root.log.Info("binds of the mount elsewhere (containers') keep its filesystem; ending its connection: they answer ENOTCONN", "connection", s.conn)
	if err := abortConnection(s.conn); err != nil {
		s.root.log.Warn("could not end the FUSE connection; it ends with this process", "connection", s.conn, "error", err)
		return
	}
	select {
	case <-stopped:
	case <-time.After(connEndGrace):
		s.root.log.Warn("the FUSE connection was ended but its server did not stop; it stops with this process", "connection", s.conn)
	}
}
