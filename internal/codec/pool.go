package codec

import (
	"context"
	"runtime"
	"sync"
	"time"

	"github.com/deoss/deoss/internal/types"
)

// Buffers are reused across calls. On the virtual machines we run on, the
// first touch of fresh memory costs more than hashing it, and sync.Pool drops
// idle buffers at every garbage collection, which with 32 MiB buffers means
// reallocating (and briefly holding twice the memory) all the time. So each
// size has a small free list that survives collections; buffers idle for
// longer than poolIdle are released.
var (
	segmentBufs  = newBufPool(types.SegmentSize, 2*runtime.GOMAXPROCS(0)+2)
	parityBufs   = newBufPool(types.ParityShards*types.FragmentSize, runtime.GOMAXPROCS(0))
	fragmentBufs = newBufPool(types.FragmentSize, 4*runtime.GOMAXPROCS(0))
)

const poolIdle = 30 * time.Second

type idleBuf struct {
	b     []byte
	since time.Time
}

type bufPool struct {
	size int
	keep int // idle buffers kept at most

	mu    sync.Mutex
	free  []idleBuf // most recently used last
	timer *time.Timer
}

func newBufPool(size, keep int) *bufPool { return &bufPool{size: size, keep: keep} }

func (bp *bufPool) get() []byte {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	if n := len(bp.free); n > 0 {
		b := bp.free[n-1].b
		bp.free[n-1] = idleBuf{}
		bp.free = bp.free[:n-1]
		return b
	}
	return make([]byte, bp.size)
}

func (bp *bufPool) put(b []byte) {
	if cap(b) < bp.size {
		return
	}
	bp.mu.Lock()
	defer bp.mu.Unlock()
	if len(bp.free) >= bp.keep {
		return
	}
	bp.free = append(bp.free, idleBuf{b: b[:bp.size], since: time.Now()})
	if bp.timer == nil {
		bp.timer = time.AfterFunc(poolIdle, bp.trim)
	}
}

// trim releases buffers idle for poolIdle and runs again while any are left.
func (bp *bufPool) trim() {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	cut := time.Now().Add(-poolIdle)
	n := 0
	for _, ib := range bp.free {
		if ib.since.After(cut) {
			bp.free[n] = ib
			n++
		}
	}
	clear(bp.free[n:])
	bp.free = bp.free[:n]
	if n > 0 {
		bp.timer.Reset(poolIdle)
	} else {
		bp.timer = nil
	}
}

// drain releases every idle buffer (tests measure memory from a clean start).
func (bp *bufPool) drain() {
	bp.mu.Lock()
	defer bp.mu.Unlock()
	clear(bp.free)
	bp.free = bp.free[:0]
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
