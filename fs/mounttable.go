package fs

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// MountTable tells the mounts of a process made in the root layout
// (rootmount.go) when their mount point leaves the mount table, so that an
// umount from outside ends their server. One goroutine watches for all of
// them: it waits in poll(2) on /proc/self/mountinfo, which holds a thread,
// and reads the table once per change, where a watch per mount would hold
// a thread per mount and read the table once per mount at every change of
// it (every volume a CSI driver publishes). It runs while a mount is
// watched only. The zero value is not usable: NewMountTable.
type MountTable struct {
	log *slog.Logger

	mu      sync.Mutex
	watched map[*tableWatch]bool // guarded by mu
	wake    int                  // the running watch's eventfd, -1 when none runs; guarded by mu
}

// tableWatch is a mount id and what to call when it leaves the table. Two
// may have the same id: the kernel gives an id out again once its mount
// is gone, possibly before the watch has seen that.
type tableWatch struct {
	id   uint64
	gone func()
}

// NewMountTable returns a MountTable that logs to log (nil: nowhere).
func NewMountTable(log *slog.Logger) *MountTable {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &MountTable{log: log, watched: map[*tableWatch]bool{}, wake: -1}
}

// watch calls gone, once, from the table's goroutine, when the mount of id
// is no longer in the mount table; the table is checked again once watch
// has returned. stop ends the watch of id (gone may be running then).
func (t *MountTable) watch(id uint64, gone func()) (stop func(), err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.wake < 0 {
		info, err := unix.Open("/proc/self/mountinfo", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("watch the mount table: %w", err)
		}
		wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
		if err != nil {
			unix.Close(info)
			return nil, fmt.Errorf("watch the mount table: eventfd: %w", err)
		}
		t.wake = wake
		go t.run(info, wake)
	}
	w := &tableWatch{id: id, gone: gone}
	t.watched[w] = true
	t.poke() // the mount may have left already
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.watched[w] {
			delete(t.watched, w)
			if len(t.watched) == 0 {
				t.poke() // the watch ends
			}
		}
	}, nil
}

// poke has the running watch look at the table and the watched mounts
// again. t.mu is held.
func (t *MountTable) poke() {
	unix.Write(t.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
}

// run is the watch: info is /proc/self/mountinfo, on which poll says
// POLLPRI after every change of the mount table since the last poll that
// said so, and wake the eventfd of poke. It returns once nothing is
// watched, or when poll fails (then an umount from outside goes unnoticed
// until the next watch starts another).
func (t *MountTable) run(info, wake int) {
	defer unix.Close(info)
	defer unix.Close(wake)
	fds := []unix.PollFd{{Fd: int32(info), Events: unix.POLLPRI}, {Fd: int32(wake), Events: unix.POLLIN}}
	var count [8]byte
	for {
		t.mu.Lock()
		if len(t.watched) == 0 {
			t.wake = -1
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			t.log.Warn("cannot watch the mount table; an umount of a mount point will not end its mount", "err", err)
			t.mu.Lock()
			t.wake = -1
			t.mu.Unlock()
			return
		}
		if fds[1].Revents != 0 {
			unix.Read(wake, count[:])
		}
		present, err := mountIDs()
		if err != nil {
			t.log.Warn("cannot read the mount table", "err", err)
			continue
		}
		var gone []func()
		t.mu.Lock()
		for w := range t.watched {
			if !present[w.id] {
				delete(t.watched, w)
				gone = append(gone, w.gone)
			}
		}
		t.mu.Unlock()
		for _, f := range gone {
			f()
		}
	}
}

// mountIDs returns the mount ids in /proc/self/mountinfo (its first field).
func mountIDs() (map[uint64]bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	ids := map[uint64]bool{}
	for line := range bytes.Lines(data) {
		field, _, _ := bytes.Cut(line, []byte{' '})
		if id, err := strconv.ParseUint(string(field), 10, 64); err == nil {
			ids[id] = true
		}
	}
	return ids, nil
}
