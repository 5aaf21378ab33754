package codec

import (
	"context"
	"sync"

	"github.com/deoss/deoss/internal/types"
)

// Buffers are reused across calls: on the virtual machines we run on, the first
// touch of fresh memory costs more than hashing it, so a steady-state encoder
// allocates nothing per segment. sync.Pool lets idle buffers go back to the
// runtime after a couple of garbage collections.
var (
	segmentBufs  = bufPool{size: types.SegmentSize}
	fragmentBufs = bufPool{size: types.FragmentSize}
	parityBufs   = bufPool{size: types.ParityShards * types.FragmentSize}
)

type bufPool struct {
	size int
	p    sync.Pool
}

func (bp *bufPool) get() []byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, bp.size)
}

func (bp *bufPool) put(b []byte) {
	if cap(b) < bp.size {
		return
	}
	b = b[:bp.size]
	bp.p.Put(&b)
}

// limiter bounds how many buffers one call holds at once, which is what bounds
// a call's memory. It is per call so that one slow reader cannot starve others.
type limiter chan struct{}

func newLimiter(n int) limiter { return make(limiter, n) }

func (l limiter) acquire(ctx context.Context) error {
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l limiter) release() { <-l }
