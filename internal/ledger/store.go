package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sort"
	"strings"
)

// KV is the committed state the ledger reads: a sorted key-value map.
// internal/chain keeps it in bbolt; tests keep it in a MemKV.
type KV interface {
	// Get returns the value of key, or nil when there is none.
	Get(key []byte) []byte
	// Iterate calls fn for every key with the prefix, in ascending key order,
	// until fn returns false.
	Iterate(prefix []byte, fn func(key, value []byte) bool)
}

// SeekKV is a KV that starts an iteration at a key (the chain's bbolt
// cursor does): a page of a long list then costs its own entries, not all
// those before it. A KV without it is walked from the prefix.
type SeekKV interface {
	KV
	// IterateFrom is Iterate over the keys with the prefix that are >= from.
	IterateFrom(prefix, from []byte, fn func(key, value []byte) bool)
}

// Change is one write of a block: Value nil deletes Key.
type Change struct {
	Key   []byte
	Value []byte
}

// overlay holds a block's writes over the committed KV.
type overlay struct {
	base   KV
	writes map[string][]byte // nil value: deleted
}

func newOverlay(base KV) *overlay { return &overlay{base: base, writes: map[string][]byte{}} }

func (o *overlay) get(key string) []byte {
	if v, ok := o.writes[key]; ok {
		return v
	}
	return o.base.Get([]byte(key))
}

func (o *overlay) set(key string, v []byte) { o.writes[key] = v }

func (o *overlay) del(key string) { o.writes[key] = nil }

// iterate visits keys with the prefix in ascending order, the block's writes
// merged over the committed state. It streams: when fn returns false nothing
// more is read, so a scan that stops early (expiring due orders) costs what it
// visits, not the whole prefix.
func (o *overlay) iterate(prefix string, fn func(key string, value []byte) bool) {
	o.iterateFrom(prefix, prefix, fn)
}

// iterateFrom is iterate over the keys >= from.
func (o *overlay) iterateFrom(prefix, from string, fn func(key string, value []byte) bool) {
	if from < prefix {
		from = prefix
	}
	var mine []string // this block's writes under the prefix from from, sorted
	for k := range o.writes {
		if strings.HasPrefix(k, prefix) && k >= from {
			mine = append(mine, k)
		}
	}
	sort.Strings(mine)
	stopped := false
	// emit sends own writes up to (not including) limit; "" means all.
	emit := func(limit string, all bool) {
		for len(mine) > 0 && !stopped && (all || mine[0] < limit) {
			k := mine[0]
			mine = mine[1:]
			if v := o.writes[k]; v != nil && !fn(k, v) {
				stopped = true
			}
		}
	}
	base := func(fn func(k, v []byte) bool) { o.base.Iterate([]byte(prefix), fn) }
	if sk, ok := o.base.(SeekKV); ok {
		base = func(fn func(k, v []byte) bool) { sk.IterateFrom([]byte(prefix), []byte(from), fn) }
	}
	base(func(bk, bv []byte) bool {
		k := string(bk)
		if k < from {
			return true // a KV without a seek walks up to from
		}
		emit(k, false)
		if stopped {
			return false
		}
		if len(mine) > 0 && mine[0] == k {
			mine = mine[1:] // this block's write replaces (or deletes) it
			if v := o.writes[k]; v != nil && !fn(k, v) {
				stopped = true
			}
			return !stopped
		}
		if !fn(k, bv) {
			stopped = true
		}
		return !stopped
	})
	emit("", true)
}

// changes returns the block's writes sorted by key.
func (o *overlay) changes() []Change {
	out := make([]Change, 0, len(o.writes))
	for k, v := range o.writes {
		out = append(out, Change{Key: []byte(k), Value: v})
	}
	slices.SortFunc(out, func(a, b Change) int { return bytes.Compare(a.Key, b.Key) })
	return out
}

// chainHash is the next app hash: SHA-256 over the previous one and the
// block's sorted changes. Validators that applied the same blocks agree on it;
// a block with no changes keeps the previous hash, so an idle chain makes no
// new state.
func chainHash(prev []byte, changes []Change) []byte {
	if len(changes) == 0 {
		return prev
	}
	h := sha256.New()
	h.Write([]byte("deoss/apphash/v1"))
	h.Write(prev)
	var n [8]byte
	for _, c := range changes {
		binary.BigEndian.PutUint64(n[:], uint64(len(c.Key)))
		h.Write(n[:])
		h.Write(c.Key)
		if c.Value == nil {
			h.Write([]byte{0})
			continue
		}
		h.Write([]byte{1})
		binary.BigEndian.PutUint64(n[:], uint64(len(c.Value)))
		h.Write(n[:])
		h.Write(c.Value)
	}
	return h.Sum(nil)
}

// MemKV is an in-memory KV for tests and tools.
type MemKV struct{ m map[string][]byte }

// NewMemKV returns an empty MemKV.
func NewMemKV() *MemKV { return &MemKV{m: map[string][]byte{}} }

// Get implements KV.
func (s *MemKV) Get(key []byte) []byte { return s.m[string(key)] }

// Iterate implements KV.
func (s *MemKV) Iterate(prefix []byte, fn func(key, value []byte) bool) {
	keys := make([]string, 0)
	for k := range s.m {
		if strings.HasPrefix(k, string(prefix)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !fn([]byte(k), s.m[k]) {
			return
		}
	}
}

// Apply writes committed changes.
func (s *MemKV) Apply(changes []Change) {
	for _, c := range changes {
		if c.Value == nil {
			delete(s.m, string(c.Key))
		} else {
			s.m[string(c.Key)] = c.Value
		}
	}
}
