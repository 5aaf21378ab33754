package chain

import (
	"bytes"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"

	"github.com/deoss/deoss/internal/fsutil"
	"github.com/deoss/deoss/internal/ledger"
)

var (
	bucketState = []byte("state")
	bucketMeta  = []byte("meta")
	keyHeight   = []byte("height")
	keyAppHash  = []byte("app_hash")
)

// store is the ledger's committed state in a bbolt file.
type store struct{ db *bolt.DB }

func openStore(path string) (*store, error) {
	db, err := fsutil.OpenDB(path, bucketState, bucketMeta)
	if err != nil {
		return nil, err
	}
	return &store{db: db}, nil
}

func (s *store) Close() error { return s.db.Close() }

// Get implements ledger.KV. The value is copied: bbolt's memory is valid only
// inside its transaction.
func (s *store) Get(key []byte) []byte {
	var v []byte
	_ = s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketState).Get(key); b != nil {
			v = bytes.Clone(b)
		}
		return nil
	})
	return v
}

// Iterate implements ledger.KV.
func (s *store) Iterate(prefix []byte, fn func(key, value []byte) bool) {
	s.IterateFrom(prefix, prefix, fn)
}

// IterateFrom implements ledger.SeekKV: the cursor starts at from.
func (s *store) IterateFrom(prefix, from []byte, fn func(key, value []byte) bool) {
	if bytes.Compare(from, prefix) < 0 {
		from = prefix
	}
	_ = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketState).Cursor()
		for k, v := c.Seek(from); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if !fn(bytes.Clone(k), bytes.Clone(v)) {
				break
			}
		}
		return nil
	})
}

// commit writes a block's changes together with its height and app hash, in
// one fsynced transaction.
func (s *store) commit(changes []ledger.Change, height int64, appHash []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		st := tx.Bucket(bucketState)
		for _, c := range changes {
			var err error
			if c.Value == nil {
				err = st.Delete(c.Key)
			} else {
				err = st.Put(c.Key, c.Value)
			}
			if err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		var h [8]byte
		binary.BigEndian.PutUint64(h[:], uint64(height))
		if err := meta.Put(keyHeight, h[:]); err != nil {
			return err
		}
		return meta.Put(keyAppHash, appHash)
	})
}

// last returns the height and app hash of the last committed block.
func (s *store) last() (height int64, appHash []byte) {
	_ = s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if h := meta.Get(keyHeight); len(h) == 8 {
			height = int64(binary.BigEndian.Uint64(h))
		}
		appHash = bytes.Clone(meta.Get(keyAppHash))
		return nil
	})
	return height, appHash
}
