package testutil

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ChangeEvents are the inotify events a change of a file or a directory
// raises (not the reads: IN_ACCESS, IN_OPEN, IN_CLOSE_NOWRITE).
const ChangeEvents = unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_ATTRIB | unix.IN_CREATE |
	unix.IN_DELETE | unix.IN_DELETE_SELF | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_MOVE_SELF

// InotifyEvent is one event a Watcher read.
type InotifyEvent struct {
	Mask uint32
	Name string // the name in a watched directory; empty for the watched file itself
}

// Has reports whether the event has every bit of mask.
func (e InotifyEvent) Has(mask uint32) bool { return e.Mask&mask == mask }

// Reporter is where a Watcher reports a failure: a test (testing.TB), or
// a process a test runs, which has none.
type Reporter interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Watcher is a real inotify client watching one path, as a program that
// reloads a file on change does.
type Watcher struct {
	tb   Reporter
	path string
	fd   int
	buf  []byte
	have []InotifyEvent // read but not yet returned
}

// Watch watches path for the events in mask until the test ends.
func Watch(tb testing.TB, path string, mask uint32) *Watcher {
	tb.Helper()
	w := WatchIn(tb, path, mask)
	tb.Cleanup(func() { unix.Close(w.fd) })
	return w
}

// WatchIn is Watch for a process that is not a test (a child process a
// test runs): failures go to r, and the watch ends with the process.
func WatchIn(r Reporter, path string, mask uint32) *Watcher {
	r.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		r.Fatalf("inotify_init1: %v", err)
	}
	if _, err := unix.InotifyAddWatch(fd, path, mask); err != nil {
		unix.Close(fd)
		r.Fatalf("inotify_add_watch %s: %v", path, err)
	}
	return &Watcher{tb: r, path: path, fd: fd, buf: make([]byte, 64<<10)}
}

// read reads the events queued now, waiting at most wait for one.
func (w *Watcher) read(wait time.Duration) {
	w.tb.Helper()
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(wait.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			w.tb.Fatalf("poll inotify of %s: %v", w.path, err)
		}
		if n == 0 {
			return
		}
		break
	}
	n, err := unix.Read(w.fd, w.buf)
	if errors.Is(err, unix.EAGAIN) {
		return
	}
	if err != nil {
		w.tb.Fatalf("read inotify of %s: %v", w.path, err)
	}
	for off := 0; off+unix.SizeofInotifyEvent <= n; {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&w.buf[off]))
		nameAt := off + unix.SizeofInotifyEvent
		name := strings.TrimRight(string(w.buf[nameAt:nameAt+int(ev.Len)]), "\x00")
		w.have = append(w.have, InotifyEvent{Mask: ev.Mask, Name: name})
		off = nameAt + int(ev.Len)
	}
}

// Next returns the next event, waiting at most within; ok is false when
// none came.
func (w *Watcher) Next(within time.Duration) (ev InotifyEvent, ok bool) {
	w.tb.Helper()
	deadline := time.Now().Add(within)
	for len(w.have) == 0 {
		left := time.Until(deadline)
		if left <= 0 {
			return InotifyEvent{}, false
		}
		w.read(left)
	}
	ev, w.have = w.have[0], w.have[1:]
	return ev, true
}

// WaitFor returns the events up to and including the first that has
// every bit of mask (and, if name is not empty, that name), failing the
// test if none comes within.
func (w *Watcher) WaitFor(within time.Duration, mask uint32, name string) []InotifyEvent {
	w.tb.Helper()
	var seen []InotifyEvent
	deadline := time.Now().Add(within)
	for {
		ev, ok := w.Next(time.Until(deadline))
		if !ok {
			w.tb.Fatalf("watcher of %s: no event %#x %q within %v (saw %v)", w.path, mask, name, within, seen)
		}
		seen = append(seen, ev)
		if ev.Has(mask) && (name == "" || ev.Name == name) {
			return seen
		}
	}
}

// Pending returns the events queued now, without waiting.
func (w *Watcher) Pending() []InotifyEvent {
	w.tb.Helper()
	w.read(0)
	out := w.have
	w.have = nil
	return out
}
