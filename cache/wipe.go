package cache

import "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

// wipeLocked zeroes the value buffers of an evicted secret, so that they do
// not linger in memory until the garbage collector reuses them. A reader
// still holding the entry finds no value and fetches it again.
func (e *secretEntry) wipeLocked() {
	e.versions.each(func(_ string, v *versionEntry) { v.wipeLocked() })
}

// wipe zeroes an evicted version's value buffer.
func (v *versionEntry) wipe() { v.wipeLocked() }

// wipeLocked zeroes the binary value the entry holds and forgets it. Only
// what the cache owns can be zeroed: a SecretString is immutable in Go, and
// what a Hook stores is the Hook's to wipe.
func (v *versionEntry) wipeLocked() {
	if out, ok := v.stored.(*secretsmanager.GetSecretValueOutput); ok && out != nil {
		clear(out.SecretBinary)
	}
	clear(v.val.bin)
	v.stored, v.val, v.hasValue = nil, secretValue{}, false
}

// wipeAll zeroes every value the cache holds (Close). Entries are locked
// one at a time, never under c.mu, as evict does.
func (c *Cache) wipeAll() {
	c.mu.Lock()
	entries := make([]*secretEntry, 0, c.secrets.len())
	c.secrets.each(func(_ string, e *secretEntry) { entries = append(entries, e) })
	c.mu.Unlock()
	for _, e := range entries {
		e.mu.Lock()
		e.wipeLocked()
		e.mu.Unlock()
	}
}
