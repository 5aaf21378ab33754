package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node/store"
	"github.com/deoss/deoss/internal/types"
)

// reportChain is a fakeChain that also takes reports, failing the first
// failReports of them.
type reportChain struct {
	fakeChain
	mu          sync.Mutex
	failReports int
	reports     []column
	height      int64 // the chain's height (1 if unset)
	empty       bool  // knows no node (a stub, a validator restarted empty)
}

func (c *reportChain) Report(_ context.Context, fid types.FID, col uint8) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failReports > 0 {
		c.failReports--
		return chain.ErrUnavailable
	}
	c.reports = append(c.reports, column{fid, col})
	c.fakeChain.mu.Lock()
	c.files[fid].Columns[col].Reported = true
	c.fakeChain.mu.Unlock()
	return nil
}

func (c *reportChain) Columns(context.Context, types.Address) ([]ledger.NodeColumn, error) {
	return nil, nil
}
func (c *reportChain) Follow(context.Context, int64, func(chain.BlockEvents) error) error { return nil }

func (c *reportChain) Height(context.Context) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return max(c.height, 1), nil
}

func (c *reportChain) FileAt(ctx context.Context, fid types.FID, _ int64) (*ledger.File, error) {
	return c.File(ctx, fid)
}

// Node knows every node unless the chain is "empty".
func (c *reportChain) Node(_ context.Context, a types.Address) (*ledger.Node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.empty {
		return nil, ledger.ErrNotFound
	}
	return &ledger.Node{Address: a, State: ledger.NodeActive}, nil
}

// heights is a Declared in memory.
type heights map[types.FID]int64

func (h heights) Height(fid types.FID) (int64, bool) { v, ok := h[fid]; return v, ok }
func (h heights) Forget(fid types.FID) error         { delete(h, fid); return nil }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// twoSegmentFile puts a pending two-segment file on the chain with column col
// assigned to self, and returns its fragments for that column.
func twoSegmentFile(ch *reportChain, fid types.FID, self types.Address, col uint8) [][]byte {
	f := &ledger.File{FID: fid, State: ledger.FilePending,
		Layout: types.Layout{Version: types.FormatV1, Size: 2 * types.SegmentSize, Segments: make([]types.SegmentLayout, 2)}}
	f.Columns[col].Node = self
	var frags [][]byte
	for s := range 2 {
		b := bytes.Repeat([]byte{fid[0], byte(s)}, 64)
		frags = append(frags, b)
		f.Layout.Segments[s].Fragments[col] = sha256.Sum256(b)
	}
	ch.fakeChain.mu.Lock()
	ch.files[fid] = f
	ch.fakeChain.mu.Unlock()
	return frags
}

func TestReporter(t *testing.T) {
	self, _ := auth.Generate()
	ch := &reportChain{fakeChain: fakeChain{files: map[types.FID]*ledger.File{}}, failReports: 2}
	st := store.NewMemory(1<<20, 1<<10)
	fid := types.FID{1}
	frags := twoSegmentFile(ch, fid, self.Address(), 4)
	rep := newReporter(ch, st, self.Address(), quiet())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go rep.run(ctx)
	put := func(seg uint32) {
		if err := st.Put(ctx, store.Ref{FID: fid, Column: 4, Segment: seg}, store.V1(sha256.Sum256(frags[seg])), bytes.NewReader(frags[seg])); err != nil {
			t.Fatal(err)
		}
		rep.kick(fid, 4)
	}
	// Half a column: nothing to report (once the reporter looked at it).
	put(0)
	waitIdle(t, rep)
	ch.mu.Lock()
	if len(ch.reports) != 0 {
		t.Fatal("reported an incomplete column")
	}
	ch.mu.Unlock()
	// Complete: reported once, after two failed attempts.
	put(1)
	waitFor(t, func() bool {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		return len(ch.reports) == 1
	}, "the complete column reported")
	// A kick for a reported column, or an order that is gone, does nothing.
	rep.kick(fid, 4)
	rep.kick(types.FID{9}, 0)
	waitIdle(t, rep)
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if len(ch.reports) != 1 {
		t.Fatalf("%d reports", len(ch.reports))
	}
}

func TestCollector(t *testing.T) {
	self, _ := auth.Generate()
	other, _ := auth.Generate()
	ch := &reportChain{fakeChain: fakeChain{files: map[types.FID]*ledger.File{}}}
	st := store.NewMemory(1<<20, 1<<10)
	ctx := context.Background()
	hold := func(fid types.FID, col uint8, frags [][]byte) {
		for s, b := range frags {
			if err := st.Put(ctx, store.Ref{FID: fid, Column: col, Segment: uint32(s)}, store.V1(sha256.Sum256(b)), bytes.NewReader(b)); err != nil {
				t.Fatal(err)
			}
		}
	}
	keep, gone, moved := types.FID{1}, types.FID{2}, types.FID{3}
	hold(keep, 4, twoSegmentFile(ch, keep, self.Address(), 4))
	hold(gone, 4, twoSegmentFile(ch, gone, self.Address(), 4))
	hold(moved, 4, twoSegmentFile(ch, moved, self.Address(), 4))
	// On chain: "gone" was deleted, "moved" has its column 4 on another node.
	delete(ch.files, gone)
	ch.files[moved].Columns[4].Node = other.Address()

	gc := &collector{chain: ch, store: st, self: self.Address(), log: quiet(), declared: heights{gone: 1}}
	var kicked []column
	if err := gc.reconcile(ctx, func(f types.FID, c uint8) { kicked = append(kicked, column{f, c}) }); err != nil {
		t.Fatal(err)
	}
	files, _ := st.Files(ctx)
	if len(files) != 1 || files[0] != keep {
		t.Fatalf("after reconcile: %v", files)
	}
	if len(kicked) != 1 || kicked[0] != (column{keep, 4}) {
		t.Fatalf("kicked %v", kicked)
	}
	// Events: a reassignment away from this node of another column, and the
	// deletion of a file naming another node, change nothing; the deletion of
	// "keep" naming this node collects it.
	hold(gone, 7, twoSegmentFile(ch, gone, self.Address(), 7))
	be := chain.BlockEvents{Height: 5, Events: []ledger.Event{
		{Type: "deoss.column", Attrs: []ledger.Attr{{Key: "action", Value: "reassigned"}, {Key: "fid", Value: keep.String()},
			{Key: "column", Value: "4"}, {Key: "node", Value: other.Address().String()}, {Key: "from", Value: other.Address().String()}}},
		{Type: "deoss.file", Attrs: []ledger.Attr{{Key: "action", Value: "deleted"}, {Key: "fid", Value: keep.String()},
			{Key: "node", Value: other.Address().String()}}},
	}}
	if err := gc.onBlock(ctx, be); err != nil {
		t.Fatal(err)
	}
	if segs, _ := st.Segments(ctx, keep, 4); len(segs) != 2 {
		t.Fatalf("collected a referenced column: %v", segs)
	}
	be.Events = []ledger.Event{
		{Type: "deoss.column", Attrs: []ledger.Attr{{Key: "action", Value: "reassigned"}, {Key: "fid", Value: gone.String()},
			{Key: "column", Value: "7"}, {Key: "from", Value: self.Address().String()}}},
		{Type: "deoss.file", Attrs: []ledger.Attr{{Key: "action", Value: "deleted"}, {Key: "fid", Value: keep.String()},
			{Key: "node", Value: self.Address().String()}}},
	}
	// An event alone releases nothing the chain's state still gives this
	// node (an old event applied late, the FID declared again since).
	if err := gc.onBlock(ctx, be); err != nil {
		t.Fatal(err)
	}
	if files, _ := st.Files(ctx); len(files) != 2 {
		t.Fatalf("released on an event the state contradicts: %v left", files)
	}
	ch.fakeChain.mu.Lock()
	ch.files[gone].Columns[7].Node = other.Address()
	delete(ch.files, keep)
	ch.fakeChain.mu.Unlock()
	if err := gc.onBlock(ctx, be); err != nil {
		t.Fatal(err)
	}
	if files, _ := st.Files(ctx); len(files) != 0 {
		t.Fatalf("left: %v", files)
	}
	if used, _ := st.Usage(); used != 0 {
		t.Fatalf("used %d", used)
	}
	// At start, a chain that does not know this node (a stub answering
	// "not found" to everything, a validator restarted empty) removes
	// nothing; nor does one below the height a file was declared at, nor
	// a file whose declaration height the node never noted.
	hold(keep, 4, twoSegmentFile(ch, keep, self.Address(), 4))
	hold(moved, 4, twoSegmentFile(ch, moved, self.Address(), 4))
	ch.fakeChain.mu.Lock()
	delete(ch.files, keep)
	delete(ch.files, moved)
	ch.fakeChain.mu.Unlock()
	gc.declared = heights{keep: 50}
	ch.empty = true
	if err := gc.reconcile(ctx, func(types.FID, uint8) {}); !errors.Is(err, errUnknownNode) {
		t.Fatalf("reconcile against a chain that knows no node: %v", err)
	}
	ch.empty, ch.height = false, 49
	if err := gc.reconcile(ctx, func(types.FID, uint8) {}); err != nil {
		t.Fatal(err)
	}
	if files, _ := st.Files(ctx); len(files) != 2 {
		t.Fatalf("released below the declaration's height, or without it: %v left", files)
	}
	ch.height = 50 // reached: "keep" is truly gone; "moved" has no noted height
	if err := gc.reconcile(ctx, func(types.FID, uint8) {}); err != nil {
		t.Fatal(err)
	}
	if files, _ := st.Files(ctx); len(files) != 1 || files[0] != moved {
		t.Fatalf("at the declaration's height: %v left", files)
	}
	gc.declared = heights{}
	// An unreachable chain removes nothing at start.
	hold(keep, 4, twoSegmentFile(ch, keep, self.Address(), 4))
	gc.chain = &downChain{ch}
	if err := gc.reconcile(ctx, func(types.FID, uint8) {}); !errors.Is(err, chain.ErrUnavailable) {
		t.Fatalf("reconcile with the chain down: %v", err)
	}
	if files, _ := st.Files(ctx); len(files) != 2 {
		t.Fatal("collected while the chain was down")
	}
}

type downChain struct{ *reportChain }

func (downChain) File(context.Context, types.FID) (*ledger.File, error) {
	return nil, chain.ErrUnavailable
}

// TestReporterKeepsEveryKick: more kicks than any channel would hold, all
// before the workers start: every complete column is reported, none dropped.
func TestReporterKeepsEveryKick(t *testing.T) {
	self, _ := auth.Generate()
	ch := &reportChain{fakeChain: fakeChain{files: map[types.FID]*ledger.File{}}}
	st := store.NewMemory(1<<30, 1<<10)
	rep := newReporter(ch, st, self.Address(), quiet())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 5000
	for i := range n {
		fid := types.FID{byte(i), byte(i >> 8), 0xaa}
		for s, b := range twoSegmentFile(ch, fid, self.Address(), 2) {
			if err := st.Put(ctx, store.Ref{FID: fid, Column: 2, Segment: uint32(s)}, store.V1(sha256.Sum256(b)), bytes.NewReader(b)); err != nil {
				t.Fatal(err)
			}
		}
		rep.kick(fid, 2)
	}
	done := make(chan struct{})
	go func() { rep.run(ctx); close(done) }()
	waitFor(t, func() bool {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		return len(ch.reports) == n
	}, "every kicked column reported")
	cancel()
	<-done
}

// countingDown is a chain that does not answer, counting the asks.
type countingDown struct {
	*reportChain
	mu   sync.Mutex
	asks map[types.FID]int
}

func (c *countingDown) File(_ context.Context, fid types.FID) (*ledger.File, error) {
	c.mu.Lock()
	c.asks[fid]++
	c.mu.Unlock()
	return nil, chain.ErrUnavailable
}

// TestReporterGivesUpWhileTheChainIsDown: a column is tried maxAttempts
// times, with back-off and without holding a worker, then left to the sweep;
// while the chain stays down nothing is retried forever.
func TestReporterGivesUpWhileTheChainIsDown(t *testing.T) {
	self, _ := auth.Generate()
	ch := &countingDown{reportChain: &reportChain{fakeChain: fakeChain{files: map[types.FID]*ledger.File{}}}, asks: map[types.FID]int{}}
	rep := newReporter(ch, store.NewMemory(1<<20, 1<<10), self.Address(), quiet())
	rep.backoff, rep.maxAttempts = time.Millisecond, 3
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rep.run(ctx)
	for i := range 10 { // more than the workers
		rep.kick(types.FID{byte(i), 0xbb}, 1)
	}
	waitFor(t, func() bool {
		rep.mu.Lock()
		defer rep.mu.Unlock()
		return len(rep.queued) == 0
	}, "every column given up")
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for i := range 10 {
		if n := ch.asks[types.FID{byte(i), 0xbb}]; n != 3 {
			t.Fatalf("column %d tried %d times, want 3", i, n)
		}
	}
}

// releaseFails is a store whose deletes fail (a disk error).
type releaseFails struct{ store.Store }

func (releaseFails) Release(context.Context, store.Ref) error { return errors.New("disk on fire") }

// followOnce delivers one block on its first Follow, then waits for ctx.
type followOnce struct {
	*reportChain
	mu      sync.Mutex
	follows int
	block   chain.BlockEvents
}

func (c *followOnce) Follow(ctx context.Context, from int64, fn func(chain.BlockEvents) error) error {
	c.mu.Lock()
	c.follows++
	n := c.follows
	c.mu.Unlock()
	if n == 1 {
		return fn(c.block)
	}
	<-ctx.Done()
	return ctx.Err()
}

// TestFollowSurvivesCollectionErrors: a block whose collection fails does
// not end the node's following of the chain: it reconciles and follows again.
func TestFollowSurvivesCollectionErrors(t *testing.T) {
	self, _ := auth.Generate()
	fid := types.FID{0xcc}
	ch := &followOnce{reportChain: &reportChain{fakeChain: fakeChain{files: map[types.FID]*ledger.File{}}}}
	st := store.NewMemory(1<<20, 1<<10)
	frags := twoSegmentFile(ch.reportChain, fid, self.Address(), 3)
	for s, b := range frags {
		st.Put(context.Background(), store.Ref{FID: fid, Column: 3, Segment: uint32(s)}, store.V1(sha256.Sum256(b)), bytes.NewReader(b))
	}
	ch.block = chain.BlockEvents{Height: 2, Events: []ledger.Event{{Type: ledger.EventFile, Attrs: []ledger.Attr{
		{Key: ledger.AttrAction, Value: ledger.ActionDeleted}, {Key: ledger.AttrFID, Value: fid.String()}, {Key: ledger.AttrNode, Value: self.Address().String()}}}}}
	gc := &collector{chain: ch, store: releaseFails{st}, self: self.Address(), log: quiet()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		followChain(ctx, ch, gc, func(types.FID, uint8) {}, func([]ledger.Event) {}, time.Millisecond, quiet())
		close(done)
	}()
	waitFor(t, func() bool {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		return ch.follows >= 2
	}, "a second follow after the failed block")
	select {
	case <-done:
		t.Fatal("followChain returned on a collection error")
	default:
	}
	cancel()
	<-done
}

// waitIdle waits until the reporter has nothing queued, in progress or to
// retry: every kick so far was looked at.
func waitIdle(t *testing.T, r *reporter) {
	t.Helper()
	waitFor(t, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.queued) == 0
	}, "the reporter idle")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
