package s3

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// Publisher sends the key journal to the chain: for each key its oldest
// change first, a put once the chain has its file with the owner among its
// owners, and at most Parallel at once (the signer batches them into
// blocks). A change the chain refuses for good (its bucket was deleted,
// say) is dropped and logged; one that fails on the way is tried again.
type Publisher struct {
	Chain    Chain
	Queue    *pipeline.Queue
	Log      *slog.Logger
	Parallel int           // default 32
	Poll     time.Duration // how often waiting puts are looked at again (default 1 s)
	// Buffered, when set, says an id is a small object in this gateway's
	// pack buffer: its put waits for its pack's declaration.
	Buffered func(id types.FID) bool

	mu       sync.Mutex
	inFlight map[uint64]bool
	wg       sync.WaitGroup
}

// Run publishes until ctx ends, and waits for what it started.
func (p *Publisher) Run(ctx context.Context) {
	if p.Parallel <= 0 {
		p.Parallel = 32
	}
	if p.Poll <= 0 {
		p.Poll = time.Second
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	p.inFlight = map[uint64]bool{}
	defer p.wg.Wait()
	slots := make(chan struct{}, p.Parallel)
	for {
		changed := p.Queue.Changed()
		ops, err := p.Queue.KeyOps()
		if err != nil {
			p.Log.Warn("read the key journal", "err", err)
		}
		seen := map[string]bool{}
		for i := range ops {
			op := &ops[i]
			k := op.Owner.String() + "/" + op.Bucket + "/" + op.Key
			if seen[k] {
				continue // a key's changes go in order
			}
			seen[k] = true
			if p.busy(op.Seq) {
				continue
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			p.start(op.Seq)
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer func() { <-slots; p.finish(op.Seq) }()
				p.publish(ctx, op)
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(p.Poll):
		}
	}
}

func (p *Publisher) busy(seq uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inFlight[seq]
}

func (p *Publisher) start(seq uint64) {
	p.mu.Lock()
	p.inFlight[seq] = true
	p.mu.Unlock()
}

func (p *Publisher) finish(seq uint64) {
	p.mu.Lock()
	delete(p.inFlight, seq)
	p.mu.Unlock()
}

// publish sends one change if it is ready, and drops it once done.
func (p *Publisher) publish(ctx context.Context, op *pipeline.KeyOp) {
	var m ledger.Msg
	if op.Delete {
		m.DeleteObjects = &ledger.DeleteObjects{Owner: op.Owner, Bucket: op.Bucket, Keys: []string{op.Key}}
	} else {
		ready, drop := p.ready(ctx, op)
		if drop {
			p.done(op, "its file will never be declared")
			return
		}
		if !ready {
			return
		}
		m.PutObject = &ledger.PutObject{Owner: op.Owner, Bucket: op.Bucket, Key: op.Key, FID: op.FID, ETag: op.ETag, Headers: op.Headers}
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := p.Chain.Submit(sctx, m)
	var le *ledger.Error
	switch {
	case err == nil:
		p.done(op, "")
	case errors.As(err, &le):
		p.done(op, err.Error())
	case ctx.Err() == nil:
		p.Log.Warn("publish a key; trying again", "bucket", op.Bucket, "key", op.Key, "err", err)
	}
}

// ready reports whether a put's file is on chain with its owner; drop when
// it never will be (the gateway gave up on it, or it was deleted). The
// gateway's own record answers first: a file it has not declared yet is
// not asked of the chain (every write to the queue wakes the publisher, and
// a query per waiting put on each wake would swamp the chain client).
func (p *Publisher) ready(ctx context.Context, op *pipeline.KeyOp) (ready, drop bool) {
	rec, err := p.Queue.Get(op.FID, op.Owner)
	switch {
	case errors.Is(err, pipeline.ErrNotFound):
		rec = nil // a copy of a file this gateway never held: the chain says
	case err != nil:
		return false, false
	case rec.State == pipeline.Processed:
		return false, false
	}
	// Asked before the chain: a buffered object leaves the buffer only
	// once its pack is declared, so a put that was not buffered then is
	// on chain now, or never will be.
	buffered := rec == nil && p.Buffered != nil && p.Buffered(op.FID)
	if _, err := p.Chain.Owner(ctx, op.FID, op.Owner); err == nil {
		return true, false
	} else if !errors.Is(err, ledger.ErrNotFound) {
		return false, false
	}
	if rec == nil {
		return false, !buffered
	}
	switch rec.State {
	case pipeline.Failed, pipeline.Deleting, pipeline.Cleaned:
		// Given up, being deleted, or stored and its ownership gone since
		// (deleted elsewhere): the chain would refuse the key.
		return false, true
	}
	return false, false
}

func (p *Publisher) done(op *pipeline.KeyOp, refused string) {
	if refused != "" {
		p.Log.Warn("a key change is dropped", "bucket", op.Bucket, "key", op.Key, "delete", op.Delete, "why", refused)
	}
	if err := p.Queue.KeyDone(op); err != nil {
		p.Log.Warn("drop a published key change", "err", err)
	}
}
