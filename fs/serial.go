package fs

import "sync"

// serial runs fn on each item pushed, in the order pushed, on one
// goroutine of its own, so that pushing never blocks: the invalidator's
// and the change writer's queues (notify.go, selfwrite.go).
type serial[T any] struct {
	fn   func(T)
	drop func(T) // called instead of fn for the items left at stop; may be nil

	mu      sync.Mutex
	queue   []T // guarded by mu
	running int // items taken from queue and not done yet; guarded by mu
	signal  chan struct{}
	done    chan struct{}
	stopped sync.Once
	wg      sync.WaitGroup
}

func newSerial[T any](fn, drop func(T)) *serial[T] {
	return &serial[T]{fn: fn, drop: drop, signal: make(chan struct{}, 1), done: make(chan struct{})}
}

func (s *serial[T]) start() {
	s.wg.Add(1)
	go s.run()
}

// stop ends the goroutine once the item in progress is done; the items
// left are dropped. It may be called more than once.
func (s *serial[T]) stop() {
	s.stopped.Do(func() { close(s.done) })
	s.wg.Wait()
	s.mu.Lock()
	left := s.queue
	s.queue = nil
	s.mu.Unlock()
	if s.drop != nil {
		for _, v := range left {
			s.drop(v)
		}
	}
}

func (s *serial[T]) push(v T) {
	s.mu.Lock()
	s.queue = append(s.queue, v)
	s.mu.Unlock()
	select {
	case s.signal <- struct{}{}:
	default:
	}
}

func (s *serial[T]) run() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.signal:
		}
		s.mu.Lock()
		batch := s.queue
		s.queue = nil
		s.running = len(batch)
		s.mu.Unlock()
		for i, v := range batch {
			select {
			case <-s.done:
				s.mu.Lock()
				s.queue = append(batch[i:], s.queue...)
				s.running = 0
				s.mu.Unlock()
				return
			default:
			}
			s.fn(v)
			s.mu.Lock()
			s.running--
			s.mu.Unlock()
		}
	}
}

// idle reports whether every item pushed so far is done.
func (s *serial[T]) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) == 0 && s.running == 0
}
