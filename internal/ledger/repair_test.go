package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/types"
)

func claim(fid types.FID, col uint8) Msg {
	return Msg{ClaimRestoral: &ClaimRestoral{FID: fid, Column: col}}
}

func (ph *proofHarness) complete(fid types.FID, col uint8) Msg {
	f, err := ph.file(fid)
	if err != nil {
		ph.t.Fatal(err)
	}
	return Msg{CompleteRestoral: &CompleteRestoral{FID: fid, Column: col, Digest: ColumnDigest(&f.Layout, col)}}
}

func (h *harness) order(fid types.FID, col uint8) (Restoral, bool) {
	for _, r := range query[RestoralQueue](h, "restorals").Orders {
		if r.FID == fid && r.Column == col {
			return r, true
		}
	}
	return Restoral{}, false
}

// repairScenario: two files on nodes 0..11; columns lost (reported) and
// exiting become orders queued by health; claims are refused to nodes that
// hold a column, are not active, are over their cap or barred; a wrong
// digest is refused; completion moves the column (health back up, a
// probation challenge); the exiting node leaves with its stake once its
// columns moved; lapses count and bar. It returns the harness for a
// determinism check. Invariants (histogram = recount) run after every block.
func repairScenario(t *testing.T) *proofHarness {
	h := newProofHarness(t, func(p *Params) {
		p.MaxClaims, p.ClaimSeconds, p.ClaimRate, p.LapseBan, p.BanSeconds = 1, 10, 1<<40, 2, 100
	})
	p := h.params
	a := h.fid
	b, bf := h.storeV2("alice", 0, 1<<20, 2)
	h.others[b] = bf
	if st := query[RepairStatus](h.harness, "repair"); st.Health[12].Files != 2 || st.Health[12].Bytes != 3<<20+1<<20 {
		t.Fatalf("histogram: %+v", st.Health)
	}
	h.fail(nodeName(12), claim(a, 4), CodeNotFound)

	// Lost: one order at health 11, claimable after the longest delay.
	h.ok(nodeName(4), Msg{ReportLost: &ReportLost{FID: a, Column: 4}})
	r4, ok := h.order(a, 4)
	if !ok || r4.Reason != DownLost || r4.Health != 11 || r4.Eligible != r4.Created+p.RepairDelay11 {
		t.Fatalf("lost order: %+v", r4)
	}
	h.fail(nodeName(12), claim(a, 4), CodeConflict) // not eligible yet

	// Exiting: node 5's columns of both files become orders once swept; a
	// second lost column of a puts it first in the queue, at health 9.
	h.ok(nodeName(5), Msg{ExitNode: &ExitNode{}})
	h.ok(nodeName(6), Msg{ReportLost: &ReportLost{FID: a, Column: 6}})
	q := query[RestoralQueue](h.harness, "restorals").Orders
	if len(q) != 4 || q[0].FID != a || q[0].Health != 9 || q[3].FID != b || q[3].Health != 11 || q[3].Reason != DownExiting {
		t.Fatalf("queue: %+v", q)
	}
	if r, _ := h.order(a, 4); r.Eligible != r.Created+p.RepairDelay9 {
		t.Fatalf("the delay did not shrink with health: %+v", r)
	}
	h.until(int(p.RepairDelay9)+1, func() bool { r, _ := h.order(a, 4); return r.Eligible <= h.now })
	if r, _ := h.order(b, 5); r.Eligible <= h.now {
		t.Fatalf("b's order (health 11) is eligible as soon as a's (health 9): %+v", r)
	}
	h.until(int(p.RepairDelay11), func() bool { r, _ := h.order(b, 5); return r.Eligible <= h.now })

	// Ineligible claimants.
	h.fail(nodeName(3), claim(a, 4), CodeInvalid)      // holds a column of a
	h.fail(nodeName(5), claim(a, 4), CodeUnauthorized) // exiting
	h.fail("alice", claim(a, 4), CodeUnauthorized)     // no node
	h.ok(nodeName(12), claim(a, 4))
	h.fail(nodeName(13), claim(a, 4), CodeConflict) // claimed
	h.fail(nodeName(12), claim(a, 6), CodeInvalid)  // a second column of a
	h.fail(nodeName(12), claim(b, 5), CodeTooMany)  // over the cap
	if n := h.node(12); n.Claims != 1 {
		t.Fatalf("claims: %+v", n)
	}

	// Completion: a wrong digest is refused; the claimant's is taken.
	bad := h.complete(a, 4)
	bad.CompleteRestoral.Digest[0] ^= 1
	h.fail(nodeName(12), bad, CodeInvalid)
	h.fail(nodeName(13), h.complete(a, 4), CodeUnauthorized)
	h.ok(nodeName(12), h.complete(a, 4))
	f, _ := h.file(a)
	if f.Columns[4].Node != h.addr(nodeName(12)) || f.Columns[4].Down != "" || f.Health != 10 {
		t.Fatalf("after completion: %+v", f)
	}
	if cs := h.challenges(12); len(cs) != 1 || cs[0].FID != a || cs[0].Column != 4 || !cs[0].Targeted {
		t.Fatalf("probation challenge: %+v", cs)
	}
	h.until(3, func() bool { return len(h.challenges(12)) == 0 })
	if n := h.node(12); n.Passed != 1 || n.Restored != 1 || n.Claims != 0 {
		t.Fatalf("probation: %+v", n)
	}

	// The exiting node leaves once its columns moved, with its stake.
	h.ok(nodeName(13), claim(a, 5))
	h.ok(nodeName(13), h.complete(a, 5))
	bal := h.account(nodeName(5)).Balance
	stake := h.node(5).Stake
	h.ok(nodeName(12), claim(b, 5))
	h.ok(nodeName(12), h.complete(b, 5))
	if _, err := h.l.Query("node/" + h.addr(nodeName(5)).String()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the exiting node stays: %v", err)
	}
	if got := h.account(nodeName(5)).Balance; got != bal+stake {
		t.Fatalf("stake not returned: %d, want %d", got, bal+stake)
	}

	// Lapses count; LapseBan of them in a row bar the node.
	h.ok(nodeName(6), Msg{ReportLost: &ReportLost{FID: b, Column: 6}})
	h.until(int(p.RepairDelay11)+1, func() bool { r, _ := h.order(b, 6); return r.Eligible <= h.now })
	h.ok(nodeName(13), claim(b, 6))
	h.until(int(p.ClaimSeconds)+2, func() bool { return h.node(13).Claims == 0 })
	if n := h.node(13); n.Lapses != 1 || n.LapsesTotal != 1 {
		t.Fatalf("after a lapse: %+v", n)
	}
	if _, ok := h.order(b, 6); !ok {
		t.Fatal("a lapsed order is not queued again")
	}
	h.ok(nodeName(13), claim(b, 6))
	h.until(int(p.ClaimSeconds)+2, func() bool { return h.node(13).Claims == 0 })
	if n := h.node(13); n.BannedUntil <= h.now {
		t.Fatalf("not barred after %d lapses: %+v", p.LapseBan, n)
	}
	h.fail(nodeName(13), claim(b, 6), CodeTooMany)
	return h
}

func TestRepair(t *testing.T) {
	h := repairScenario(t)
	st := query[RepairStatus](h.harness, "repair")
	fa, _ := h.file(h.fid)
	fb, _ := h.file(h.ordersFID(6))
	want := 2*ColumnBytes(&fa.Layout) + ColumnBytes(&fb.Layout) // a's columns 4 and 5, b's column 5
	if st.RepairedHour != want || st.RepairedDay != want || st.Rate != want/3600 || st.Queue[11].Orders != 2 || st.Health[11].Files != 2 || st.ETA <= 0 {
		t.Fatalf("status: %+v (want %d repaired)", st, want)
	}
}

// ordersFID is the file of the open order of column col that is not the
// harness's first file.
func (h *proofHarness) ordersFID(col uint8) types.FID {
	for _, r := range query[RestoralQueue](h.harness, "restorals").Orders {
		if r.Column == col && r.FID != h.fid {
			return r.FID
		}
	}
	h.t.Fatal("no such order")
	return types.FID{}
}

// TestRepairDeterminism: two validators fed the same blocks agree.
func TestRepairDeterminism(t *testing.T) {
	a, b := repairScenario(t), repairScenario(t)
	if !bytes.Equal(a.l.AppHash(), b.l.AppHash()) {
		t.Fatalf("app hashes differ: %x %x", a.l.AppHash(), b.l.AppHash())
	}
}

// TestFileLost: below 4 healthy columns a file is lost and no longer
// charged; deleting it later releases nothing twice.
func TestFileLost(t *testing.T) {
	h := newProofHarness(t, nil)
	before := h.territory("alice", "home").Used
	for j := range 9 {
		h.ok(nodeName(j), Msg{ReportLost: &ReportLost{FID: h.fid, Column: uint8(j)}})
	}
	f, _ := h.file(h.fid)
	if f.State != FileLost || f.Health != 3 || !f.Uncharged {
		t.Fatalf("after 9 losses: %+v", f)
	}
	if used := h.territory("alice", "home").Used; used != before-Charge(&f.Layout) {
		t.Fatalf("a lost file is charged: %d of %d", used, before)
	}
	h.ok("alice", Msg{DeleteFile: &DeleteFile{FID: h.fid, Owner: h.addr("alice")}})
	if used := h.territory("alice", "home").Used; used != before-Charge(&f.Layout) {
		t.Fatalf("deleting a lost file released space twice: %d", used)
	}
	if st := query[RepairStatus](h.harness, "repair"); st.Queue != ([13]QueueBucket{}) || st.Health != (Health{}) {
		t.Fatalf("a deleted file's orders remain: %+v", st)
	}
}

// TestSweepBounded: a node's change of state re-rates at most
// SweepPerBlock columns a block; the histogram is a recount of the rated
// columns after every block and matches the nodes' states once done.
func TestSweepBounded(t *testing.T) {
	h := newProofHarness(t, nil)
	n := SweepPerBlock + 44
	h.storeMany(n)
	h.ok(nodeName(0), Msg{ExitNode: &ExitNode{}}) // its sweep runs at this block's end
	st := query[RepairStatus](h.harness, "repair")
	if st.Sweeping != 1 || st.Health[11].Files != SweepPerBlock {
		t.Fatalf("first block: %d sweeping, %d files at 11", st.Sweeping, st.Health[11].Files)
	}
	h.block(1)
	st = query[RepairStatus](h.harness, "repair")
	if st.Sweeping != 0 || st.Health[11].Files != uint64(n)+1 || st.Health[12].Files != 0 {
		t.Fatalf("after the sweep: %+v", st)
	}
	// What if two more nodes went: every file falls to 9, nothing is lost.
	w := query[WhatIf](h.harness, "whatif/"+h.addr(nodeName(1)).String()+","+h.addr(nodeName(2)).String())
	if w.After[9].Files != uint64(n)+1 || w.FilesAffected != uint64(n)+1 || w.FilesLost != 0 || w.RepairBytes == 0 {
		t.Fatalf("whatif: %+v", w)
	}
}

// storeMany stores n small v2 files on nodes 0..11 in a few blocks.
func (h *proofHarness) storeMany(n int) {
	h.t.Helper()
	var decl [][]byte
	var fids []types.FID
	for i := range n {
		l, fid := h.smallV2(uint64(i))
		fids = append(fids, fid)
		decl = append(decl, h.sign("gw", Msg{DeclareFile: &DeclareFile{Owner: h.addr("alice"), FID: fid, Name: "many",
			Territory: "home", Layout: l, Columns: h.nodes(0)}}, uint64(i)))
	}
	for _, r := range h.block(1, decl...) {
		if r.Code != CodeOK {
			h.t.Fatal(r.Log)
		}
	}
	for j := range types.TotalShards {
		var rep [][]byte
		for i, fid := range fids {
			rep = append(rep, h.sign(nodeName(j), Msg{ReportColumn: &ReportColumn{FID: fid, Column: uint8(j)}}, uint64(i)))
		}
		for _, r := range h.block(1, rep...) {
			if r.Code != CodeOK {
				h.t.Fatal(r.Log)
			}
		}
	}
}

// smallV2 encodes a 1 KiB v2 file of alice's (seed i) and keeps its
// fragments for the honest nodes' proofs.
func (h *proofHarness) smallV2(i uint64) (types.Layout, types.FID) {
	data := make([]byte, 1024)
	binary.BigEndian.PutUint64(data, i)
	frags := map[[2]int][]byte{}
	res, err := codec.Encode(context.Background(), bytes.NewReader(data), codec.SinkFunc(func(s *codec.Segment) error {
		for j, f := range s.Fragments {
			frags[[2]int{int(s.Index), j}] = bytes.Clone(f)
		}
		return nil
	}), codec.WithOwner(h.addr("alice")), codec.WithWorkers(1))
	if err != nil {
		h.t.Fatal(err)
	}
	h.others[res.FID] = frags
	return res.Layout, res.FID
}

// BenchmarkSweepBlock: one block's bounded re-rating, SweepPerBlock
// columns of a node that changed state, beside the bare primitive of the
// same number of file records loaded and stored.
func BenchmarkSweepBlock(b *testing.B) {
	t := &testing.T{}
	h := newProofHarness(t, nil)
	h.t = t
	h.storeMany(SweepPerBlock)
	node := h.addr(nodeName(0))
	var fids []types.FID
	for _, c := range (querier{s: state{newOverlay(h.kv)}}).nodeColumns(node) {
		fids = append(fids, c.FID)
	}
	b.Run("primitive", func(b *testing.B) {
		for range b.N {
			h.l.o = newOverlay(h.kv)
			s := state{h.l.o}
			for _, fid := range fids {
				f, _ := load[File](s, fidKey(fid))
				s.put(fidKey(fid), f)
			}
		}
	})
	b.Run("sweep", func(b *testing.B) {
		for range b.N {
			h.l.o = newOverlay(h.kv)
			state{h.l.o}.put(addrKey(pSweep, node), &Sweep{Down: DownExiting})
			h.l.sweepEndBlock()
		}
	})
	h.l.o = newOverlay(h.kv)
}

// TestClaimsKeepNetworksApart: off dev chains a node on the network of
// another holder of the file (same /24, same host name) cannot claim.
func TestClaimsKeepNetworksApart(t *testing.T) {
	h := newHarnessWith(t, false, func(p *Params) {
		p.FeePerTx, p.FeePerKiB, p.GatewayDeposit, p.EpochSeconds = 0, 0, 0, 0
	})
	h.ok("gw", Msg{RegisterGateway: &RegisterGateway{Endpoint: "https://gw.example.org"}})
	for i := range 12 {
		h.ok(nodeName(i), Msg{RegisterNode: &RegisterNode{Endpoint: fmt.Sprintf("https://8.8.%d.1", i), Capacity: 1 << 30, Stake: 1000}})
	}
	h.ok(nodeName(12), Msg{RegisterNode: &RegisterNode{Endpoint: "https://8.8.3.200:9000", Capacity: 1 << 30, Stake: 1000}})
	h.ok(nodeName(13), Msg{RegisterNode: &RegisterNode{Endpoint: "https://9.9.9.9", Capacity: 1 << 30, Stake: 1000}})
	h.ok("alice", Msg{BuyTerritory: &BuyTerritory{Name: "home", GiB: 1, Days: 30}})
	h.ok("alice", Msg{Authorize: &Authorize{Gateway: h.addr("gw")}})
	fid, r := h.declare("gw", "alice", 10, 1, 0)
	if r.Code != CodeOK {
		t.Fatal(r.Log)
	}
	h.reportAll(fid, 0)
	h.ok(nodeName(4), Msg{ReportLost: &ReportLost{FID: fid, Column: 4}})
	h.until(int(h.params.RepairDelay11)+1, func() bool { r, _ := h.order(fid, 4); return r.Eligible <= h.now })
	h.fail(nodeName(12), claim(fid, 4), CodeInvalid) // 8.8.3.0/24 holds column 3
	h.ok(nodeName(13), claim(fid, 4))
	for _, c := range []struct {
		a, b string
		same bool
	}{
		{"https://8.8.3.1", "https://8.8.3.200:9000", true},
		{"https://8.8.3.1", "https://8.8.4.1", false},
		{"https://[2001:db8:1::1]", "https://[2001:db8:1:2::1]", true},
		{"https://[2001:db8:1::1]", "https://[2001:db8:2::1]", false},
		{"https://Node.Example.org", "https://node.example.org:444", true},
		{"https://a.example.org", "https://b.example.org", false},
	} {
		if got := sameNetwork(c.a, c.b); got != c.same {
			t.Errorf("sameNetwork(%s, %s) = %v", c.a, c.b, got)
		}
	}
}
