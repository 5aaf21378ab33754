package node

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node/store"
	"github.com/deoss/deoss/internal/types"
)

// proofChain is a fake chain of open challenges that checks each proof as
// the ledger does and closes the challenge it answers.
type proofChain struct {
	mu     sync.Mutex
	open   []ledger.Challenge
	proofs int
	down   bool // submits fail as if the chain were away
}

func (c *proofChain) Challenges(context.Context, types.Address) ([]ledger.Challenge, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ledger.Challenge(nil), c.open...), nil
}

func (c *proofChain) SubmitProof(_ context.Context, m *ledger.SubmitProof) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return errors.New("connection refused")
	}
	for i, ch := range c.open {
		if ch.FID == m.FID && ch.Column == m.Column && ch.Segment == m.Segment {
			c.open = append(c.open[:i], c.open[i+1:]...)
			if _, err := codec.VerifyChunk(m.Slice, ch.Size, ch.Chunk, ch.Hash); err != nil {
				return ledger.ErrBadProof
			}
			c.proofs++
			return nil
		}
	}
	return ledger.ErrNotFound
}

// TestProverAnswers: the prover answers from the store with a slice that
// verifies, retries when the chain was away, and does not answer for a
// fragment it does not hold (the chain's deadline counts that).
func TestProverAnswers(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory(1<<30, types.FragmentSize)
	frag := bytes.Repeat([]byte("proof of storage "), 12_000)[:192<<10]
	_, h := codec.Outboard(frag)
	fid := types.FID{9}
	if err := st.Put(ctx, store.Ref{FID: fid, Column: 3, Segment: 0}, store.Want{Hash: h, Format: types.FormatV2, Size: int64(len(frag))}, bytes.NewReader(frag)); err != nil {
		t.Fatal(err)
	}
	held := ledger.Challenge{FID: fid, Column: 3, Segment: 0, Chunk: 77, Hash: h, Size: int64(len(frag)), Deadline: 100}
	gone := ledger.Challenge{FID: fid, Column: 3, Segment: 1, Chunk: 1, Hash: types.Hash{1}, Size: int64(len(frag)), Deadline: 100}
	ch := &proofChain{open: []ledger.Challenge{held, gone}, down: true}
	p := newProver(ch, st, types.Address{1}, nil, quiet())

	p.round(ctx) // the chain is away: nothing lands
	if ch.proofs != 0 || counter(p.failed.WithLabelValues("unreachable")) != 1 || counter(p.failed.WithLabelValues("unreadable")) != 1 {
		t.Fatalf("chain away: %d proofs", ch.proofs)
	}
	ch.mu.Lock()
	ch.down = false
	ch.mu.Unlock()
	p.round(ctx)
	if ch.proofs != 1 || counter(p.proved) != 1 {
		t.Fatalf("after the chain came back: %d proofs", ch.proofs)
	}
	if r := p.record(); r.Proved != 1 || r.Unreadable != 1 || r.Last.IsZero() {
		t.Fatalf("the record for /info: %+v", r)
	}
	// The fragment it lacks is not answered again and again.
	p.round(ctx)
	if got := counter(p.failed.WithLabelValues("unreadable")); got != 1 {
		t.Fatalf("an unreadable fragment tried %v times", got)
	}
	// A fragment gone bad at rest gives a wrong proof: the chain says so.
	bad := held
	bad.Chunk, bad.Deadline = 5, 200
	corrupt := &proofChain{open: []ledger.Challenge{bad}}
	p2 := newProver(corrupt, store.Corrupt{Store: st}, types.Address{1}, nil, quiet())
	p2.round(ctx)
	if corrupt.proofs != 0 || counter(p2.failed.WithLabelValues("refused")) != 1 {
		t.Fatalf("a corrupt store proved: %d", corrupt.proofs)
	}
}

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
