package cache

import (
	"container/heap"
	"sync"
	"time"
)

// The background refresh schedule: a min-heap of the entries in use, keyed
// by when each is due (backgroundTimeLocked). An entry's place is updated
// wherever what decides it changes (a refresh stored or failed, a first read
// since the last refresh, a pin, an eviction), so a wake-up of the scheduler
// looks at the entries that are due and at the heap's top, nothing else,
// and the scheduler sleeps while nothing is due.
//
// An entry whose due time moves later keeps its place: the heap is ordered
// by each entry's key, which is never later than its due time, and an entry
// that comes to the top with a later due time is put in its place then. So
// a listing every few seconds, which moves each listed secret's due time on
// a little, costs no heap work per secret; an entry moves at most once per
// time it would have come due.

// schedItem is an entry's place in the schedule; guarded by schedule.mu.
type schedItem struct {
	due  stamp // when the entry is due, while want
	key  stamp // its place in the heap: due, or earlier (see above)
	idx  int32 // position in the heap; -1 when not in it
	want bool  // the entry is in use and has a due time
	busy bool  // handed to a background refresh: out of the heap until it ends
}

// schedule is the heap, with what the scheduler waits for.
type schedule struct {
	mu      sync.Mutex
	heap    schedHeap // guarded by mu
	waiting bool      // the scheduler waits for armed (zero: for a nudge); guarded by mu
	armed   stamp     // guarded by mu; 0: none
	// For tests: wake-ups of the scheduler, entries it looked at, and
	// moves of an entry already in the heap.
	wakeups, visits, fixes int // guarded by mu
}

type schedHeap []*secretEntry

func (h schedHeap) Len() int { return len(h) }
func (h schedHeap) Less(i, j int) bool {
	return h[i].sched.key < h[j].sched.key
}
func (h schedHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].sched.idx = int32(i)
	h[j].sched.idx = int32(j)
}
func (h *schedHeap) Push(x any) {
	e := x.(*secretEntry)
	e.sched.idx = int32(len(*h))
	e.sched.key = e.sched.due
	*h = append(*h, e)
}
func (h *schedHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.sched.idx = -1
	return e
}

// set records when e is due (ok false: not scheduled) and reports whether
// the scheduler must be woken to see it.
func (s *schedule) set(e *secretEntry, at stamp, ok bool) (nudge bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := &e.sched
	it.due, it.want = at, ok
	switch {
	case it.busy:
		return false
	case !ok:
		if it.idx >= 0 {
			heap.Remove(&s.heap, int(it.idx))
		}
		return false
	case it.idx >= 0 && at >= it.key:
		return false // later: it moves when it comes to the top
	case it.idx >= 0:
		s.fixes++
		it.key = at
		heap.Fix(&s.heap, int(it.idx))
	default:
		heap.Push(&s.heap, e)
	}
	return s.waiting && s.heap[0] == e && (s.armed == 0 || at < s.armed)
}

// next pops an entry due at now, marking it busy; when none is due it
// returns when the next one is (zero: none) and records that the scheduler
// waits for it.
func (s *schedule) next(now stamp) (e *secretEntry, at stamp) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.heap) > 0 {
		s.visits++
		top := s.heap[0]
		if top.sched.key < top.sched.due {
			// Its due time moved later since it was placed.
			s.fixes++
			top.sched.key = top.sched.due
			heap.Fix(&s.heap, 0)
			continue
		}
		if top.sched.due <= now {
			heap.Pop(&s.heap)
			top.sched.busy = true
			return top, 0
		}
		at = top.sched.due
		break
	}
	s.waiting, s.armed = true, at
	return nil, at
}

// woke records that the scheduler stopped waiting.
func (s *schedule) woke() {
	s.mu.Lock()
	s.waiting = false
	s.wakeups++
	s.mu.Unlock()
}

// finish ends e's background refresh: e goes back into the heap by its
// state, with scheduleLocked.
func (s *schedule) finish(e *secretEntry) {
	s.mu.Lock()
	e.sched.busy = false
	s.mu.Unlock()
}

// scheduleLocked updates e's place in the schedule from its state; the
// entry is locked. Call it wherever what backgroundTimeLocked reads
// changes.
func (c *Cache) scheduleLocked(e *secretEntry) {
	if c.cfg.RefreshAhead <= 0 {
		return // no background refresh, no schedule
	}
	at, ok := c.backgroundTimeLocked(e)
	if e.evicted {
		ok = false
	}
	if c.sched.set(e, at, ok) {
		c.nudge()
	}
}

// evict forgets an entry the LRU dropped: its value buffers are zeroed and
// it leaves the schedule. Every eviction from c.secrets goes through here.
func (c *Cache) evict(e *secretEntry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.evicted = true
	e.wipeLocked()
	c.scheduleLocked(e)
}

// nudge wakes the background scheduler to look at the schedule's top.
func (c *Cache) nudge() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// scheduleLoop refreshes secrets in use shortly before they expire, and
// retries those in error when their retry time comes, from at most
// Config.backgroundSlots goroutines at once. It sleeps until the schedule's
// top is due, or until a change brings an earlier time to the top.
func (c *Cache) scheduleLoop() {
	defer c.bgWG.Done()
	workers := make(chan struct{}, c.cfg.backgroundSlots())
	var alarm <-chan time.Time
	var alarmAt stamp
	for {
		e, next := c.sched.next(c.stamp(c.clock.Now()))
		if e != nil {
			select {
			case workers <- struct{}{}:
			case <-c.done:
				return
			}
			c.bgWG.Add(1)
			go func() {
				defer func() { <-workers }()
				c.backgroundRefresh(e)
			}()
			continue
		}
		switch {
		case next == 0:
			alarm, alarmAt = nil, 0
		case next != alarmAt || alarm == nil:
			alarm, alarmAt = c.clock.Alarm(c.timeOf(next)), next
		}
		select {
		case <-c.done:
			return
		case <-c.wake:
		case <-alarm:
			alarm, alarmAt = nil, 0
		}
		c.sched.woke()
	}
}

// backgroundRefresh refreshes e in the background, if it is still due, and
// puts it back in the schedule.
func (c *Cache) backgroundRefresh(e *secretEntry) {
	defer c.bgWG.Done()
	select {
	case <-c.backgroundFlight(e, c.dueInBackground):
	case <-c.done:
	}
	e.mu.Lock()
	c.sched.finish(e)
	c.scheduleLocked(e)
	e.mu.Unlock()
}
