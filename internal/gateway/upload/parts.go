package upload

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deoss/deoss/internal/fsutil"
	"github.com/deoss/deoss/internal/types"
)

// Parts sessions (S3 multipart): numbered parts of any size in
// root/<id>/p<number>, their records in the parts bucket; a part sent again
// replaces the one before, atomically (rename, then the record, under the
// store's lock).
var bucketParts = []byte("parts") // id/number -> Part

// Part is one stored part.
type Part struct {
	Number   int       `json:"number"`
	Size     int64     `json:"size"`
	MD5      string    `json:"md5"` // hex: the part's S3 ETag
	Modified time.Time `json:"modified"`
}

// MaxPartNumber is the highest part number, as S3.
const MaxPartNumber = 10_000

func partFile(number int) string { return "p" + strconv.Itoa(number) }

// PutPart stores part number of a parts session from r, which must be
// size bytes; r's read errors (a digest that does not match) store
// nothing.
func (s *Sessions) PutPart(ctx context.Context, id string, owner types.Address, number int, size int64, r io.Reader) (*Part, error) {
	sess, err := s.get(id, owner)
	if err != nil {
		return nil, err
	}
	if !sess.Spec.Parts {
		return nil, fmt.Errorf("%w: session %s takes chunks, not parts", ErrBadSpec, id)
	}
	if number < 1 || number > MaxPartNumber {
		return nil, fmt.Errorf("%w: part %d: 1 to %d", ErrIndex, number, MaxPartNumber)
	}
	f, err := os.CreateTemp(s.dir(id), ".part-*")
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	h := md5.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(fsutil.ContextReader(ctx, r), size+1))
	if err == nil && n != size {
		err = fmt.Errorf("%w: part %d is %d bytes, %d were declared", ErrChunkSize, number, n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	p := &Part{Number: number, Size: size, MD5: hex.EncodeToString(h.Sum(nil)), Modified: s.opts.Now().UTC()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Rename(tmp, filepath.Join(s.dir(id), partFile(number))); err != nil {
		return nil, err
	}
	if err := fsutil.SyncDir(s.dir(id)); err != nil {
		return nil, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketSessions).Get([]byte(id))
		if v == nil {
			return ErrNotFound // aborted meanwhile
		}
		var cur Session
		if err := json.Unmarshal(v, &cur); err != nil {
			return err
		}
		pk := chunkKey(id, number)
		if old := tx.Bucket(bucketParts).Get(pk); old != nil {
			var op Part
			if err := json.Unmarshal(old, &op); err == nil {
				cur.PartBytes -= op.Size
			}
		}
		cur.PartBytes += size
		pv, _ := json.Marshal(p)
		sv, _ := json.Marshal(&cur)
		if err := tx.Bucket(bucketParts).Put(pk, pv); err != nil {
			return err
		}
		return tx.Bucket(bucketSessions).Put([]byte(id), sv)
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Parts returns a parts session and its parts in number order.
func (s *Sessions) Parts(id string, owner types.Address) (*Session, []Part, error) {
	sess, err := s.get(id, owner)
	if err != nil {
		return nil, nil, err
	}
	var out []Part
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketParts).Cursor()
		prefix := []byte(id + "/")
		for k, v := c.Seek(prefix); k != nil && len(k) > len(prefix) && string(k[:len(prefix)]) == string(prefix); k, v = c.Next() {
			var p Part
			if err := json.Unmarshal(v, &p); err != nil {
				return err
			}
			out = append(out, p)
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return sess, out, err
}

// Sessions lists owner's live parts sessions (ListMultipartUploads).
func (s *Sessions) PartsSessions(owner types.Address) ([]Session, error) {
	var out []Session
	now := s.opts.Now()
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).ForEach(func(_, v []byte) error {
			var sess Session
			if json.Unmarshal(v, &sess) == nil && sess.Spec.Owner == owner && sess.Spec.Parts && now.Before(sess.Expires) {
				out = append(out, sess)
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, err
}

// PartsReader streams the given parts, in the order given, one file open
// at a time.
func (s *Sessions) PartsReader(id string, owner types.Address, numbers []int) (io.ReadCloser, error) {
	if _, err := s.get(id, owner); err != nil {
		return nil, err
	}
	return &partsReader{dir: s.dir(id), numbers: numbers}, nil
}

type partsReader struct {
	dir     string
	numbers []int
	f       *os.File
}

func (p *partsReader) Read(b []byte) (int, error) {
	for {
		if p.f == nil {
			if len(p.numbers) == 0 {
				return 0, io.EOF
			}
			f, err := os.Open(filepath.Join(p.dir, partFile(p.numbers[0])))
			if err != nil {
				return 0, err
			}
			p.f, p.numbers = f, p.numbers[1:]
		}
		n, err := p.f.Read(b)
		if err == io.EOF {
			p.f.Close()
			p.f = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (p *partsReader) Close() error {
	if p.f != nil {
		return p.f.Close()
	}
	return nil
}
