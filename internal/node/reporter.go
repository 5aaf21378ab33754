package node

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node/store"
	"github.com/deoss/deoss/internal/types"
)

// NodeChain is everything the node's background work asks of the chain.
type NodeChain interface {
	Chain
	Report(ctx context.Context, fid types.FID, column uint8) error
	Columns(ctx context.Context, node types.Address) ([]ledger.NodeColumn, error)
	Follow(ctx context.Context, from int64, fn func(chain.BlockEvents) error) error
	Height(ctx context.Context) (int64, error)
}

type column struct {
	fid types.FID
	col uint8
}

// reporter reports columns the node holds completely. Kick it with a column
// after storing one of its fragments; it checks completeness and submits the
// report, retrying with backoff until it is in a block or the order is gone.
type reporter struct {
	chain NodeChain
	store store.Store
	self  types.Address
	log   *slog.Logger

	mu      sync.Mutex
	pending map[column]bool // queued or in progress
	queue   chan column
}

func newReporter(ch NodeChain, st store.Store, self types.Address, log *slog.Logger) *reporter {
	return &reporter{chain: ch, store: st, self: self, log: log, pending: map[column]bool{}, queue: make(chan column, 4096)}
}

// kick queues a column for a completeness check (dropped when already queued).
func (r *reporter) kick(fid types.FID, col uint8) {
	c := column{fid, col}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending[c] {
		return
	}
	select {
	case r.queue <- c:
		r.pending[c] = true
	default: // full: the start-up scan and later kicks catch up
	}
}

// run works the queue with a few workers until ctx ends.
func (r *reporter) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case c := <-r.queue:
					r.handle(ctx, c)
					r.mu.Lock()
					delete(r.pending, c)
					r.mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
}

// handle reports c if the node holds all of it, retrying transient failures.
func (r *reporter) handle(ctx context.Context, c column) {
	backoff := 200 * time.Millisecond
	for {
		done, err := r.try(ctx, c)
		if done || ctx.Err() != nil {
			return
		}
		r.log.Warn("report failed; retrying", "fid", c.fid, "column", c.col, "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func (r *reporter) try(ctx context.Context, c column) (done bool, err error) {
	f, err := r.chain.File(ctx, c.fid)
	if err != nil {
		return final(err), err
	}
	cl := f.Columns[c.col]
	if cl.Node != r.self || cl.Reported || f.State != ledger.FilePending {
		return true, nil
	}
	segs, err := r.store.Segments(ctx, c.fid, c.col)
	if err != nil {
		return false, err
	}
	if len(segs) < len(f.Layout.Segments) {
		return true, nil // not complete: a later store kicks again
	}
	if err := r.chain.Report(ctx, c.fid, c.col); err != nil {
		return final(err), err
	}
	r.log.Info("column reported", "fid", c.fid, "column", c.col)
	return true, nil
}
