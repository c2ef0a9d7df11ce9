package fs

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
)

// The kernel keeps a dentry and an inode for every name it looked up until
// memory runs short, and go-fuse and the mount keep a node for each as long
// as it does: after a walk of ten thousand secrets, tens of megabytes for
// names nobody uses. The sweeper asks the kernel to drop a name nobody used
// for Options.ForgetIdle (NotifyEntry); unless something holds the inode (an
// open file, a working directory, a watch) the kernel then forgets it, and
// go-fuse and the mount drop their nodes (OnForget). A later lookup makes
// new ones, with the same inode number.
//
// Cost: no walk over the nodes, ever. A node handed to the kernel by a
// lookup is queued once (a flag in the node), in order of time; each
// request that uses a node stamps it. The sweeper waits until the head is
// due, and then drops it if the kernel forgot it, queues it again at the
// tail if it was used since it was queued, or else drops its name. That is
// a constant number of queue operations per request, whatever the number of
// names.
//
// Times are in quanta of a sixteenth of the idle period: a node already
// stamped in the current quantum needs no new stamp, nor do its
// directories, so most requests only read one word; and names queued in one
// quantum are due together, which bounds the sweeper's wake-ups to sixteen
// per idle period.

const (
	// perOpenForgetIdle: in per-open mode the kernel trusts a name for a
	// second (attrTimeout) and looks it up again at its first use after
	// that, so a name in use is seen at least every few seconds; one not
	// used for three costs a LOOKUP at its next use anyway. Short, so that a
	// walk of the whole tree (find, a backup) never holds every name at
	// once: at 10 000 secrets the daemon's peak fell from 114 MiB with 10 s
	// to 84 with 3 s.
	perOpenForgetIdle = 3 * time.Second
	// kernelCacheForgetIdle: in kernel-cache mode the kernel trusts a name
	// for a minute without asking, so a name in use may be seen only once a
	// minute: twice that and a margin.
	kernelCacheForgetIdle = 2*time.Minute + 30*time.Second
)

// forgetIdle is how long a name may go unused before the kernel is asked
// to forget it.
func forgetIdle(opts Options) time.Duration {
	switch {
	case opts.ForgetIdle > 0:
		return opts.ForgetIdle
	case opts.KernelCache:
		return kernelCacheForgetIdle
	default:
		return perOpenForgetIdle
	}
}

// lastUse is embedded in every node: the quantum of the last request that
// used it (or a name below it), and whether the sweeper has it queued
// (queuedBit), in one word.
type lastUse struct{ word atomic.Int64 }

const queuedBit = 1

func (u *lastUse) useMark() *lastUse { return u }

// used is what every node embeds lastUse for.
type used interface{ useMark() *lastUse }

func markOf(n *gofs.Inode) *lastUse {
	if u, ok := n.Operations().(used); ok {
		return u.useMark()
	}
	return nil
}

// sweeper drops the names nobody uses. Its goroutine never runs inside a
// FUSE request, and never holds a lock a request needs while it notifies
// the kernel (a notification sent while a related request is being served
// can deadlock: notify.go).
type sweeper struct {
	clock   Clock
	idle    int64 // nanoseconds
	quantum int64 // nanoseconds

	mu      sync.Mutex
	queue   []sweepEntry // guarded by mu; FIFO, from head on
	head    int          // guarded by mu
	waiting bool         // the goroutine waits, nothing being due; guarded by mu
	signal  chan struct{}
	done    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
	log     *slog.Logger

	// For tests: queue operations (pushes and pops) and names dropped.
	queueOps, invalidated atomic.Int64
}

// sweepEntry is a queued node and the quantum it was queued in.
type sweepEntry struct {
	n  *gofs.Inode
	at int64
}

func newSweeper(r *root) *sweeper {
	idle := int64(forgetIdle(r.opts))
	return &sweeper{
		clock: r.opts.Clock, idle: idle, quantum: max(idle/16, 1),
		signal: make(chan struct{}, 1), done: make(chan struct{}),
		log: r.log,
	}
}

// now is the current quantum (quantize).
func (s *sweeper) now() int64 { return s.quantize(s.clock.Now().UnixNano()) }

// quantize returns the start of the quantum of t, in nanoseconds; never odd
// (the low bit is queuedBit).
func (s *sweeper) quantize(t int64) int64 { return (t - t%s.quantum) &^ queuedBit }

// lookedUp notes that a lookup in parent hands child to the kernel: both
// are used, and child is queued unless it is already.
func (s *sweeper) lookedUp(parent, child *gofs.Inode) {
	now := s.now()
	if m := markOf(child); m != nil {
		for {
			old := m.word.Load()
			if m.word.CompareAndSwap(old, max(old&^queuedBit, now)|queuedBit) {
				if old&queuedBit == 0 {
					s.push(child, now)
				}
				break
			}
		}
	}
	s.mark(parent, now)
}

// used notes that a request used a node (open, getattr).
func (s *sweeper) used(n *gofs.Inode) { s.mark(n, s.now()) }

// mark stamps n and the directories above it with the quantum now: what is
// used below a directory uses the directory (the kernel may not ask about
// it while it trusts its name). It stops at the first node already stamped
// in this quantum: the stamp that did it went on upwards.
func (s *sweeper) mark(n *gofs.Inode, now int64) {
	for n != nil {
		m := markOf(n)
		if m == nil {
			return
		}
		for {
			old := m.word.Load()
			if old&^queuedBit >= now {
				return
			}
			if m.word.CompareAndSwap(old, now|old&queuedBit) {
				break
			}
		}
		_, n = n.Parent()
	}
}

func (s *sweeper) push(n *gofs.Inode, at int64) {
	s.queueOps.Add(1)
	s.mu.Lock()
	s.queue = append(s.queue, sweepEntry{n: n, at: at})
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

// pop takes the head if it is due at now; else it returns when the head
// is due (0 for an empty queue) and notes that the goroutine waits.
func (s *sweeper) pop(now int64) (e sweepEntry, ok bool, due int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == len(s.queue) {
		s.waiting = true
		return e, false, 0
	}
	e = s.queue[s.head]
	if due = e.at + s.idle; due > now {
		s.waiting = true
		return sweepEntry{}, false, due
	}
	s.waiting = false
	s.queueOps.Add(1)
	s.queue[s.head] = sweepEntry{}
	s.head++
	if s.head*2 >= len(s.queue) {
		// Move the rest to the front, and give memory back when the
		// queue has shrunk to a quarter of its array: amortised O(1).
		k := copy(s.queue, s.queue[s.head:])
		clear(s.queue[k:])
		s.queue, s.head = s.queue[:k], 0
		if cap(s.queue) > 64 && k < cap(s.queue)/4 {
			s.queue = append(make([]sweepEntry, 0, 2*k), s.queue...)
		}
	}
	return e, true, 0
}

// caughtUp reports whether the goroutine waits with nothing due at t (for
// tests).
func (s *sweeper) caughtUp(t time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting && (s.head == len(s.queue) || s.queue[s.head].at+s.idle > t.UnixNano())
}

func (s *sweeper) start() {
	s.wg.Add(1)
	go s.run()
}

// stop ends the goroutine and waits for it; it may be called more than
// once (Unmount, and the end of serving).
func (s *sweeper) stop() {
	s.stopped.Do(func() { close(s.done) })
	s.wg.Wait()
}

func (s *sweeper) run() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		default:
		}
		now := s.clock.Now().UnixNano()
		e, ok, due := s.pop(now)
		if ok {
			s.sweep(e, now)
			continue
		}
		// Nodes queued meanwhile go behind the head: only an empty
		// queue waits for them.
		wake := s.signal
		if due != 0 {
			wake = nil
		}
		var alarm <-chan time.Time
		if due != 0 {
			alarm = s.clock.Alarm(time.Unix(0, due))
		}
		select {
		case <-s.done:
			return
		case <-wake:
		case <-alarm:
		}
	}
}

// sweep deals with a due node: queued again if used since it was queued,
// else no longer queued, and its name dropped unless the kernel forgot it
// already.
func (s *sweeper) sweep(e sweepEntry, now int64) {
	m := markOf(e.n)
	for {
		old := m.word.Load()
		if old&^queuedBit > e.at {
			s.push(e.n, s.quantize(now))
			return
		}
		if m.word.CompareAndSwap(old, old&^queuedBit) {
			break
		}
	}
	if e.n.Forgotten() {
		return
	}
	name, parent := e.n.Parent()
	if parent == nil {
		return
	}
	s.invalidated.Add(1)
	// ENOENT: the kernel dropped the name already (with its directory).
	if errno := parent.NotifyEntry(name); errno != 0 && errno != syscall.ENOENT {
		s.log.Debug("dropping an idle name failed", "name", name, "errno", errno)
	}
}
