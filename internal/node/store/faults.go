package store

import (
	"context"
	"io"
	"time"

	"github.com/deoss/deoss/internal/types"
)

// Fault wrappers embed a Store and change one behaviour, for tests of the
// store's callers (the HTTP API, the reporter, the gateway's handling of bad
// nodes).

// Slow delays every Put and Open by Delay (or until the context ends).
type Slow struct {
	Store
	Delay time.Duration
}

func (s Slow) wait(ctx context.Context) error {
	select {
	case <-time.After(s.Delay):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Put implements Store.
func (s Slow) Put(ctx context.Context, ref Ref, w Want, r io.Reader) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	return s.Store.Put(ctx, ref, w, r)
}

// Open implements Store.
func (s Slow) Open(ctx context.Context, h types.Hash) (Fragment, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return s.Store.Open(ctx, h)
}

// Corrupt serves every fragment with one bit flipped in its first byte, as bit
// rot would.
type Corrupt struct{ Store }

// Open implements Store.
func (c Corrupt) Open(ctx context.Context, h types.Hash) (Fragment, error) {
	f, err := c.Store.Open(ctx, h)
	if err != nil {
		return nil, err
	}
	return corruptFragment{f}, nil
}

type corruptFragment struct{ Fragment }

func (c corruptFragment) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.Fragment.ReadAt(p, off)
	if off == 0 && n > 0 {
		p[0] ^= 0x01
	}
	return n, err
}

// Full refuses every Put that needs new space with ErrFull.
type Full struct{ Store }

// Put implements Store.
func (f Full) Put(ctx context.Context, ref Ref, w Want, r io.Reader) error {
	if _, err := f.Store.Open(ctx, w.Hash); err == nil {
		return f.Store.Put(ctx, ref, w, r) // already stored: no new space
	}
	return ErrFull
}
