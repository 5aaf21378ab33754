package node

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/deoss/deoss/internal/backoff"
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
	// FileAt returns a file's record from a state that has committed
	// height h at least (uncached), or ledger.ErrNotFound.
	FileAt(ctx context.Context, fid types.FID, h int64) (*ledger.File, error)
	// Node returns a registered node, or ledger.ErrNotFound.
	Node(ctx context.Context, a types.Address) (*ledger.Node, error)
}

type column struct {
	fid types.FID
	col uint8
}

// reporter reports columns the node holds completely. Kick it with a column
// after storing one of its fragments; it checks completeness and submits the
// report. A kick is never dropped: the set of columns to look at is bounded
// by the columns the node holds, not by a channel. A failed attempt (the
// chain down, say) is tried again after a back-off that doubles, without
// holding a worker, up to maxAttempts; then the column is left to the sweep,
// which every sweepEvery asks the chain for this node's unreported columns
// and kicks them.
type reporter struct {
	chain NodeChain
	store store.Store
	self  types.Address
	log   *slog.Logger

	backoff     time.Duration // the first retry's wait
	maxAttempts int
	sweepEvery  time.Duration

	mu      sync.Mutex
	queued  map[column]bool // waiting, in progress, or to be retried
	ready   []column        // to look at now, oldest first
	retries []retryAt       // to look at later
	signal  chan struct{}   // something became ready
}

type retryAt struct {
	c       column
	at      time.Time
	attempt int
}

func newReporter(ch NodeChain, st store.Store, self types.Address, log *slog.Logger) *reporter {
	return &reporter{chain: ch, store: st, self: self, log: log, backoff: 200 * time.Millisecond, maxAttempts: 10,
		sweepEvery: time.Minute, queued: map[column]bool{}, signal: make(chan struct{}, 1)}
}

// kick queues a column for a completeness check (nothing when it is queued
// already).
func (r *reporter) kick(fid types.FID, col uint8) {
	c := column{fid, col}
	r.mu.Lock()
	if r.queued[c] {
		r.mu.Unlock()
		return
	}
	r.queued[c] = true
	r.ready = append(r.ready, c)
	r.mu.Unlock()
	r.wake()
}

func (r *reporter) wake() {
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// next takes a due retry, else the oldest ready column; ok is false when
// none is there, with the time the next retry falls due (zero if none).
// Taking one while more wait wakes another worker.
func (r *reporter) next(now time.Time) (c column, attempt int, ok bool, due time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() {
		if ok && len(r.ready)+len(r.retries) > 0 {
			r.wake()
		}
	}()
	for i, rt := range r.retries {
		if !now.Before(rt.at) {
			r.retries = append(r.retries[:i], r.retries[i+1:]...)
			return rt.c, rt.attempt, true, time.Time{}
		}
	}
	if len(r.ready) > 0 {
		c = r.ready[0]
		r.ready = r.ready[1:]
		return c, 0, true, time.Time{}
	}
	for _, rt := range r.retries {
		if due.IsZero() || rt.at.Before(due) {
			due = rt.at
		}
	}
	return column{}, 0, false, due
}

// run works the queue with a few workers, and sweeps, until ctx ends.
func (r *reporter) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				c, attempt, ok, due := r.next(time.Now())
				if !ok {
					wait := time.Hour
					if !due.IsZero() {
						wait = max(time.Until(due), time.Millisecond)
					}
					t := time.NewTimer(wait)
					select {
					case <-ctx.Done():
						t.Stop()
						return
					case <-r.signal:
					case <-t.C:
					}
					t.Stop()
					continue
				}
				r.handle(ctx, c, attempt)
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(r.sweepEvery):
			}
			r.sweep(ctx)
		}
	})
	wg.Wait()
}

// handle makes one attempt for c and books its outcome.
func (r *reporter) handle(ctx context.Context, c column, attempt int) {
	done, err := r.try(ctx, c)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case done || ctx.Err() != nil:
		delete(r.queued, c)
	case attempt+1 >= r.maxAttempts:
		r.log.Warn("report failed; left to the sweep", "fid", c.fid, "column", c.col, "attempts", attempt+1, "err", err)
		delete(r.queued, c)
	default:
		wait := backoff.Policy{Base: r.backoff, Max: 30 * time.Second}.Delay(attempt)
		r.log.Warn("report failed; retrying", "fid", c.fid, "column", c.col, "err", err, "in", wait)
		r.retries = append(r.retries, retryAt{c: c, at: time.Now().Add(wait), attempt: attempt + 1})
		r.wake() // a sleeping worker must learn of the new due time
	}
}

// sweep kicks every column the chain assigns to this node and has not seen
// reported: what failed too often, or what a lost kick would have missed.
func (r *reporter) sweep(ctx context.Context) {
	cols, err := r.chain.Columns(ctx, r.self)
	if err != nil {
		r.log.Warn("report sweep: chain", "err", err)
		return
	}
	for _, c := range cols {
		if !c.Reported && c.State == ledger.FilePending {
			r.kick(c.FID, c.Column)
		}
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
