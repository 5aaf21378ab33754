package pipeline

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// The key journal: S3 key changes this gateway acknowledged and has not
// yet seen on chain, in the order they were made. A put waits for its
// file's declaration; later changes to the same key wait behind it, so the
// chain ends where the client's last write left the key. The journal lives
// beside the records so that an upload's record and its key are one write:
// a crash leaves both or neither, and no file is declared with no key.
var (
	bucketKeyOps = []byte("keyops")     // seq -> KeyOp
	bucketKeyIdx = []byte("keyops-key") // owner, bucket '/' key, seq -> nothing
)

// KeyOp is one journalled key change.
type KeyOp struct {
	Seq    uint64        `json:"seq"`
	Owner  types.Address `json:"owner"`
	Bucket string        `json:"bucket"`
	Key    string        `json:"key"`
	// Delete removes the key; otherwise it is put to name FID.
	Delete  bool            `json:"delete,omitempty"`
	FID     types.FID       `json:"fid"`
	Size    uint64          `json:"size"`
	ETag    string          `json:"etag,omitempty"`
	Headers []ledger.Header `json:"headers,omitempty"`
	Time    time.Time       `json:"time"`
}

// Object is the key as the op leaves it (for reads and listings).
func (op *KeyOp) Object() ledger.Object {
	return ledger.Object{Key: op.Key, FID: op.FID, Size: op.Size, ETag: op.ETag, Modified: op.Time.Unix(), Headers: op.Headers}
}

func keyIdxPrefix(owner types.Address, bucket, key string) []byte {
	return append(append(append([]byte(nil), owner[:]...), bucket+"/"...), key...)
}

func putKeyOp(tx *bolt.Tx, op *KeyOp) error {
	ops := tx.Bucket(bucketKeyOps)
	seq, err := ops.NextSequence()
	if err != nil {
		return err
	}
	op.Seq = seq
	v, err := json.Marshal(op)
	if err != nil {
		return err
	}
	sk := binary.BigEndian.AppendUint64(nil, seq)
	if err := ops.Put(sk, v); err != nil {
		return err
	}
	return tx.Bucket(bucketKeyIdx).Put(append(keyIdxPrefix(op.Owner, op.Bucket, op.Key), sk...), nil)
}

// AddWithKey is Add that journals op (its FID and size set from r) in the
// same transaction.
func (q *Queue) AddWithKey(r Record, op *KeyOp) (*Record, error) {
	var out Record
	err := q.write(func(tx *bolt.Tx) error {
		rec, err := add(tx, r)
		if err != nil {
			return err
		}
		out = *rec
		op.FID, op.Size = r.FID, r.Size
		return putKeyOp(tx, op)
	})
	return &out, err
}

// JournalKeys journals key changes that need no upload (deletes, a copy)
// in one transaction.
func (q *Queue) JournalKeys(ops ...*KeyOp) error {
	return q.write(func(tx *bolt.Tx) error {
		for _, op := range ops {
			if err := putKeyOp(tx, op); err != nil {
				return err
			}
		}
		return nil
	})
}

// KeyOps lists the journal, oldest first.
func (q *Queue) KeyOps() ([]KeyOp, error) {
	var out []KeyOp
	err := q.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketKeyOps).ForEach(func(_, v []byte) error {
			var op KeyOp
			if err := json.Unmarshal(v, &op); err != nil {
				return err
			}
			out = append(out, op)
			return nil
		})
	})
	return out, err
}

// KeyDone drops an op the chain has taken (or refused for good).
func (q *Queue) KeyDone(op *KeyOp) error {
	return q.write(func(tx *bolt.Tx) error {
		sk := binary.BigEndian.AppendUint64(nil, op.Seq)
		if err := tx.Bucket(bucketKeyOps).Delete(sk); err != nil {
			return err
		}
		return tx.Bucket(bucketKeyIdx).Delete(append(keyIdxPrefix(op.Owner, op.Bucket, op.Key), sk...))
	})
}

// LatestKey returns the newest journalled change of a key, if any.
func (q *Queue) LatestKey(owner types.Address, bucket, key string) (*KeyOp, bool, error) {
	var out *KeyOp
	err := q.db.View(func(tx *bolt.Tx) error {
		p := keyIdxPrefix(owner, bucket, key)
		var last []byte
		c := tx.Bucket(bucketKeyIdx).Cursor()
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			if len(k) == len(p)+8 { // this key, not a longer one
				last = k[len(p):]
			}
		}
		if last == nil {
			return nil
		}
		v := tx.Bucket(bucketKeyOps).Get(last)
		if v == nil {
			return nil
		}
		out = new(KeyOp)
		return json.Unmarshal(v, out)
	})
	return out, out != nil, err
}

// LatestKeys returns the newest journalled change of every key of a bucket
// with the prefix, in key order.
func (q *Queue) LatestKeys(owner types.Address, bucket, prefix string) ([]KeyOp, error) {
	latest := map[string]KeyOp{}
	err := q.db.View(func(tx *bolt.Tx) error {
		p := keyIdxPrefix(owner, bucket, prefix)
		ops := tx.Bucket(bucketKeyOps)
		c := tx.Bucket(bucketKeyIdx).Cursor()
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
			v := ops.Get(k[len(k)-8:])
			if v == nil {
				continue
			}
			var op KeyOp
			if err := json.Unmarshal(v, &op); err != nil {
				return err
			}
			if old, ok := latest[op.Key]; !ok || old.Seq < op.Seq {
				latest[op.Key] = op
			}
		}
		return nil
	})
	out := make([]KeyOp, 0, len(latest))
	for _, op := range latest {
		out = append(out, op)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, err
}
