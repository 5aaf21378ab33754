package node

import (
	"encoding/binary"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deoss/deoss/internal/types"
)

// Declared remembers, for each file the node took fragments of, the height
// of its declaration on chain. The collector releases a file the chain
// does not know only once the chain has reached that height: an RPC that
// lags (or a validator restarted empty) says "not found" for files it has
// not seen yet, and must not make the node delete them.
type Declared interface {
	Height(fid types.FID) (int64, bool)
	Forget(fid types.FID) error
}

// declaredDB keeps the heights in HOME/declared.db (bbolt), written before
// the first fragment of a file is stored.
type declaredDB struct {
	db *bolt.DB

	mu   sync.Mutex
	seen map[types.FID]int64 // noted already (skips a write per fragment)
}

var bucketDeclared = []byte("declared")

func openDeclared(path string) (*declaredDB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketDeclared)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	return &declaredDB{db: db, seen: map[types.FID]int64{}}, nil
}

func (d *declaredDB) Close() error { return d.db.Close() }

// Note records fid's declaration height (durably, before the node stores a
// fragment of it).
func (d *declaredDB) Note(fid types.FID, height int64) error {
	d.mu.Lock()
	if d.seen[fid] == height {
		d.mu.Unlock()
		return nil
	}
	d.mu.Unlock()
	err := d.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeclared).Put(fid[:], binary.BigEndian.AppendUint64(nil, uint64(height)))
	})
	if err == nil {
		d.mu.Lock()
		d.seen[fid] = height
		d.mu.Unlock()
	}
	return err
}

// Height implements Declared.
func (d *declaredDB) Height(fid types.FID) (h int64, ok bool) {
	_ = d.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketDeclared).Get(fid[:]); len(v) == 8 {
			h, ok = int64(binary.BigEndian.Uint64(v)), true
		}
		return nil
	})
	return h, ok
}

// Forget implements Declared.
func (d *declaredDB) Forget(fid types.FID) error {
	d.mu.Lock()
	delete(d.seen, fid)
	d.mu.Unlock()
	return d.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketDeclared).Delete(fid[:]) })
}
