package cache

import "sync"

// Change says that a stage of a secret now points at another version. An
// empty OldVersionID means the stage appeared; an empty NewVersionID means
// it disappeared (or the secret did).
type Change struct {
	SecretID     string // the id as the cache's callers gave it
	Stage        string
	OldVersionID string
	NewVersionID string
}

// Subscribe calls fn for every Change the cache sees, in order, from a
// goroutine of its own: never from inside a read, so fn may block or call
// back into the cache. Changes are seen when a refresh of a cached secret
// (by a read, in the background or forced) finds the stages moved. Call the
// returned function to stop; it waits for a running fn to return.
func (c *Cache) Subscribe(fn func(Change)) (cancel func()) {
	s := &subscriber{fn: fn, signal: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	c.subsMu.Lock()
	c.subs[s] = struct{}{}
	c.subsMu.Unlock()
	go s.run()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.subsMu.Lock()
			delete(c.subs, s)
			c.subsMu.Unlock()
			close(s.done)
			<-s.stopped
		})
	}
}

// emit queues changes for every subscriber without blocking.
func (c *Cache) emit(changes []Change) {
	if len(changes) == 0 {
		return
	}
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	for s := range c.subs {
		s.push(changes)
	}
}

type subscriber struct {
	fn      func(Change)
	mu      sync.Mutex
	queue   []Change // guarded by mu
	signal  chan struct{}
	done    chan struct{}
	stopped chan struct{}
}

func (s *subscriber) push(changes []Change) {
	s.mu.Lock()
	s.queue = append(s.queue, changes...)
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *subscriber) run() {
	defer close(s.stopped)
	for {
		select {
		case <-s.done:
			return
		case <-s.signal:
		}
		s.mu.Lock()
		batch := s.queue
		s.queue = nil
		s.mu.Unlock()
		for _, ch := range batch {
			select {
			case <-s.done:
				return
			default:
			}
			s.fn(ch)
		}
	}
}

// diffStages lists the stages whose version differs between two answers.
func diffStages(id string, old, new stageVersions) []Change {
	var out []Change
	for _, o := range old {
		if nv := new.get(o.stage); nv != o.vid {
			out = append(out, Change{SecretID: id, Stage: o.stage, OldVersionID: o.vid, NewVersionID: nv})
		}
	}
	for _, n := range new {
		if old.get(n.stage) == "" {
			out = append(out, Change{SecretID: id, Stage: n.stage, NewVersionID: n.vid})
		}
	}
	return out
}
