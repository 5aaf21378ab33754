package ledger

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/types"
)

// proofHarness: a chain with proofs on (epochs of 30 s, 20 s to answer),
// fees and deposits as on dev, and a stored v2 file on nodes 0..11 whose
// fragments the test holds.
type proofHarness struct {
	*harness
	fid   types.FID
	frags map[[2]int][]byte
	// honest nodes answer their challenges in every block until runs;
	// the test drives the others.
	honest map[int]bool
	// others: the fragments of more files the test stored.
	others map[types.FID]map[[2]int][]byte
}

func newProofHarness(t *testing.T, edit func(*Params)) *proofHarness {
	h := newHarnessWith(t, true, func(p *Params) {
		p.EpochSeconds, p.ProofWindow = 30, 20
		if edit != nil {
			edit(p)
		}
	})
	ph := &proofHarness{harness: h, honest: map[int]bool{}, others: map[types.FID]map[[2]int][]byte{}}
	for i := range 14 {
		ph.honest[i] = true
	}
	h.step = ph.step
	h.setup()
	ph.fid, ph.frags = ph.storeV2("alice", 0, 3<<20, 1)
	return ph
}

// step runs a block of one second with the honest nodes' answers to their
// open challenges.
func (ph *proofHarness) step() {
	var txs [][]byte
	for i := range 14 {
		if !ph.honest[i] || ph.frags == nil {
			continue
		}
		for k, c := range ph.challenges(i) {
			txs = append(txs, ph.sign(nodeName(i), submit(c, ph.proof(c)), uint64(k)))
		}
	}
	for _, r := range ph.block(1, txs...) {
		if r.Code != CodeOK {
			ph.t.Fatalf("an honest proof failed: %d %s", r.Code, r.Log)
		}
	}
}

// do runs one message in its own block, with the honest nodes' answers
// (a node the test drives sends its own).
func (ph *proofHarness) do(name string, m Msg) Result {
	return ph.block(1, ph.sign(name, m, 0))[0]
}

// storeV2 encodes size random bytes as owner's v2 file, declares it on nodes
// first..first+11 and has them report.
func (h *harness) storeV2(owner string, first, size int, seed uint64) (types.FID, map[[2]int][]byte) {
	h.t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 0))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	frags := map[[2]int][]byte{}
	res, err := codec.Encode(context.Background(), bytes.NewReader(data), codec.SinkFunc(func(s *codec.Segment) error {
		for j, f := range s.Fragments {
			frags[[2]int{int(s.Index), j}] = bytes.Clone(f)
		}
		return nil
	}), codec.WithOwner(h.addr(owner)))
	if err != nil {
		h.t.Fatal(err)
	}
	h.ok("gw", Msg{DeclareFile: &DeclareFile{Owner: h.addr(owner), FID: res.FID, Name: "proved.bin", Territory: "home",
		Layout: res.Layout, Columns: h.nodes(first)}})
	h.reportAll(res.FID, first)
	return res.FID, frags
}

// until runs one-second blocks until cond holds (at most n of them).
func (h *harness) until(n int, cond func() bool) bool {
	for range n {
		if cond() {
			return true
		}
		if h.step != nil {
			h.step()
		} else {
			h.block(1)
		}
	}
	return cond()
}

func (h *harness) challenges(node int) []Challenge {
	return query[[]Challenge](h, "challenges/"+h.addr(nodeName(node)).String())
}

// proof is the right answer to c.
func (ph *proofHarness) proof(c Challenge) []byte {
	ph.t.Helper()
	frags := ph.frags
	if c.FID != ph.fid {
		frags = ph.others[c.FID]
	}
	frag := frags[[2]int{int(c.Segment), int(c.Column)}]
	ob, _ := codec.Outboard(frag)
	p, err := codec.SliceChunk(bytes.NewReader(frag), ob, c.Chunk)
	if err != nil {
		ph.t.Fatal(err)
	}
	return p
}

func submit(c Challenge, slice []byte) Msg {
	return Msg{SubmitProof: &SubmitProof{FID: c.FID, Column: c.Column, Segment: c.Segment, Slice: slice}}
}

// TestProofsEveryEpoch: every node holding columns is challenged once per
// epoch; right proofs pass, earn proven bytes, and the epoch's rewards sum
// to what the pool paid, split by proven bytes.
func TestProofsEveryEpoch(t *testing.T) {
	h := newProofHarness(t, nil)
	seen := map[int]int{}
	start := h.now
	for h.now < start+60 {
		h.step()
		for _, e := range h.ended {
			if e.Type != EventChallenge || e.Attr(AttrAction) != ActionChallenged {
				continue
			}
			i := -1
			for j := range 14 {
				if e.Attr(AttrNode) == h.addr(nodeName(j)).String() {
					i = j
				}
			}
			if i < 0 || i >= 12 || e.Attr(AttrFID) != h.fid.String() || e.Attr(AttrColumn) != strconv.Itoa(i) {
				t.Fatalf("challenge of a node that holds nothing, or of the wrong column: %+v", e)
			}
			seen[i]++
		}
	}
	h.step() // the answers to the last block's challenges
	f := h.mustFile(h.fid)
	for i := range 12 {
		// 60 s of block time is two epochs: one challenge in each (the
		// first may have come before the file was stored).
		if seen[i] < 1 || seen[i] > 2 {
			t.Errorf("node %d: challenged %d times in two epochs", i, seen[i])
		}
		if n := h.node(i); n.Passed < uint64(seen[i]) || n.Missed != 0 || n.State != NodeActive || n.Proven != n.Passed*ColumnBytes(&f.Layout) {
			t.Errorf("node %d after %d proofs: %+v", i, seen[i], n)
		}
	}
	// Close the epoch in progress; the rewards are what left the pool.
	before := query[Pool](h.harness, "pool")
	var earned, proven uint64
	balances := map[int]uint64{}
	for i := range 12 {
		balances[i] = h.account(nodeName(i)).Balance
	}
	h.until(40, func() bool { return query[Pool](h.harness, "pool").Epoch != before.Epoch })
	after := query[Pool](h.harness, "pool")
	for i := range 12 {
		earned += h.account(nodeName(i)).Balance - balances[i]
		proven += h.node(i).Proven
	}
	// The pool also took the few blocks' fees (none here: no transaction
	// ran) and paid exactly what the nodes earned.
	if earned == 0 || before.Balance-after.Balance != earned {
		t.Fatalf("pool %d -> %d, nodes earned %d", before.Balance, after.Balance, earned)
	}
}

func (h *harness) mustFile(fid types.FID) File {
	f, err := h.file(fid)
	if err != nil {
		h.t.Fatal(err)
	}
	return f
}

// nextChallenge runs blocks until node i has an open challenge.
func (ph *proofHarness) nextChallenge(i int) Challenge {
	ph.t.Helper()
	var cs []Challenge
	if !ph.until(40, func() bool { cs = ph.challenges(i); return len(cs) > 0 }) {
		ph.t.Fatalf("node %d never challenged", i)
	}
	return cs[0]
}

// TestWrongProofs: every way a proof is wrong costs a fault (the message
// fails, the fault stays), except those that answer no open challenge,
// which change nothing.
func TestWrongProofs(t *testing.T) {
	h := newProofHarness(t, nil)
	h.honest[0], h.honest[1], h.honest[2] = false, false, false
	p := h.params
	flip := func(b []byte, i int) []byte { b = bytes.Clone(b); b[i] ^= 1; return b }
	wrong := []struct {
		name  string
		slice func(c Challenge) []byte
	}{
		{"another chunk", func(c Challenge) []byte {
			c.Chunk = (c.Chunk + 1) % (c.Size / types.ProofChunk)
			return h.proof(c)
		}},
		{"a flipped byte", func(c Challenge) []byte { return flip(h.proof(c), len(h.proof(c))-7) }},
		{"another fragment", func(c Challenge) []byte {
			c.Column = (c.Column + 1) % types.TotalShards
			return h.proof(c)
		}},
		{"empty", func(Challenge) []byte { return nil }},
	}
	for k, w := range wrong {
		c := h.nextChallenge(0)
		stake := h.node(0).Stake
		if r := h.do(nodeName(0), submit(c, w.slice(c))); r.Code != CodeBadProof {
			t.Fatalf("%s: code %d (%s), want a bad proof", w.name, r.Code, r.Log)
		}
		n := h.node(0)
		if n.Missed != uint64(k+1) || n.Stake != stake-p.FaultPenalty || len(h.challenges(0)) != 0 {
			t.Fatalf("%s: the fault is not recorded: %+v", w.name, n)
		}
		if n.Faults >= p.SuspectAfter && n.State != NodeSuspect {
			t.Fatalf("%s: %d faults in a row, state %s", w.name, n.Faults, n.State)
		}
	}

	// A right proof: the node is active again, its faults forgiven.
	c := h.nextChallenge(0)
	good := h.proof(c)
	h.ok(nodeName(0), submit(c, good))
	if n := h.node(0); n.State != NodeActive || n.Faults != 0 || n.Passed != 1 {
		t.Fatalf("after a good proof: %+v", n)
	}
	// Replayed, from a node not challenged, and late: nothing to answer.
	h.fail(nodeName(0), submit(c, good), CodeNotFound)
	h.fail(nodeName(13), submit(c, good), CodeNotFound)
	c = h.nextChallenge(1)
	missed := h.node(1).Missed
	h.block(p.ProofWindow + 1)
	if n := h.node(1); n.Missed != missed+1 {
		t.Fatalf("a challenge left unanswered past its window: %+v", n)
	}
	h.fail(nodeName(1), submit(c, h.proof(c)), CodeNotFound)
	if h.node(0).Missed != uint64(len(wrong)) {
		t.Fatal("answers to no challenge changed the node's record")
	}
	// A proof too big to be one is refused before it is checked.
	c = h.nextChallenge(2)
	h.fail(nodeName(2), submit(c, make([]byte, MaxProofBytes+1)), CodeInvalid)
}

// TestSuspectThenFaulty: missed proofs in a row make a node suspect (no new
// columns), then faulty (its columns marked for repair); a proof between
// them brings a suspect back.
func TestSuspectThenFaulty(t *testing.T) {
	h := newProofHarness(t, nil)
	h.honest[3] = false
	p := h.params
	miss := func(i int) {
		h.nextChallenge(i)
		h.until(int(p.ProofWindow)+2, func() bool { return len(h.challenges(i)) == 0 })
	}
	for range p.SuspectAfter {
		miss(3)
	}
	if n := h.node(3); n.State != NodeSuspect || n.Faults != p.SuspectAfter {
		t.Fatalf("after %d misses: %+v", p.SuspectAfter, n)
	}
	// No new columns for a suspect node.
	l, fid := layoutOf(1000, 99)
	cols := h.nodes(2) // nodes 2..13: node 3 among them
	if r := h.do("gw", Msg{DeclareFile: &DeclareFile{Owner: h.addr("alice"), FID: fid, Name: "x", Territory: "home", Layout: l, Columns: cols}}); r.Code != CodeInvalid {
		t.Fatalf("a suspect node took a column: %d %s", r.Code, r.Log)
	}
	for h.node(3).State != NodeFaulty {
		if h.node(3).Faults > p.FaultyAfter {
			t.Fatalf("never faulty: %+v", h.node(3))
		}
		miss(3)
	}
	h.until(2, func() bool { return false }) // the sweep re-rates its columns
	rs := query[RestoralQueue](h.harness, "restorals").Orders
	if len(rs) != 1 || rs[0].FID != h.fid || rs[0].Column != 3 || rs[0].Reason != DownFaulty {
		t.Fatalf("restoral orders: %+v", rs)
	}
	// A faulty node is not challenged any more.
	h.until(70, func() bool { return false })
	if cs := h.challenges(3); len(cs) != 0 {
		t.Fatalf("a faulty node challenged: %+v", cs)
	}
	if n := h.node(3); n.Stake != 1000-n.Missed*p.FaultPenalty || n.Penalties != n.Missed*p.FaultPenalty {
		t.Fatalf("stake after %d faults: %+v", n.Missed, n)
	}
}

// TestReportMissingAndLost: a gateway's report of a bad fragment challenges
// its node on it (a bounded number each epoch); a node's own report of a
// lost column marks it for repair and drops its challenges without a fault.
func TestReportMissingAndLost(t *testing.T) {
	h := newProofHarness(t, func(p *Params) { p.ReportsPerEpoch = 2 })
	h.honest[5], h.honest[6] = false, false
	rm := func(col uint8) Msg { return Msg{ReportMissing: &ReportMissing{FID: h.fid, Column: col, Segment: 0}} }
	h.fail("alice", rm(5), CodeUnauthorized)
	// In one block (so no epoch ends between them).
	rs := h.block(0, h.sign("gw", rm(5), 0), h.sign("gw", rm(6), 1), h.sign("gw", rm(7), 2))
	if rs[0].Code != CodeOK || rs[1].Code != CodeOK || rs[2].Code != CodeTooMany {
		t.Fatalf("reports: %+v", rs)
	}
	cs := h.challenges(5)
	if len(cs) != 1 || !cs[0].Targeted || cs[0].Segment != 0 || cs[0].Column != 5 {
		t.Fatalf("targeted challenge: %+v", cs)
	}
	h.ok(nodeName(5), submit(cs[0], h.proof(cs[0])))
	if n := h.node(5); n.Passed != 1 || n.Proven != 0 {
		t.Fatalf("a targeted proof earns nothing: %+v", n)
	}

	// A column not reported yet cannot be reported lost.
	l, pfid := layoutOf(1000, 77)
	h.ok("gw", Msg{DeclareFile: &DeclareFile{Owner: h.addr("alice"), FID: pfid, Name: "pending", Territory: "home", Layout: l, Columns: h.nodes(2)}})
	h.fail(nodeName(8), Msg{ReportLost: &ReportLost{FID: pfid, Column: 6}}, CodeConflict)
	// An exiting node is still challenged on what it holds.
	h.ok(nodeName(9), Msg{ExitNode: &ExitNode{}})
	if c := h.nextChallenge(9); c.Node != h.addr(nodeName(9)) {
		t.Fatalf("exiting node's challenge: %+v", c)
	}

	// Node 6 says it lost its column before answering.
	stake := h.node(6).Stake
	h.ok(nodeName(6), Msg{ReportLost: &ReportLost{FID: h.fid, Column: 6}})
	if n := h.node(6); n.Missed != 0 || n.Lost != 1 || n.Stake != stake-h.params.LostPenalty || len(h.challenges(6)) != 0 {
		t.Fatalf("after ReportLost: %+v, %d open", n, len(h.challenges(6)))
	}
	var lost []Restoral
	for _, r := range query[RestoralQueue](h.harness, "restorals").Orders {
		if r.Reason == DownLost {
			lost = append(lost, r)
		}
	}
	if len(lost) != 1 || lost[0].Column != 6 {
		t.Fatalf("restoral orders: %+v", lost)
	}
	h.fail(nodeName(6), Msg{ReportLost: &ReportLost{FID: h.fid, Column: 6}}, CodeConflict)
	h.fail(nodeName(7), Msg{ReportLost: &ReportLost{FID: h.fid, Column: 6}}, CodeUnauthorized)
	// Its column holds no bytes to prove any more: no epoch challenge.
	h.until(70, func() bool { return false })
	if cs := h.challenges(6); len(cs) != 0 {
		t.Fatalf("a lost column challenged: %+v", cs)
	}
}

// TestFees: every transaction pays its fee to the pool; a key without the
// fee is refused in CheckTx and writes nothing, not even an account.
func TestFees(t *testing.T) {
	h := newHarnessWith(t, true, func(p *Params) { p.EpochSeconds = 0 })
	p := h.params
	before := query[AccountView](h, "account/"+PoolAddress.String()).Balance
	b := h.sign("alice", Msg{Transfer: &Transfer{To: h.addr("bob"), Amount: 5}}, 0)
	fee := p.FeePerTx + p.FeePerKiB*uint64((len(b)+1023)/1024)
	h.block(1, b)
	if a := h.account("alice").Balance; a != 1_000_000-5-fee {
		t.Fatalf("alice %d, want %d", a, 1_000_000-5-fee)
	}
	if got := query[AccountView](h, "account/"+PoolAddress.String()).Balance - before; got != fee {
		t.Fatalf("the pool took %d, want %d", got, fee)
	}
	// A key with nothing.
	tx := h.sign("stranger", Msg{Transfer: &Transfer{To: h.addr("bob"), Amount: 1}}, 0)
	if _, err := h.l.CheckTx(tx); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("CheckTx of a key without the fee: %v", err)
	}
	if r := h.block(1, tx)[0]; r.Code != CodeInsufficientFunds {
		t.Fatalf("DeliverTx: %+v", r)
	}
	if h.kv.Get([]byte(addrKey(pAccount, h.addr("stranger")))) != nil {
		t.Fatal("a key that cannot pay the fee wrote an account record")
	}
	// The dev faucet is free: that is how a key gets its first coins.
	h.ok("stranger", Msg{Faucet: &Faucet{}})
	if a := h.account("stranger").Balance; a != p.FaucetAmount {
		t.Fatalf("faucet: %d", a)
	}
	// A gateway's deposit is locked, and returned when it leaves.
	bal := h.account("gw").Balance
	h.ok("gw", Msg{RegisterGateway: &RegisterGateway{Endpoint: "http://127.0.0.1:7000"}})
	v := query[AccountView](h, "account/"+h.addr("gw").String())
	if v.GatewayDeposit != p.GatewayDeposit || v.Balance != bal-p.GatewayDeposit-h.lastFee {
		t.Fatalf("registered: %+v (balance before %d)", v, bal)
	}
	h.ok("gw", Msg{UnregisterGateway: &UnregisterGateway{}})
	if v := query[AccountView](h, "account/"+h.addr("gw").String()); v.GatewayDeposit != 0 || v.Balance != bal-2*h.lastFee {
		t.Fatalf("unregistered: %+v", v)
	}
	// Registering without the deposit fails.
	h.ok("stranger", Msg{Transfer: &Transfer{To: h.addr("bob"), Amount: p.FaucetAmount - p.GatewayDeposit/2}})
	h.fail("stranger", Msg{RegisterGateway: &RegisterGateway{Endpoint: "http://127.0.0.1:7002"}}, CodeInsufficientFunds)
	if _, ok := load[Gateway](state{newOverlay(h.kv)}, addrKey(pGateway, h.addr("stranger"))); ok {
		t.Fatal("a gateway registered without its deposit")
	}
	// A node raises its stake.
	h.ok(nodeName(0), Msg{RegisterNode: &RegisterNode{Endpoint: "http://127.0.0.1:8000", Capacity: 1 << 30, Stake: 1000}})
	h.ok(nodeName(0), Msg{IncreaseStake: &IncreaseStake{Amount: 500}})
	if n := h.node(0); n.Stake != 1500 {
		t.Fatalf("stake %d", n.Stake)
	}
}

// TestCheckTxSeesTheDecidedBlock: between a block's end and its commit (when
// CometBFT may check a transaction), CheckTx sees the block's writes: a key
// funded by the faucet in it pays its next fee (deoss dev failed without).
func TestCheckTxSeesTheDecidedBlock(t *testing.T) {
	h := newHarnessWith(t, true, func(p *Params) {})
	h.height++
	h.l.BeginBlock(h.height, h.now+1, nil)
	if r := h.l.DeliverTx(h.sign("newcomer", Msg{Faucet: &Faucet{}}, 0)); r.Code != CodeOK {
		t.Fatal(r.Log)
	}
	h.l.EndBlock()
	next := h.sign("newcomer", Msg{Transfer: &Transfer{To: h.addr("bob"), Amount: 1}}, 1)
	if _, err := h.l.CheckTx(next); err != nil {
		t.Fatalf("CheckTx before the funding block's commit: %v", err)
	}
	h.commit()
	if _, err := h.l.CheckTx(next); err != nil {
		t.Fatalf("CheckTx after it: %v", err)
	}
}
