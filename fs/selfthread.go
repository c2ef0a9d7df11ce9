package fs

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// onOwnThread runs fn on a thread of its own, which ends with it, whose
// table of file descriptors is a copy of the process's without the
// /dev/fuse descriptors. fn makes the writer's calls on the daemon's own
// mount. Were the process killed (kill -9, the OOM killer) while one of
// them waits for its answer, which no thread of the process is left to
// give, the waiting thread would still hold the process's descriptors,
// /dev/fuse among them, whose closing is what ends the connection and so
// the wait: the process could never exit, and its mount would hang every
// reader. With a table of its own the process's closes as it dies, the
// connection ends, and the call fails with ENOTCONN.
func onOwnThread(fn func() error) error {
	done := make(chan error, 1)
	go ownThread(fn, done)
	return <-done
}

func ownThread(fn func() error, done chan<- error) {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// The main thread, which the runtime never ends (it would keep
		// the copied table, and the files in it, open for good): hold it
		// while another goroutine, on another thread then, does the work.
		inner := make(chan error, 1)
		go ownThread(fn, inner)
		err := <-inner
		runtime.UnlockOSThread()
		done <- err
		return
	}
	// Never unlocked: the thread, and its table, end with this goroutine.
	if err := unix.Unshare(unix.CLONE_FILES); err != nil {
		done <- fmt.Errorf("unshare the descriptor table: %w", err)
		return
	}
	if err := closeFuseDevices(); err != nil {
		done <- err
		return
	}
	done <- fn()
}

// closeFuseDevices closes the calling thread's /dev/fuse descriptors: its
// table must be its own (unshare CLONE_FILES).
func closeFuseDevices() error {
	fds, err := fuseDevices("/proc/thread-self/fd")
	for _, fd := range fds {
		unix.Close(fd)
	}
	return err
}
