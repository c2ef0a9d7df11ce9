package catalog

import (
	"container/list"
	"time"
)

// missSet remembers names that are no secret to show, each for a fixed time,
// and at most max of them: the oldest is forgotten first. Insertion order is
// expiry order (one TTL for all), so every operation is O(1) amortized and
// nothing walks the set. It is not safe for concurrent use: the catalog's
// lock guards it.
type missSet struct {
	ttl    time.Duration
	max    int
	byName map[string]*list.Element
	order  *list.List // of missEntry, oldest first
}

type missEntry struct {
	name  string
	until time.Time
}

func newMissSet(ttl time.Duration, max int) *missSet {
	return &missSet{ttl: ttl, max: max, byName: make(map[string]*list.Element), order: list.New()}
}

// has reports whether name is remembered as a miss at now.
func (m *missSet) has(name string, now time.Time) bool {
	m.expire(now)
	_, ok := m.byName[name]
	return ok
}

// add remembers name as a miss from now on, forgetting the oldest misses
// beyond max.
func (m *missSet) add(name string, now time.Time) {
	m.remove(name)
	m.byName[name] = m.order.PushBack(missEntry{name: name, until: now.Add(m.ttl)})
	for m.order.Len() > m.max {
		m.remove(m.order.Front().Value.(missEntry).name)
	}
	m.expire(now)
}

// remove forgets name.
func (m *missSet) remove(name string) {
	if el, ok := m.byName[name]; ok {
		m.order.Remove(el)
		delete(m.byName, name)
	}
}

// expire forgets the misses whose time is up.
func (m *missSet) expire(now time.Time) {
	for el := m.order.Front(); el != nil && !now.Before(el.Value.(missEntry).until); el = m.order.Front() {
		m.remove(el.Value.(missEntry).name)
	}
}

func (m *missSet) len() int { return m.order.Len() }
