package mount

import (
	"container/heap"
	"sync"
	"time"

	"github.com/secretsfs/secretsfs/cache"
	sfs "github.com/secretsfs/secretsfs/fs"
)

// staleExpiry tells the filesystem the moment a secret's values turn too
// stale to serve (--max-stale): the store then answers EIO, but in
// kernel-cache mode reads are served from the kernel's caches without
// reaching the daemon, which would go on serving the value until the
// kernel's timeout. It learns of failed refreshes as a cache.Observer and,
// at the last successful refresh plus maxStale of a secret whose refreshes
// still fail, calls its subscribers with a Change that names the secret and
// no stage. It keeps one entry per failing secret, in a queue by time.
type staleExpiry struct {
	maxStale time.Duration
	clock    cache.Clock

	mu       sync.Mutex
	queue    dueQueue                                 // secrets to look at, earliest first; guarded by mu
	queued   map[string]time.Time                     // secret id -> its time in queue; guarded by mu
	notified map[string]time.Time                     // secret id -> the RefreshedAt it expired at; guarded by mu
	info     func(id string) (cache.SecretInfo, bool) // the cache's Info; guarded by mu
	subs     map[*func(sfs.Change)]struct{}           // guarded by mu
	stop     chan struct{}                            // ends the running goroutine; nil when none runs; guarded by mu
	stopped  chan struct{}                            // closed when it has ended; guarded by mu
	wake     chan struct{}
}

var _ cache.Observer = (*staleExpiry)(nil)

func newStaleExpiry(maxStale time.Duration, clock cache.Clock) *staleExpiry {
	return &staleExpiry{
		maxStale: maxStale,
		clock:    clock,
		queued:   map[string]time.Time{},
		notified: map[string]time.Time{},
		subs:     map[*func(sfs.Change)]struct{}{},
		wake:     make(chan struct{}, 1),
	}
}

// APICall is not needed.
func (x *staleExpiry) APICall(string, error, time.Duration) {}

// Refresh notes a refresh: a failed one has the secret looked at at once, a
// successful one makes it servable again.
func (x *staleExpiry) Refresh(secretID string, err error, _ time.Duration) {
	if err == nil {
		x.mu.Lock()
		delete(x.notified, secretID)
		x.mu.Unlock()
		return
	}
	x.lookAt(secretID, x.clock.Now())
}

// lookAt queues a secret to be looked at when the clock reaches t (or
// earlier, if it is queued for earlier).
func (x *staleExpiry) lookAt(id string, t time.Time) {
	x.mu.Lock()
	if cur, ok := x.queued[id]; ok && !t.Before(cur) {
		x.mu.Unlock()
		return
	}
	x.queued[id] = t
	heap.Push(&x.queue, due{id: id, at: t})
	x.mu.Unlock()
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

// subscribe calls fn with a Change naming each secret whose values turn too
// stale, from a goroutine that runs while there are subscribers; info is
// the Info of the cache observed (the store's, which subscribes). cancel
// waits for a running fn.
func (x *staleExpiry) subscribe(info func(id string) (cache.SecretInfo, bool), fn func(sfs.Change)) (cancel func()) {
	s := &fn
	x.mu.Lock()
	x.info = info
	x.subs[s] = struct{}{}
	if x.stop == nil {
		x.stop, x.stopped = make(chan struct{}), make(chan struct{})
		go x.run(x.stop, x.stopped)
	}
	x.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			x.mu.Lock()
			delete(x.subs, s)
			var stopped chan struct{}
			if len(x.subs) == 0 {
				close(x.stop)
				stopped = x.stopped
				x.stop, x.stopped = nil, nil
			}
			x.mu.Unlock()
			if stopped != nil {
				<-stopped
			}
		})
	}
}

// run waits for the earliest queued time and looks at the secrets due.
func (x *staleExpiry) run(stop, stopped chan struct{}) {
	defer close(stopped)
	var alarm <-chan time.Time
	var armed time.Time
	for {
		x.mu.Lock()
		if len(x.queue) > 0 && (alarm == nil || !x.queue[0].at.Equal(armed)) {
			armed = x.queue[0].at
			alarm = x.clock.Alarm(armed)
		}
		x.mu.Unlock()
		select {
		case <-stop:
			return
		case <-x.wake:
		case <-alarm:
			alarm = nil
		}
		x.lookAtDue(x.clock.Now())
	}
}

// lookAtDue looks at every secret queued for now or earlier: one whose
// refreshes still fail is either too stale now, and its subscribers are
// told, or queued again for when it will be.
func (x *staleExpiry) lookAtDue(now time.Time) {
	x.mu.Lock()
	var ids []string
	for len(x.queue) > 0 && !x.queue[0].at.After(now) {
		d := heap.Pop(&x.queue).(due)
		if at, ok := x.queued[d.id]; ok && at.Equal(d.at) {
			delete(x.queued, d.id)
			ids = append(ids, d.id)
		}
	}
	subs := make([]func(sfs.Change), 0, len(x.subs))
	for s := range x.subs {
		subs = append(subs, *s)
	}
	info := x.info
	x.mu.Unlock()
	if len(ids) == 0 || len(subs) == 0 {
		return
	}
	for _, id := range ids {
		in, ok := info(id)
		if !ok || !in.Stale || in.RefreshedAt.IsZero() {
			continue // not cached, refreshed since, or never served
		}
		if at := in.RefreshedAt.Add(x.maxStale); now.Before(at) {
			x.lookAt(id, at)
			continue
		}
		x.mu.Lock()
		told := x.notified[id].Equal(in.RefreshedAt)
		x.notified[id] = in.RefreshedAt
		x.mu.Unlock()
		if told {
			continue
		}
		for _, fn := range subs {
			fn(sfs.Change{SecretID: id})
		}
	}
}

// due is a secret to look at and when.
type due struct {
	id string
	at time.Time
}

// dueQueue is a min-heap of due by time (container/heap).
type dueQueue []due

func (q dueQueue) Len() int           { return len(q) }
func (q dueQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q dueQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *dueQueue) Push(v any)        { *q = append(*q, v.(due)) }
func (q *dueQueue) Pop() any {
	old := *q
	v := old[len(old)-1]
	*q = old[:len(old)-1]
	return v
}
