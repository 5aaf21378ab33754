package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/types"
)

// Memory is a Store in memory, for tests of the store's callers.
type Memory struct {
	maxSize  int64
	capacity uint64

	mu    sync.Mutex
	frags map[types.Hash][]byte
	obs   map[types.Hash][]byte
	count map[types.Hash]int
	refs  map[Ref]types.Hash
	used  uint64
}

// NewMemory returns an empty Memory store holding at most capacity bytes of
// fragments of at most maxSize bytes each.
func NewMemory(capacity uint64, maxSize int64) *Memory {
	return &Memory{maxSize: maxSize, capacity: capacity, frags: map[types.Hash][]byte{}, obs: map[types.Hash][]byte{},
		count: map[types.Hash]int{}, refs: map[Ref]types.Hash{}}
}

// Put implements Store.
func (m *Memory) Put(ctx context.Context, ref Ref, w Want, r io.Reader) error {
	hash := w.Hash
	if done, err := m.addRef(ref, hash); done || err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(r, m.maxSize+1))
	if err != nil {
		return err
	}
	if int64(len(b)) > m.maxSize {
		return fmt.Errorf("%w: more than %d bytes", ErrTooLarge, m.maxSize)
	}
	if w.Size > 0 && int64(len(b)) != w.Size || w.Format == types.FormatV2 && w.Size <= 0 {
		return fmt.Errorf("%w: %d bytes, want %d", ErrSize, len(b), w.Size)
	}
	var ob []byte
	if w.Format == types.FormatV2 {
		var root types.Hash
		if ob, root = codec.Outboard(b); root != hash {
			return ErrHashMismatch
		}
	} else if types.Hash(sha256.Sum256(b)) != hash {
		return ErrHashMismatch
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.frags[hash]; !ok {
		if m.used+uint64(len(b)+len(ob)) > m.capacity {
			return ErrFull
		}
		m.frags[hash] = b
		if ob != nil {
			m.obs[hash] = ob
		}
		m.used += uint64(len(b) + len(ob))
	}
	return m.link(ref, hash)
}

// Outboard implements Store.
func (m *Memory) Outboard(_ context.Context, hash types.Hash) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ob, ok := m.obs[hash]
	if !ok {
		return nil, ErrNotFound
	}
	return ob, nil
}

// addRef handles a ref that is already held, or a fragment already stored:
// done reports that Put has nothing more to do.
func (m *Memory) addRef(ref Ref, hash types.Hash) (done bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h, ok := m.refs[ref]; ok {
		if h != hash {
			return true, fmt.Errorf("%w: %s holds %s", ErrConflict, ref, h)
		}
		return true, nil
	}
	if _, ok := m.frags[hash]; ok {
		return true, m.link(ref, hash)
	}
	return false, nil
}

func (m *Memory) link(ref Ref, hash types.Hash) error {
	if h, ok := m.refs[ref]; ok {
		if h != hash {
			return fmt.Errorf("%w: %s holds %s", ErrConflict, ref, h)
		}
		return nil
	}
	m.refs[ref] = hash
	m.count[hash]++
	return nil
}

// Open implements Store.
func (m *Memory) Open(_ context.Context, hash types.Hash) (Fragment, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.frags[hash]
	if !ok {
		return nil, ErrNotFound
	}
	return memFragment{bytes.NewReader(b)}, nil
}

type memFragment struct{ *bytes.Reader }

func (memFragment) Close() error { return nil }

// Lookup implements Store.
func (m *Memory) Lookup(_ context.Context, ref Ref) (types.Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.refs[ref]
	if !ok {
		return h, ErrNotFound
	}
	return h, nil
}

// Segments implements Store.
func (m *Memory) Segments(_ context.Context, fid types.FID, column uint8) ([]uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []uint32
	for r := range m.refs {
		if r.FID == fid && r.Column == column {
			out = append(out, r.Segment)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Release implements Store.
func (m *Memory) Release(_ context.Context, ref Ref) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.refs[ref]
	if !ok {
		return ErrNotFound
	}
	delete(m.refs, ref)
	if m.count[h]--; m.count[h] == 0 {
		delete(m.count, h)
		m.used -= uint64(len(m.frags[h]) + len(m.obs[h]))
		delete(m.frags, h)
		delete(m.obs, h)
	}
	return nil
}

// Files implements Store.
func (m *Memory) Files(context.Context) ([]types.FID, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[types.FID]bool{}
	var out []types.FID
	for r := range m.refs {
		if !seen[r.FID] {
			seen[r.FID] = true
			out = append(out, r.FID)
		}
	}
	slices.SortFunc(out, func(a, b types.FID) int { return bytes.Compare(a[:], b[:]) })
	return out, nil
}

// Usage implements Store.
func (m *Memory) Usage() (used, capacity uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.used, m.capacity
}

// Close implements Store.
func (m *Memory) Close() error { return nil }
