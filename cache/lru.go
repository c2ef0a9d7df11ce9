package cache

// lru is a size-bounded map that evicts its least recently used entry when an
// insert makes it too large. Lookups and inserts are O(1) and allocate only
// on insert. It is not safe for concurrent use: callers hold their own lock.
//
// The rules are the reference's: get moves a key to the front; putIfAbsent
// leaves an existing key's value and recency untouched; eviction happens
// only on insert.
type lru[K comparable, V any] struct {
	max   int
	items map[K]*lruNode[K, V]
	head  *lruNode[K, V] // most recently used
	tail  *lruNode[K, V] // least recently used
}

type lruNode[K comparable, V any] struct {
	key        K
	value      V
	prev, next *lruNode[K, V]
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, items: make(map[K]*lruNode[K, V])}
}

// get returns the value for key and marks it most recently used.
func (l *lru[K, V]) get(key K) (V, bool) {
	n, ok := l.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	l.moveToFront(n)
	return n.value, true
}

// peek returns the value for key without changing its recency.
func (l *lru[K, V]) peek(key K) (V, bool) {
	n, ok := l.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	return n.value, true
}

// putIfAbsent inserts key with value unless key is present. It reports
// whether it inserted, and returns the entry evicted to make room, if any.
func (l *lru[K, V]) putIfAbsent(key K, value V) (inserted bool, evicted *V) {
	if _, ok := l.items[key]; ok {
		return false, nil
	}
	n := &lruNode[K, V]{key: key, value: value}
	l.items[key] = n
	l.pushFront(n)
	if len(l.items) > l.max {
		old := l.tail
		l.unlink(old)
		delete(l.items, old.key)
		return true, &old.value
	}
	return true, nil
}

// shrink evicts least recently used entries until at most max remain, and
// returns them.
func (l *lru[K, V]) shrink() []V {
	var out []V
	for len(l.items) > l.max && l.tail != nil {
		old := l.tail
		l.unlink(old)
		delete(l.items, old.key)
		out = append(out, old.value)
	}
	return out
}

// len reports the number of entries.
func (l *lru[K, V]) len() int { return len(l.items) }

// each calls f for every entry, most recently used first, without changing
// recency.
func (l *lru[K, V]) each(f func(K, V)) {
	for n := l.head; n != nil; n = n.next {
		f(n.key, n.value)
	}
}

func (l *lru[K, V]) moveToFront(n *lruNode[K, V]) {
	if l.head == n {
		return
	}
	l.unlink(n)
	l.pushFront(n)
}

func (l *lru[K, V]) pushFront(n *lruNode[K, V]) {
	n.prev = nil
	n.next = l.head
	if l.head != nil {
		l.head.prev = n
	}
	l.head = n
	if l.tail == nil {
		l.tail = n
	}
}

func (l *lru[K, V]) unlink(n *lruNode[K, V]) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		l.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		l.tail = n.prev
	}
	n.prev, n.next = nil, nil
}
