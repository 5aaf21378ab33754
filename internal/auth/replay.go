package auth

import (
	"container/heap"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deoss/deoss/internal/types"
)

// ReplayLimits bound a replay cache. Zero values take the defaults.
type ReplayLimits struct {
	// Capacity bounds the nonces held in all (default 1,000,000).
	Capacity int
	// PerAccount and PerClient bound the nonces one signer and one client
	// address hold (default 50,000 each: a sustained 160 requests/s over a
	// five-minute lifetime), so one busy or hostile account sheds its own
	// load, not everyone's.
	PerAccount, PerClient int
}

func (l ReplayLimits) withDefaults() ReplayLimits {
	if l.Capacity == 0 {
		l.Capacity = 1_000_000
	}
	if l.PerAccount == 0 {
		l.PerAccount = 50_000
	}
	if l.PerClient == 0 {
		l.PerClient = 50_000
	}
	return l
}

// ReplayCache remembers spent nonces until they expire. Open it on a file to
// keep them across restarts: a nonce is durable before the request it
// belongs to runs, so a request seen before a crash is refused after it.
type ReplayCache struct {
	mu        sync.Mutex
	lim       ReplayLimits
	seen      map[string]struct{}
	byExpiry  expiryHeap
	accounts  map[types.Address]int
	clients   map[string]int
	db        *bolt.DB
	lastPrune time.Time
}

var spentBucket = []byte("spent")

// NewReplayCache returns a cache held in memory only.
func NewReplayCache(lim ReplayLimits) *ReplayCache {
	return &ReplayCache{lim: lim.withDefaults(), seen: map[string]struct{}{}, accounts: map[types.Address]int{}, clients: map[string]int{}}
}

// OpenReplayCache returns a cache kept in the bbolt file at path, with the
// unexpired nonces of earlier runs loaded.
func OpenReplayCache(path string, lim ReplayLimits, now time.Time) (*ReplayCache, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("replay cache %s: %w", path, err)
	}
	// Group commit: concurrent requests share one fsync; a lone one waits
	// at most a millisecond for company.
	db.MaxBatchDelay = time.Millisecond
	c := NewReplayCache(lim)
	c.db = db
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(spentBucket)
		if err != nil {
			return err
		}
		cur := b.Cursor()
		for k, v := cur.First(); k != nil; k, v = cur.Next() {
			exp, acc, nonce, ok := parseSpentKey(k)
			if !ok || !exp.After(now) {
				if err := cur.Delete(); err != nil {
					return err
				}
				continue
			}
			c.remember(acc, string(v), nonce, exp)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("replay cache %s: %w", path, err)
	}
	c.lastPrune = now
	return c, nil
}

// Close closes the file, if any.
func (c *ReplayCache) Close() error {
	if c.db == nil {
		return nil
	}
	return c.db.Close()
}

// Len is how many nonces are held.
func (c *ReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// spentKey orders the file by expiry, so pruning reads only what expired.
func spentKey(exp time.Time, acc types.Address, nonce string) []byte {
	k := make([]byte, 8, 8+len(acc)+16)
	binary.BigEndian.PutUint64(k, uint64(exp.Unix()))
	k = append(k, acc[:]...)
	n, _ := hex.DecodeString(nonce)
	return append(k, n...)
}

func parseSpentKey(k []byte) (time.Time, types.Address, string, bool) {
	var acc types.Address
	if len(k) != 8+len(acc)+16 {
		return time.Time{}, acc, "", false
	}
	copy(acc[:], k[8:])
	return time.Unix(int64(binary.BigEndian.Uint64(k)), 0), acc, hex.EncodeToString(k[8+len(acc):]), true
}

func seenKey(acc types.Address, nonce string) string { return string(acc[:]) + nonce }

// Add spends acc's nonce, good until expiry, for a request from client. It
// fails with ErrReplayed for a nonce already spent, with ErrTooMany when the
// account or the client holds its share, and with ErrReplayFull when the
// whole cache is full (refusing is safe; forgetting one early would allow a
// replay). With a file, it returns once the nonce is durable.
func (c *ReplayCache) Add(acc types.Address, client, nonce string, expiry, now time.Time) error {
	c.mu.Lock()
	c.expire(now)
	switch {
	case c.has(acc, nonce):
		c.mu.Unlock()
		return ErrReplayed
	case c.accounts[acc] >= c.lim.PerAccount || c.clients[client] >= c.lim.PerClient:
		c.mu.Unlock()
		return ErrTooMany
	case len(c.seen) >= c.lim.Capacity:
		c.mu.Unlock()
		return ErrReplayFull
	}
	// Held in memory first: a replay racing this write is refused.
	c.remember(acc, client, nonce, expiry)
	prune := c.db != nil && now.Sub(c.lastPrune) > 30*time.Second
	if prune {
		c.lastPrune = now
	}
	c.mu.Unlock()
	if c.db == nil {
		return nil
	}
	err := c.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(spentBucket)
		if prune {
			cur := b.Cursor()
			for k, _ := cur.First(); k != nil && binary.BigEndian.Uint64(k) <= uint64(now.Unix()); k, _ = cur.Next() {
				if err := cur.Delete(); err != nil {
					return err
				}
			}
		}
		return b.Put(spentKey(expiry, acc, nonce), []byte(client))
	})
	if err != nil {
		// The nonce stays spent in memory; the request fails, and its
		// signer signs again.
		return fmt.Errorf("replay cache: %w", err)
	}
	return nil
}

func (c *ReplayCache) has(acc types.Address, nonce string) bool {
	_, ok := c.seen[seenKey(acc, nonce)]
	return ok
}

func (c *ReplayCache) remember(acc types.Address, client, nonce string, expiry time.Time) {
	c.seen[seenKey(acc, nonce)] = struct{}{}
	c.accounts[acc]++
	c.clients[client]++
	heap.Push(&c.byExpiry, expiring{acc: acc, client: client, nonce: nonce, at: expiry})
}

func (c *ReplayCache) expire(now time.Time) {
	for len(c.byExpiry) > 0 && !c.byExpiry[0].at.After(now) {
		e := heap.Pop(&c.byExpiry).(expiring)
		delete(c.seen, seenKey(e.acc, e.nonce))
		if c.accounts[e.acc]--; c.accounts[e.acc] <= 0 {
			delete(c.accounts, e.acc)
		}
		if c.clients[e.client]--; c.clients[e.client] <= 0 {
			delete(c.clients, e.client)
		}
	}
}

type expiring struct {
	acc    types.Address
	client string
	nonce  string
	at     time.Time
}

type expiryHeap []expiring

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiring)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
