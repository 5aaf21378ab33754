// Package pipeline is the gateway's durable per-file state machine: every
// file the gateway accepted has a record that moves through
// processed -> declared -> distributing -> stored -> cleaned, kept in bbolt so
// that a restarted gateway resumes each file where it stood. A delete moves a
// record to deleting from any state; the distributor then deletes it on
// chain and forgets it. Records are added once a file is encoded
// (processed); the distributor moves them on (Transition, which refuses a
// move from a state the record has left meanwhile), and a Note says why one
// is waiting.
//
// Cleaned records leave the active set for a bounded history, so the work
// of Pending follows the files in flight, not every file ever uploaded.
// Changed tells waiters (the distributor, a delete) that something moved.
package pipeline

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deoss/deoss/internal/fsutil"
	"github.com/deoss/deoss/internal/types"
)

// States of a file in the gateway.
const (
	Processed    = "processed"    // encoded into the work area
	Declared     = "declared"     // storage order on chain
	Distributing = "distributing" // columns being pushed to nodes
	Stored       = "stored"       // every column reported on chain
	Cleaned      = "cleaned"      // work area freed
	Deleting     = "deleting"     // the owner deleted it; the distributor removes it
	// Failed: the file could never be declared (its territory is full,
	// expired or gone) and the gateway gave up on it, its copy freed; the
	// note says why. Like Cleaned, it joins the history.
	Failed = "failed"
	// Buffered: not a file of the queue but a small object in the pack
	// buffer (package pack), as answered for its upload.
	Buffered = "buffered"
)

// ErrNotFound is returned for a FID the queue does not hold.
var ErrNotFound = errors.New("file not in the gateway's queue")

// ErrMoved is returned by Transition when the record is no longer in the
// state the move starts from (a delete came in meanwhile, say).
var ErrMoved = errors.New("the record moved on meanwhile")

// HistorySize is how many cleaned records are kept for metadata answers.
const HistorySize = 1024

// Record is one file in the pipeline.
type Record struct {
	FID       types.FID     `json:"fid"`
	Owner     types.Address `json:"owner"`
	Name      string        `json:"name"`
	Territory string        `json:"territory"`
	Size      uint64        `json:"size"`
	State     string        `json:"state"`
	Updated   time.Time     `json:"updated"`
	// Note says why the file is not advancing (for example, too few nodes
	// to place it); empty while all is well.
	Note string `json:"note,omitempty"`
	// Private is declared with the file (ledger.DeclareFile.Private).
	Private bool `json:"private,omitempty"`
}

// Queue is the records in bbolt.
type Queue struct {
	db *bolt.DB

	mu      sync.Mutex
	changed chan struct{} // closed (and replaced) by every write
}

var (
	bucketFiles   = []byte("files")       // active records: key(fid, owner) -> Record
	bucketHistory = []byte("history")     // cleaned records: key(fid, owner) -> Record
	bucketOrder   = []byte("history-seq") // sequence -> key, oldest first, to bound the history
)

// Open opens (or creates) root/pipeline.db. Cleaned records that an older
// version kept among the active ones move to the history.
func Open(root string) (*Queue, error) {
	db, err := fsutil.OpenDB(filepath.Join(root, "pipeline.db"), bucketFiles, bucketHistory, bucketOrder, bucketKeyOps, bucketKeyIdx)
	if err != nil {
		return nil, err
	}
	q := &Queue{db: db, changed: make(chan struct{})}
	err = db.Update(func(tx *bolt.Tx) error {
		var old [][]byte
		err := tx.Bucket(bucketFiles).ForEach(func(k, v []byte) error {
			var r Record
			if json.Unmarshal(v, &r) == nil && r.State == Cleaned {
				old = append(old, k)
			}
			return nil
		})
		for _, k := range old {
			if err := retire(tx, k); err != nil {
				return err
			}
		}
		return err
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return q, nil
}

// Changed returns a channel closed at the next change of any record.
func (q *Queue) Changed() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.changed
}

func (q *Queue) notify() {
	q.mu.Lock()
	close(q.changed)
	q.changed = make(chan struct{})
	q.mu.Unlock()
}

// write runs a write transaction and tells the waiters.
func (q *Queue) write(f func(tx *bolt.Tx) error) error {
	err := q.db.Update(f)
	if err == nil {
		q.notify()
	}
	return err
}

// retire moves the record at k from the active set to the history, dropping
// the oldest history entry past HistorySize.
func retire(tx *bolt.Tx, k []byte) error {
	files, hist, order := tx.Bucket(bucketFiles), tx.Bucket(bucketHistory), tx.Bucket(bucketOrder)
	v := files.Get(k)
	if v == nil {
		return nil
	}
	if err := hist.Put(k, v); err != nil {
		return err
	}
	if err := files.Delete(k); err != nil {
		return err
	}
	seq, _ := order.NextSequence()
	if err := order.Put(binary.BigEndian.AppendUint64(nil, seq), k); err != nil {
		return err
	}
	// Sequences are contiguous: what is HistorySize or more behind the new
	// one goes.
	c := order.Cursor()
	for sk, hk := c.First(); sk != nil && binary.BigEndian.Uint64(sk)+HistorySize <= seq; sk, hk = c.First() {
		hk = append([]byte(nil), hk...)
		if err := order.Delete(sk); err != nil {
			return err
		}
		if files.Get(hk) == nil { // not uploaded again meanwhile
			if err := hist.Delete(hk); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close closes the queue.
func (q *Queue) Close() error { return q.db.Close() }

// key is the file and owner: two owners uploading the same bytes are two
// records (each needs its own order or ownership on chain).
func key(fid types.FID, owner types.Address) []byte {
	return append(append([]byte(nil), fid[:]...), owner[:]...)
}

// Add records a processed file; adding one already recorded keeps the record
// (a client that retries complete gets the same answer).
func (q *Queue) Add(r Record) (*Record, error) {
	var out *Record
	err := q.write(func(tx *bolt.Tx) error {
		var err error
		out, err = add(tx, r)
		return err
	})
	return out, err
}

func add(tx *bolt.Tx, r Record) (*Record, error) {
	b := tx.Bucket(bucketFiles)
	k := key(r.FID, r.Owner)
	if v := b.Get(k); v != nil {
		var out Record
		return &out, json.Unmarshal(v, &out)
	}
	// New, or uploaded again after its columns were freed (its history
	// entry stays until it ages out): the new copy must be freed too.
	r.State = Processed
	v, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return &r, b.Put(k, v)
}

// Get returns the record of a file of an owner, active or in the history.
func (q *Queue) Get(fid types.FID, owner types.Address) (*Record, error) {
	var r Record
	err := q.db.View(func(tx *bolt.Tx) error {
		k := key(fid, owner)
		v := tx.Bucket(bucketFiles).Get(k)
		if v == nil {
			v = tx.Bucket(bucketHistory).Get(k)
		}
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &r)
	})
	return &r, err
}

// Holds reports whether any owner's record of fid is active (its columns
// are still needed in the work area).
func (q *Queue) Holds(fid types.FID) (bool, error) {
	held := false
	err := q.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketFiles).Cursor().Seek(fid[:])
		held = k != nil && bytes.HasPrefix(k, fid[:])
		return nil
	})
	return held, err
}

// Records lists every owner's record of fid: the active ones, then those in
// the history.
func (q *Queue) Records(fid types.FID) ([]Record, error) {
	var out []Record
	err := q.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketFiles, bucketHistory} {
			c := tx.Bucket(b).Cursor()
			for k, v := c.Seek(fid[:]); k != nil && bytes.HasPrefix(k, fid[:]); k, v = c.Next() {
				var r Record
				if err := json.Unmarshal(v, &r); err != nil {
					return err
				}
				out = append(out, r)
			}
		}
		return nil
	})
	return out, err
}

// Remove forgets an owner's record (the distributor finished its delete).
func (q *Queue) Remove(fid types.FID, owner types.Address) error {
	return q.write(func(tx *bolt.Tx) error {
		k := key(fid, owner)
		if err := tx.Bucket(bucketHistory).Delete(k); err != nil {
			return err
		}
		return tx.Bucket(bucketFiles).Delete(k)
	})
}

// Pending lists the active records, for the distributor to advance.
func (q *Queue) Pending() ([]Record, error) {
	var out []Record
	err := q.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFiles).ForEach(func(_, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("pipeline record: %w", err)
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// Transition moves a record from state from to state to; ErrMoved if it is
// no longer in from. A record that reaches Cleaned joins the history.
func (q *Queue) Transition(fid types.FID, owner types.Address, from, to string, at time.Time) error {
	return q.update(fid, owner, func(r *Record) error {
		if r.State != from {
			return fmt.Errorf("%s %s -> %s: it is %s: %w", fid, from, to, r.State, ErrMoved)
		}
		r.State, r.Updated, r.Note = to, at, ""
		return nil
	})
}

// Delete moves an owner's record to Deleting, from any state (a cleaned
// record comes back from the history for it), so that the distributor
// deletes the file in order with whatever it was doing for it.
func (q *Queue) Delete(fid types.FID, owner types.Address, at time.Time) error {
	return q.write(func(tx *bolt.Tx) error {
		k := key(fid, owner)
		files := tx.Bucket(bucketFiles)
		v := files.Get(k)
		if v == nil {
			v = tx.Bucket(bucketHistory).Get(k)
		}
		if v == nil {
			return ErrNotFound
		}
		var r Record
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		r.State, r.Updated, r.Note = Deleting, at, ""
		nv, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketHistory).Delete(k); err != nil {
			return err
		}
		return files.Put(k, nv)
	})
}

// SetNote records why a file is not advancing ("" when it is again).
func (q *Queue) SetNote(fid types.FID, owner types.Address, note string) error {
	return q.update(fid, owner, func(r *Record) error { r.Note = note; return nil })
}

func (q *Queue) update(fid types.FID, owner types.Address, f func(*Record) error) error {
	return q.write(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFiles)
		k := key(fid, owner)
		v := b.Get(k)
		if v == nil {
			return ErrNotFound
		}
		var r Record
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		if err := f(&r); err != nil {
			return err
		}
		nv, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if err := b.Put(k, nv); err != nil {
			return err
		}
		if r.State == Cleaned || r.State == Failed {
			return retire(tx, k)
		}
		return nil
	})
}

// Fail moves a record from state from to Failed, saying why.
func (q *Queue) Fail(fid types.FID, owner types.Address, from string, at time.Time, why string) error {
	return q.update(fid, owner, func(r *Record) error {
		if r.State != from {
			return fmt.Errorf("%s %s -> %s: it is %s: %w", fid, from, Failed, r.State, ErrMoved)
		}
		r.State, r.Updated, r.Note = Failed, at, why
		return nil
	})
}
