package limit

import (
	"sync"
	"time"
)

// PerKey bounds the holders of each key (a client address, an account):
// at most Max at once per key, so that one client's requests cannot take
// every slot behind it.
type PerKey struct {
	mu  sync.Mutex
	max int
	n   map[string]int
}

// NewPerKey allows max holders per key.
func NewPerKey(max int) *PerKey { return &PerKey{max: max, n: map[string]int{}} }

// TryAcquire takes one of key's places, or reports false when key holds all
// of its own.
func (p *PerKey) TryAcquire(key string) (release func(), ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[key] >= p.max {
		return nil, false
	}
	p.n[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			p.mu.Lock()
			if p.n[key]--; p.n[key] <= 0 {
				delete(p.n, key)
			}
			p.mu.Unlock()
		})
	}, true
}

// Penalty backs off a key after failures: the first Free failures in a row
// cost nothing (a mistyped secret), after the k-th failure past them the
// key is refused for Base·2^(k-1), up to Max. A success forgives. It
// holds at most a bounded number of keys (the oldest penalties are dropped
// first when full, never a live one before an expired one).
type Penalty struct {
	Base, Max time.Duration
	Free      int
	Now       func() time.Time

	mu sync.Mutex
	m  map[string]penalty
}

type penalty struct {
	failures int
	until    time.Time
}

// penaltyKeys bounds the keys held.
const penaltyKeys = 100_000

func (p *Penalty) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Wait is how long key is still refused (0: not refused).
func (p *Penalty) Wait(key string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := p.m[key].until.Sub(p.now()); d > 0 {
		return d
	}
	return 0
}

// Fail counts a failure of key and returns how long it is refused now.
func (p *Penalty) Fail(key string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.m == nil {
		p.m = map[string]penalty{}
	}
	if len(p.m) >= penaltyKeys {
		for k, v := range p.m {
			if !v.until.After(now.Add(-p.Max)) {
				delete(p.m, k) // long expired: its count is stale anyway
			}
		}
	}
	e := p.m[key]
	e.failures++
	if e.failures <= p.Free {
		p.m[key] = e
		return 0
	}
	d := p.Base << min(e.failures-p.Free-1, 30)
	if d > p.Max || d <= 0 {
		d = p.Max
	}
	e.until = now.Add(d)
	if len(p.m) < penaltyKeys || p.m[key].failures > 0 {
		p.m[key] = e
	}
	return d
}

// Succeed forgives key.
func (p *Penalty) Succeed(key string) {
	p.mu.Lock()
	delete(p.m, key)
	p.mu.Unlock()
}
