package store

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/deoss/deoss/internal/types"
)

// Errors of stores. Callers match them with errors.Is.
var (
	ErrNotFound     = errors.New("fragment not found")
	ErrHashMismatch = errors.New("fragment bytes do not match the hash")
	ErrTooLarge     = errors.New("fragment larger than the limit")
	ErrFull         = errors.New("store is full")
	ErrConflict     = errors.New("ref already holds another fragment")
	ErrSize         = errors.New("fragment is not the size its layout gives")
)

// Ref names one use of a fragment: segment Segment of column Column of the
// file FID.
type Ref struct {
	FID     types.FID
	Column  uint8
	Segment uint32
}

func (r Ref) String() string { return fmt.Sprintf("%s/%d/%d", r.FID, r.Column, r.Segment) }

// Want is what Put checks the bytes against.
type Want struct {
	Hash types.Hash
	// Format is the fragment's format version: v1 checks SHA-256; v2 checks
	// BLAKE3 and keeps the fragment's Bao outboard beside it, built in the
	// same pass, so the node can serve verified slices.
	Format uint8
	// Size is the exact length the layout gives; 0 accepts any length up to
	// the store's limit.
	Size int64
}

// V1 is the Want of a v1 fragment of any size: SHA-256 only.
func V1(h types.Hash) Want { return Want{Hash: h, Format: types.FormatV1} }

// Fragment is an open stored fragment.
type Fragment interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Store keeps fragments. All methods are safe for concurrent use.
type Store interface {
	// Put stores the fragment w.Hash for ref, reading its bytes from r,
	// which must hash to it (with w.Format's hash), be w.Size long when that
	// is set, and hold at most the store's size limit. It returns only once
	// the fragment (and a v2 fragment's outboard) and the ref are durable;
	// before that, nothing of it is visible, whatever crashes. Putting the
	// same hash for the same ref again succeeds. If the store already holds
	// the fragment for another ref, r is not read. On any error nothing is
	// stored.
	Put(ctx context.Context, ref Ref, w Want, r io.Reader) error
	// Open returns a stored fragment, or ErrNotFound.
	Open(ctx context.Context, hash types.Hash) (Fragment, error)
	// Outboard returns a v2 fragment's Bao outboard, or ErrNotFound (also
	// for v1 fragments, which have none).
	Outboard(ctx context.Context, hash types.Hash) ([]byte, error)
	// Lookup returns the hash ref holds, or ErrNotFound.
	Lookup(ctx context.Context, ref Ref) (types.Hash, error)
	// Segments lists the segments of a column that the store holds, in order.
	Segments(ctx context.Context, fid types.FID, column uint8) ([]uint32, error)
	// Release drops ref (ErrNotFound if it is not held). A fragment is
	// deleted when its last ref goes.
	Release(ctx context.Context, ref Ref) error
	// Files lists the files the store holds a ref of (for reconciling with
	// the chain).
	Files(ctx context.Context) ([]types.FID, error)
	// Usage returns the bytes stored (each fragment counted once) and the
	// capacity.
	Usage() (used, capacity uint64)
	Close() error
}
