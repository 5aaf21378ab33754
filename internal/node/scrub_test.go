package node

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node/store"
	"github.com/deoss/deoss/internal/types"
)

type scrubChain struct {
	f    *ledger.File
	cols []ledger.NodeColumn
	mu   sync.Mutex
	lost []uint8
}

func (c *scrubChain) Columns(context.Context, types.Address) ([]ledger.NodeColumn, error) {
	return c.cols, nil
}

func (c *scrubChain) File(context.Context, types.FID) (*ledger.File, error) { return c.f, nil }

func (c *scrubChain) ReportLost(_ context.Context, _ types.FID, col uint8) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lost = append(c.lost, col)
	return nil
}

// rotten serves one fragment with a flipped byte, as a disk gone bad would.
type rotten struct {
	store.Store
	bad types.Hash
}

func (r rotten) Open(ctx context.Context, h types.Hash) (store.Fragment, error) {
	if h == r.bad {
		return store.Corrupt{Store: r.Store}.Open(ctx, h)
	}
	return r.Store.Open(ctx, h)
}

// TestScrubFindsLostColumns: a pass re-reads every reported column the
// chain assigns to the node and reports those with a fragment missing or
// corrupt; a good column and one still arriving are left alone; the reads
// are charged to the rate limit.
func TestScrubFindsLostColumns(t *testing.T) {
	ctx := context.Background()
	self := types.Address{5}
	frags := map[[2]int][]byte{}
	data := bytes.Repeat([]byte("scrub me "), 70_000)
	res, err := codec.Encode(ctx, bytes.NewReader(data), codec.SinkFunc(func(s *codec.Segment) error {
		for j, f := range s.Fragments {
			frags[[2]int{int(s.Index), j}] = bytes.Clone(f)
		}
		return nil
	}), codec.WithOwner(types.Address{1}))
	if err != nil {
		t.Fatal(err)
	}
	f := &ledger.File{FID: res.FID, Layout: res.Layout, State: ledger.FileStored}
	mem := store.NewMemory(1<<30, types.FragmentSize)
	for _, col := range []uint8{3, 4} {
		f.Columns[col] = ledger.Column{Node: self, Reported: true}
		for seg := range res.Layout.Segments {
			h := res.Layout.Segments[seg].Fragments[col]
			err := mem.Put(ctx, store.Ref{FID: res.FID, Column: col, Segment: uint32(seg)},
				store.Want{Hash: h, Format: res.Layout.Version, Size: int64(res.Layout.FragmentLen(seg))}, bytes.NewReader(frags[[2]int{seg, int(col)}]))
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	f.Columns[5] = ledger.Column{Node: self, Reported: true} // nothing stored: lost
	f.Columns[6] = ledger.Column{Node: self}                 // not reported yet
	ch := &scrubChain{f: f, cols: []ledger.NodeColumn{{FID: res.FID, Column: 3, Reported: true}, {FID: res.FID, Column: 4, Reported: true},
		{FID: res.FID, Column: 5, Reported: true}, {FID: res.FID, Column: 6}}}
	st := rotten{Store: mem, bad: res.Layout.Segments[0].Fragments[4]}
	s := newScrubber(ch, st, self, 1<<30, time.Hour, nil, quiet())
	checked, lost, err := s.pass(ctx)
	if err != nil || checked != 3 || lost != 2 {
		t.Fatalf("pass: %d checked, %d lost, %v", checked, lost, err)
	}
	if len(ch.lost) != 2 || ch.lost[0] != 4 || ch.lost[1] != 5 {
		t.Fatalf("reported lost: %v, want [4 5]", ch.lost)
	}
	if got := counter(s.bytes); got < float64(res.Layout.FragmentLen(0)) {
		t.Fatalf("scrubbed %v bytes", got)
	}
}
