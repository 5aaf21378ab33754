// Package ttlcache is a small map whose entries expire: the one cache of
// chain answers (authorizations, registrations, file records, peer probes)
// that the gateway and the node keep for a few seconds.
package ttlcache

import (
	"sync"
	"time"
)

// Cache maps keys to values for TTL each, holding at most Max entries (past
// it, expired entries go first, then everything). Safe for concurrent use.
type Cache[K comparable, V any] struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu sync.Mutex
	m  map[K]entry[V]
}

type entry[V any] struct {
	v  V
	at time.Time
}

// New makes a cache of entries that live ttl, at most max of them (0: no
// bound).
func New[K comparable, V any](ttl time.Duration, max int) *Cache[K, V] {
	return &Cache[K, V]{ttl: ttl, max: max, now: time.Now, m: map[K]entry[V]{}}
}

// WithClock replaces the clock (tests).
func (c *Cache[K, V]) WithClock(now func() time.Time) *Cache[K, V] { c.now = now; return c }

// Get returns the value of k if it is there and fresh.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || c.now().Sub(e.at) >= c.ttl {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put sets k to v, fresh from now.
func (c *Cache[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.max > 0 && len(c.m) >= c.max {
		for key, e := range c.m {
			if now.Sub(e.at) >= c.ttl {
				delete(c.m, key)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m)
		}
	}
	c.m[k] = entry[V]{v, now}
}

// Delete forgets k.
func (c *Cache[K, V]) Delete(k K) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}
