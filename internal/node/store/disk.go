package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/fsutil"
	"github.com/deoss/deoss/internal/types"
)

var (
	bucketRefs   = []byte("refs")   // fid(32) column(1) segment(4) -> hash(32)
	bucketCounts = []byte("counts") // hash(32) -> refs(4) size(8)
)

// Disk is the Store of a storage node: each fragment is a file named by its
// hash under root/frags/<2 hex>/<2 hex>/, and root/index.db (bbolt) holds the
// refs and reference counts. A fragment is written to root/tmp, fsynced,
// renamed into place and its folder fsynced before the index records it, and
// the index commit (fsynced) is what makes Put return: after a crash at any
// point, a fragment is either fully there and referenced or not there.
type Disk struct {
	root     string
	maxSize  int64
	capacity uint64
	db       *bolt.DB

	locks [64]sync.Mutex // per hash stripe: a Put and a Release of one hash never interleave
	seed  maphash.Seed

	mu       sync.Mutex
	used     uint64 // bytes of indexed fragments
	reserved uint64 // bytes being written
}

// OpenDisk opens (or creates) a store under root. Leftovers of interrupted
// writes are removed: temporary files, and fragment files the index never
// recorded (they were never acknowledged).
func OpenDisk(root string, capacity uint64, maxSize int64) (*Disk, error) {
	for _, d := range []string{filepath.Join(root, "frags"), filepath.Join(root, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := clearDir(filepath.Join(root, "tmp")); err != nil {
		return nil, err
	}
	db, err := fsutil.OpenDB(filepath.Join(root, "index.db"), bucketRefs, bucketCounts)
	if err != nil {
		return nil, err
	}
	d := &Disk{root: root, maxSize: maxSize, capacity: capacity, db: db, seed: maphash.MakeSeed()}
	if err := d.reconcile(); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

// reconcile removes fragment files the index does not know and adds up the
// space the indexed ones take.
func (d *Disk) reconcile() error {
	known := map[types.Hash]bool{}
	err := d.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCounts).ForEach(func(k, v []byte) error {
			var h types.Hash
			copy(h[:], k)
			known[h] = true
			d.used += binary.BigEndian.Uint64(v[4:])
			return nil
		})
	})
	if err != nil {
		return err
	}
	return filepath.WalkDir(filepath.Join(d.root, "frags"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		if h, perr := types.ParseHash(strings.TrimSuffix(e.Name(), outboardExt)); perr != nil || !known[h] {
			return os.Remove(p)
		}
		return nil
	})
}

func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func (d *Disk) lock(h types.Hash) *sync.Mutex {
	return &d.locks[maphash.Bytes(d.seed, h[:])%uint64(len(d.locks))]
}

func (d *Disk) path(h types.Hash) string {
	s := h.String()
	return filepath.Join(d.root, "frags", s[:2], s[2:4], s)
}

func refKey(r Ref) []byte {
	k := make([]byte, 37)
	copy(k, r.FID[:])
	k[32] = r.Column
	binary.BigEndian.PutUint32(k[33:], r.Segment)
	return k
}

// Put implements Store.
func (d *Disk) Put(ctx context.Context, ref Ref, w Want, r io.Reader) error {
	hash := w.Hash
	l := d.lock(hash)
	l.Lock()
	defer l.Unlock()
	stored := false
	err := d.db.Update(func(tx *bolt.Tx) error {
		refs, counts := tx.Bucket(bucketRefs), tx.Bucket(bucketCounts)
		if held := refs.Get(refKey(ref)); held != nil {
			if !bytes.Equal(held, hash[:]) {
				return fmt.Errorf("%w: %s holds %x", ErrConflict, ref, held)
			}
			stored = true
			return nil
		}
		c := counts.Get(hash[:])
		if c == nil {
			return nil // the bytes are needed: written below
		}
		stored = true
		return link(refs, counts, ref, hash, binary.BigEndian.Uint64(c[4:]))
	})
	if err != nil || stored {
		return err
	}

	if err := d.reserve(); err != nil {
		return err
	}
	defer d.unreserve()
	size, err := d.write(ctx, w, r)
	if err != nil {
		return err
	}
	err = d.db.Update(func(tx *bolt.Tx) error {
		return link(tx.Bucket(bucketRefs), tx.Bucket(bucketCounts), ref, hash, uint64(size))
	})
	if err != nil {
		// Never acknowledged: do not keep it.
		os.Remove(d.path(hash))
		os.Remove(d.path(hash) + outboardExt)
		return err
	}
	d.mu.Lock()
	d.used += uint64(size)
	d.mu.Unlock()
	return nil
}

// link records ref -> hash and counts it.
func link(refs, counts *bolt.Bucket, ref Ref, hash types.Hash, size uint64) error {
	var v [12]byte
	if c := counts.Get(hash[:]); c != nil {
		copy(v[:], c)
	} else {
		binary.BigEndian.PutUint64(v[4:], size)
	}
	binary.BigEndian.PutUint32(v[:4], binary.BigEndian.Uint32(v[:4])+1)
	if err := counts.Put(hash[:], v[:]); err != nil {
		return err
	}
	return refs.Put(refKey(ref), hash[:])
}

// reserve claims room for one fragment of the maximum size.
func (d *Disk) reserve() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.used+d.reserved+uint64(d.maxSize) > d.capacity {
		return fmt.Errorf("%w: %d of %d bytes used", ErrFull, d.used+d.reserved, d.capacity)
	}
	d.reserved += uint64(d.maxSize)
	return nil
}

func (d *Disk) unreserve() {
	d.mu.Lock()
	d.reserved -= uint64(d.maxSize)
	d.mu.Unlock()
}

// outboardExt names a v2 fragment's outboard file, beside the fragment.
const outboardExt = ".obao"

// write puts the verified bytes of w.Hash durably in place and returns the
// bytes they take (a v2 fragment's outboard included). A v2 fragment's
// outboard is built while the bytes are copied (one pass) and is renamed into
// place before the fragment, both before the index knows either.
func (d *Disk) write(ctx context.Context, w Want, r io.Reader) (int64, error) {
	f, err := os.CreateTemp(filepath.Join(d.root, "tmp"), "frag-*")
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly once renamed
	src := io.LimitReader(fsutil.ContextReader(ctx, r), d.maxSize+1)
	var n int64
	var ob []byte
	if w.Format == types.FormatV2 {
		n, ob, err = copyWithOutboard(f, src, w)
	} else {
		n, err = copyWithSHA256(f, src, w.Hash)
	}
	switch {
	case n > d.maxSize:
		f.Close()
		return 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, d.maxSize)
	case err != nil:
		f.Close()
		return 0, err
	case w.Size > 0 && n != w.Size:
		f.Close()
		return 0, fmt.Errorf("%w: %d bytes, want %d", ErrSize, n, w.Size)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	final := d.path(w.Hash)
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return 0, err
	}
	if ob != nil {
		if err := fsutil.WriteFileAtomic(final+outboardExt, ob, 0o600); err != nil {
			return 0, err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return 0, err
	}
	return n + int64(len(ob)), fsutil.SyncDir(filepath.Dir(final))
}

func copyWithSHA256(dst io.Writer, src io.Reader, want types.Hash) (int64, error) {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(dst, h), src)
	if err == nil && types.Hash(h.Sum(nil)) != want {
		err = ErrHashMismatch
	}
	return n, err
}

// copyWithOutboard copies a v2 fragment of w.Size bytes and builds its
// outboard on the way; a byte more or fewer is ErrSize.
func copyWithOutboard(dst io.Writer, src io.Reader, w Want) (int64, []byte, error) {
	if w.Size <= 0 {
		return 0, nil, fmt.Errorf("%w: a v2 fragment needs its size", ErrSize)
	}
	ob, root, err := codec.BuildOutboard(io.TeeReader(src, dst), w.Size)
	if errors.Is(err, codec.ErrSliceShort) {
		return 0, nil, fmt.Errorf("%w: fewer than %d bytes", ErrSize, w.Size)
	}
	if err != nil {
		return 0, nil, err
	}
	var one [1]byte
	if m, _ := io.ReadFull(src, one[:]); m > 0 {
		return w.Size + 1, nil, fmt.Errorf("%w: more than %d bytes", ErrSize, w.Size)
	}
	if root != w.Hash {
		return w.Size, nil, ErrHashMismatch
	}
	return w.Size, ob, nil
}

// Outboard implements Store.
func (d *Disk) Outboard(_ context.Context, hash types.Hash) ([]byte, error) {
	if !d.known(hash) {
		return nil, ErrNotFound
	}
	b, err := os.ReadFile(d.path(hash) + outboardExt)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	return b, err
}

func (d *Disk) known(hash types.Hash) bool {
	var known bool
	_ = d.db.View(func(tx *bolt.Tx) error {
		known = tx.Bucket(bucketCounts).Get(hash[:]) != nil
		return nil
	})
	return known
}

// Open implements Store. Only fragments the index records are served.
func (d *Disk) Open(_ context.Context, hash types.Hash) (Fragment, error) {
	if !d.known(hash) {
		return nil, ErrNotFound
	}
	f, err := os.Open(d.path(hash))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return diskFragment{f, st.Size()}, nil
}

type diskFragment struct {
	*os.File
	size int64
}

func (f diskFragment) Size() int64 { return f.size }

// OSFile is the open file, so the HTTP server can send it with sendfile.
func (f diskFragment) OSFile() *os.File { return f.File }

// Lookup implements Store.
func (d *Disk) Lookup(_ context.Context, ref Ref) (types.Hash, error) {
	var h types.Hash
	err := d.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRefs).Get(refKey(ref))
		if v == nil {
			return ErrNotFound
		}
		copy(h[:], v)
		return nil
	})
	return h, err
}

// Segments implements Store.
func (d *Disk) Segments(_ context.Context, fid types.FID, column uint8) ([]uint32, error) {
	prefix := append(append([]byte(nil), fid[:]...), column)
	var out []uint32
	err := d.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRefs).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			out = append(out, binary.BigEndian.Uint32(k[33:]))
		}
		return nil
	})
	return out, err
}

// Release implements Store.
func (d *Disk) Release(ctx context.Context, ref Ref) error {
	hash, err := d.Lookup(ctx, ref)
	if err != nil {
		return err
	}
	l := d.lock(hash)
	l.Lock()
	defer l.Unlock()
	var freed uint64
	err = d.db.Update(func(tx *bolt.Tx) error {
		refs, counts := tx.Bucket(bucketRefs), tx.Bucket(bucketCounts)
		if v := refs.Get(refKey(ref)); v == nil || !bytes.Equal(v, hash[:]) {
			return ErrNotFound // released meanwhile
		}
		if err := refs.Delete(refKey(ref)); err != nil {
			return err
		}
		var v [12]byte
		copy(v[:], counts.Get(hash[:]))
		n := binary.BigEndian.Uint32(v[:4]) - 1
		if n > 0 {
			binary.BigEndian.PutUint32(v[:4], n)
			return counts.Put(hash[:], v[:])
		}
		freed = binary.BigEndian.Uint64(v[4:])
		return counts.Delete(hash[:])
	})
	if err != nil || freed == 0 {
		return err
	}
	d.mu.Lock()
	d.used -= freed
	d.mu.Unlock()
	// The index no longer knows it; a crash before this removal leaves a
	// file that the next OpenDisk removes.
	if err := os.Remove(d.path(hash) + outboardExt); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Remove(d.path(hash)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Files implements Store.
func (d *Disk) Files(context.Context) ([]types.FID, error) {
	var out []types.FID
	err := d.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRefs).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			var f types.FID
			copy(f[:], k[:32])
			if len(out) == 0 || out[len(out)-1] != f {
				out = append(out, f)
			}
		}
		return nil
	})
	return out, err
}

// Usage implements Store.
func (d *Disk) Usage() (used, capacity uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.used, d.capacity
}

// Close implements Store.
func (d *Disk) Close() error { return d.db.Close() }

// Root returns the folder the store lives in.
func (d *Disk) Root() string { return d.root }
