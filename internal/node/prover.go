package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node/store"
	"github.com/deoss/deoss/internal/types"
)

// ProofChain is what the prover needs of the chain.
type ProofChain interface {
	Challenges(ctx context.Context, node types.Address) ([]ledger.Challenge, error)
	SubmitProof(ctx context.Context, m *ledger.SubmitProof) error
}

// prover answers the node's challenges: woken by a challenge event of a
// block it follows, and every poll besides (an event missed while the
// chain was away is not a missed proof). A fragment it cannot read is not
// answered: the chain counts the fault, as it must.
type prover struct {
	chain ProofChain
	store store.Store
	self  types.Address
	log   *slog.Logger
	poll  time.Duration
	wake  chan struct{}

	mu      sync.Mutex
	tried   map[string]int64 // challenge -> its deadline, once answered or given up
	rec     ProofRecord
	proved  prometheus.Counter
	failed  *prometheus.CounterVec
	latency prometheus.Histogram
}

func newProver(c ProofChain, st store.Store, self types.Address, reg prometheus.Registerer, log *slog.Logger) *prover {
	p := &prover{chain: c, store: st, self: self, log: log, poll: 5 * time.Second, wake: make(chan struct{}, 1), tried: map[string]int64{},
		proved: prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_node_proofs_total", Help: "Challenges answered with a proof the chain took."}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deoss_node_proof_failures_total",
			Help: "Challenges not proved, by reason: unreadable (the fragment is gone or bad here), refused (by the chain), unreachable."}, []string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "deoss_node_proof_seconds", Help: "Time to build and submit one proof, until its block.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12)})}
	if reg != nil {
		reg.MustRegister(p.proved, p.failed, p.latency)
	}
	return p
}

// kick asks for a round soon.
func (p *prover) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// onBlock kicks the prover when a block challenges this node.
func (p *prover) onBlock(events []ledger.Event) {
	me := p.self.String()
	for _, e := range events {
		if e.Type == ledger.EventChallenge && e.Attr(ledger.AttrAction) == ledger.ActionChallenged && e.Attr(ledger.AttrNode) == me {
			p.kick()
			return
		}
	}
}

func (p *prover) run(ctx context.Context) {
	t := time.NewTicker(p.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-t.C:
		}
		p.round(ctx)
	}
}

// round answers every open challenge not answered yet.
func (p *prover) round(ctx context.Context) {
	cs, err := p.chain.Challenges(ctx, p.self)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("reading challenges", "err", err)
		}
		return
	}
	open := map[string]bool{}
	for _, c := range cs {
		key := fmt.Sprintf("%s/%d/%d/%d", c.FID, c.Column, c.Segment, c.Deadline)
		open[key] = true
		p.mu.Lock()
		_, done := p.tried[key]
		p.mu.Unlock()
		if done {
			continue
		}
		if p.answer(ctx, c) {
			p.mu.Lock()
			p.tried[key] = c.Deadline
			p.mu.Unlock()
		}
	}
	p.mu.Lock()
	for k := range p.tried {
		if !open[k] {
			delete(p.tried, k) // closed on chain: forget it
		}
	}
	p.mu.Unlock()
}

// answer proves one challenge; false means try again next round.
func (p *prover) answer(ctx context.Context, c ledger.Challenge) bool {
	start := time.Now()
	slice, err := p.prove(ctx, c)
	if err != nil {
		p.count(func(r *ProofRecord) { r.Unreadable++ })
		p.failed.WithLabelValues("unreadable").Inc()
		p.log.Error("cannot prove a challenged fragment", "fid", c.FID, "column", c.Column, "segment", c.Segment, "hash", c.Hash, "err", err)
		return true // it will not be readable the next round either
	}
	err = p.chain.SubmitProof(ctx, &ledger.SubmitProof{FID: c.FID, Column: c.Column, Segment: c.Segment, Slice: slice})
	switch {
	case err == nil:
		p.count(func(r *ProofRecord) { r.Proved++; r.Last = time.Now() })
		p.proved.Inc()
		p.latency.Observe(time.Since(start).Seconds())
		p.log.Debug("proved", "fid", c.FID, "column", c.Column, "segment", c.Segment, "chunk", c.Chunk)
		return true
	case errors.Is(err, ledger.ErrBadProof), errors.Is(err, ledger.ErrNotFound), errors.Is(err, ledger.ErrInvalid):
		p.count(func(r *ProofRecord) { r.Refused++ })
		p.failed.WithLabelValues("refused").Inc()
		p.log.Error("proof refused", "fid", c.FID, "column", c.Column, "segment", c.Segment, "err", err)
		return true
	default:
		p.failed.WithLabelValues("unreachable").Inc()
		if ctx.Err() == nil {
			p.log.Warn("submitting a proof; will retry", "fid", c.FID, "column", c.Column, "err", err)
		}
		return false
	}
}

// prove builds the proof slice from the stored fragment and its outboard.
func (p *prover) prove(ctx context.Context, c ledger.Challenge) ([]byte, error) {
	f, err := p.store.Open(ctx, c.Hash)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if f.Size() != c.Size {
		return nil, fmt.Errorf("the fragment has %d bytes, the chain says %d", f.Size(), c.Size)
	}
	ob, err := p.store.Outboard(ctx, c.Hash)
	if err != nil {
		return nil, err
	}
	return codec.SliceChunk(f, ob, c.Chunk)
}

func (p *prover) count(f func(*ProofRecord)) {
	p.mu.Lock()
	f(&p.rec)
	p.mu.Unlock()
}

// record is what the prover did since it started (for /info).
func (p *prover) record() ProofRecord {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rec
}
