// Package pipeline is the gateway's durable per-file state machine: every
// file the gateway accepted has a record that moves through
// processed -> declared -> distributing -> stored -> cleaned, kept in bbolt so
// that a restarted gateway resumes each file where it stood. Records are
// added once a file is encoded (processed); the gateway's Distributor moves
// them on, and a Note says why one is waiting.
package pipeline

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
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
)

// ErrNotFound is returned for a FID the queue does not hold.
var ErrNotFound = errors.New("file not in the gateway's queue")

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
}

// Queue is the records in bbolt.
type Queue struct{ db *bolt.DB }

var bucketFiles = []byte("files")

// Open opens (or creates) root/pipeline.db.
func Open(root string) (*Queue, error) {
	db, err := fsutil.OpenDB(filepath.Join(root, "pipeline.db"), bucketFiles)
	if err != nil {
		return nil, err
	}
	return &Queue{db: db}, nil
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
	var out Record
	err := q.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFiles)
		k := key(r.FID, r.Owner)
		if v := b.Get(k); v != nil {
			if err := json.Unmarshal(v, &out); err != nil || out.State != Cleaned {
				return err
			}
			// Uploaded again after its columns were freed: the new copy in
			// the work area must be freed too.
		}
		r.State = Processed
		out = r
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return b.Put(k, v)
	})
	return &out, err
}

// Get returns the record of a file of an owner.
func (q *Queue) Get(fid types.FID, owner types.Address) (*Record, error) {
	var r Record
	err := q.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketFiles).Get(key(fid, owner))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &r)
	})
	return &r, err
}

// Holds reports whether any owner's record of fid is not yet cleaned (its
// columns are still needed in the work area).
func (q *Queue) Holds(fid types.FID) (bool, error) {
	recs, err := q.Records(fid)
	for _, r := range recs {
		if r.State != Cleaned {
			return true, err
		}
	}
	return false, err
}

// Records lists every owner's record of fid.
func (q *Queue) Records(fid types.FID) ([]Record, error) {
	var out []Record
	err := q.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketFiles).Cursor()
		for k, v := c.Seek(fid[:]); k != nil && bytes.HasPrefix(k, fid[:]); k, v = c.Next() {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Remove forgets an owner's record (the owner deleted the file).
func (q *Queue) Remove(fid types.FID, owner types.Address) error {
	return q.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketFiles).Delete(key(fid, owner)) })
}

// Pending lists the records not yet cleaned, for the runner to resume.
func (q *Queue) Pending() ([]Record, error) {
	var out []Record
	err := q.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFiles).ForEach(func(_, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("pipeline record: %w", err)
			}
			if r.State != Cleaned {
				out = append(out, r)
			}
			return nil
		})
	})
	return out, err
}

// SetState moves a record to a state.
func (q *Queue) SetState(fid types.FID, owner types.Address, state string, at time.Time) error {
	return q.update(fid, owner, func(r *Record) { r.State, r.Updated, r.Note = state, at, "" })
}

// SetNote records why a file is not advancing ("" when it is again).
func (q *Queue) SetNote(fid types.FID, owner types.Address, note string) error {
	return q.update(fid, owner, func(r *Record) { r.Note = note })
}

func (q *Queue) update(fid types.FID, owner types.Address, f func(*Record)) error {
	return q.db.Update(func(tx *bolt.Tx) error {
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
		f(&r)
		nv, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return b.Put(k, nv)
	})
}
