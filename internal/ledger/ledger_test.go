package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/types"
)

const seg = types.SegmentSize

func TestEnvelopeRejections(t *testing.T) {
	h := newHarness(t, true)
	m := Msg{Transfer: &Transfer{To: h.addr("bob"), Amount: 5}}

	// Bad signature: a flipped bit in the signed body.
	tx := Tx{ChainID: testChain, Msg: m}
	tx.Sign(h.key("alice"))
	tx.Msg.Transfer = &Transfer{To: h.addr("bob"), Amount: 500}
	if r := h.block(1, tx.Encode())[0]; r.Code != CodeBadSignature {
		t.Fatalf("bad signature: %v", r)
	}
	// Wrong chain id.
	tx = Tx{ChainID: "other-chain", Msg: m}
	tx.Sign(h.key("alice"))
	if r := h.block(1, tx.Encode())[0]; r.Code != CodeWrongChain {
		t.Fatalf("wrong chain: %v", r)
	}
	if _, err := h.l.CheckTx(tx.Encode()); !errors.Is(err, ErrWrongChain) {
		t.Fatalf("CheckTx wrong chain: %v", err)
	}
	// A good one, then the same bytes again (replay), then a skipped nonce.
	good := h.sign("alice", m, 0)
	if r := h.block(1, good)[0]; r.Code != CodeOK {
		t.Fatal(r)
	}
	if r := h.block(1, good)[0]; r.Code != CodeBadNonce {
		t.Fatalf("replay: %v", r)
	}
	if _, err := h.l.CheckTx(good); !errors.Is(err, ErrBadNonce) {
		t.Fatalf("CheckTx replay: %v", err)
	}
	if r := h.block(1, h.sign("alice", m, 1))[0]; r.Code != CodeBadNonce {
		t.Fatalf("skipped nonce: %v", r)
	}
	// Two in one block in order are fine; the nonce advanced twice.
	n := h.account("alice").Nonce
	rs := h.block(1, h.sign("alice", m, 0), h.sign("alice", m, 1))
	if rs[0].Code != CodeOK || rs[1].Code != CodeOK || h.account("alice").Nonce != n+2 {
		t.Fatalf("two in a block: %v", rs)
	}
	// Malformed bytes, no message, two messages.
	for name, b := range map[string][]byte{
		"garbage": []byte("not cbor"),
		"empty":   nil,
		"no msg":  signed(h, Tx{ChainID: testChain}),
		"two msgs": signed(h, Tx{ChainID: testChain, Msg: Msg{
			Transfer: &Transfer{To: h.addr("bob"), Amount: 1}, Faucet: &Faucet{}}}),
	} {
		if r := h.block(1, b)[0]; r.Code != CodeMalformed {
			t.Errorf("%s: %v", name, r)
		}
	}
	// A non-canonical encoding of a valid transaction is refused, even signed
	// by its sender: here the nonce 0 written as a two-byte integer.
	tx = Tx{ChainID: testChain, Nonce: 0, Msg: m, Sender: h.addr("bob")}
	body := marshal(&tx)
	i := bytes.Index(body, []byte{0x03, 0x00}) // key 3 (nonce), value 0
	if i < 0 {
		t.Fatal("nonce not found in encoding")
	}
	alt := append(append(bytes.Clone(body[:i+1]), 0x18, 0x00), body[i+2:]...)
	if r := h.block(1, signBody(h, "bob", alt))[0]; r.Code != CodeMalformed {
		t.Fatalf("non-canonical body: %v", r)
	}
	// Nobody else can re-encode a signed body: the signature breaks.
	good = h.sign("bob", m, 0)
	var env envelope
	mustUnmarshal(good, &env)
	j := bytes.Index(env.Body, []byte{0x03, 0x00})
	env.Body = append(append(bytes.Clone(env.Body[:j+1]), 0x18, 0x00), env.Body[j+2:]...)
	if r := h.block(1, marshal(env))[0]; r.Code != CodeMalformed && r.Code != CodeBadSignature {
		t.Fatalf("re-encoded by another: %v", r)
	}
}

func signed(h *harness, tx Tx) []byte {
	tx.Sign(h.key("alice"))
	return tx.Encode()
}

func TestBalances(t *testing.T) {
	h := newHarness(t, true)
	h.ok("alice", Msg{Transfer: &Transfer{To: h.addr("bob"), Amount: 300}})
	if a, b := h.account("alice").Balance, h.account("bob").Balance; a != 999_700 || b != 1_000_300 {
		t.Fatalf("balances %d %d", a, b)
	}
	h.fail("alice", Msg{Transfer: &Transfer{To: h.addr("bob"), Amount: 2_000_000}}, CodeInsufficientFunds)
	h.fail("alice", Msg{Transfer: &Transfer{To: h.addr("bob")}}, CodeInvalid)
	h.fail("alice", Msg{Transfer: &Transfer{To: h.addr("alice"), Amount: 1}}, CodeInvalid)
	// A failed message still used its nonce and changed nothing else.
	if a := h.account("alice"); a.Balance != 999_700 || a.Nonce != 4 {
		t.Fatalf("after failures: %+v", a)
	}
	h.ok("carol", Msg{Faucet: &Faucet{}})
	if c := h.account("carol").Balance; c != DefaultParams().FaucetAmount {
		t.Fatalf("faucet gave %d", c)
	}
	prod := newHarness(t, false)
	prod.fail("carol", Msg{Faucet: &Faucet{}}, CodeUnauthorized)
}

func TestTerritories(t *testing.T) {
	h := newHarness(t, true)
	p := DefaultParams()
	h.ok("alice", Msg{BuyTerritory: &BuyTerritory{Name: "home", GiB: 2, Days: 10}})
	tr := h.territory("alice", "home")
	if tr.Total != 2<<30 || tr.Expires != h.now+10*86400 || h.account("alice").Balance != 1_000_000-2*10*p.PricePerGiBDay {
		t.Fatalf("bought: %+v", tr)
	}
	h.fail("alice", Msg{BuyTerritory: &BuyTerritory{Name: "home", GiB: 1, Days: 1}}, CodeConflict)
	h.fail("alice", Msg{BuyTerritory: &BuyTerritory{Name: "x", GiB: 0, Days: 1}}, CodeInvalid)
	h.fail("alice", Msg{BuyTerritory: &BuyTerritory{Name: "a/b", GiB: 1, Days: 1}}, CodeInvalid)
	h.fail("alice", Msg{BuyTerritory: &BuyTerritory{Name: "big", GiB: 1 << 30, Days: 36500}}, CodeInsufficientFunds)
	h.fail("alice", Msg{BuyTerritory: &BuyTerritory{Name: "huge", GiB: 1 << 40, Days: 1}}, CodeInvalid)
	h.ok("alice", Msg{ExpandTerritory: &ExpandTerritory{Name: "home", GiB: 1}})
	if tr := h.territory("alice", "home"); tr.Total != 3<<30 {
		t.Fatalf("expanded: %+v", tr)
	}
	h.fail("alice", Msg{ExpandTerritory: &ExpandTerritory{Name: "nope", GiB: 1}}, CodeNotFound)
	h.fail("bob", Msg{ExpandTerritory: &ExpandTerritory{Name: "home", GiB: 1}}, CodeNotFound)
	before := h.territory("alice", "home").Expires
	h.ok("alice", Msg{RenewTerritory: &RenewTerritory{Name: "home", Days: 5}})
	if tr := h.territory("alice", "home"); tr.Expires != before+5*86400 {
		t.Fatalf("renewed: %+v", tr)
	}
	// Past its expiry a territory cannot be expanded; renewal counts from now.
	h.block(20 * 86400)
	h.fail("alice", Msg{ExpandTerritory: &ExpandTerritory{Name: "home", GiB: 1}}, CodeExpired)
	h.ok("alice", Msg{RenewTerritory: &RenewTerritory{Name: "home", Days: 1}})
	if tr := h.territory("alice", "home"); tr.Expires != h.now+86400 {
		t.Fatalf("renewed after expiry: %+v (now %d)", tr, h.now)
	}
	if ts := query[[]Territory](h, "territories/"+h.addr("alice").String()); len(ts) != 1 {
		t.Fatalf("list: %v", ts)
	}
}

func TestGatewaysAndNodes(t *testing.T) {
	h := newHarness(t, true)
	h.ok("gw", Msg{RegisterGateway: &RegisterGateway{Endpoint: "http://127.0.0.1:7000"}})
	h.fail("gw", Msg{RegisterGateway: &RegisterGateway{Endpoint: "http://127.0.0.1:7000"}}, CodeConflict)
	h.fail("gw2", Msg{RegisterGateway: &RegisterGateway{Endpoint: "ftp://x"}}, CodeInvalid)
	h.ok("gw", Msg{UpdateGateway: &UpdateGateway{Endpoint: "https://gw.example:443"}})
	if g := query[Gateway](h, "gateway/"+h.addr("gw").String()); g.Endpoint != "https://gw.example:443" {
		t.Fatalf("updated: %+v", g)
	}
	h.ok("alice", Msg{Authorize: &Authorize{Gateway: h.addr("gw")}})
	h.fail("alice", Msg{Authorize: &Authorize{Gateway: h.addr("gw")}}, CodeConflict)
	h.fail("alice", Msg{Authorize: &Authorize{Gateway: h.addr("gw2")}}, CodeNotFound)
	if gs := query[[]types.Address](h, "authorized/"+h.addr("alice").String()); len(gs) != 1 || gs[0] != h.addr("gw") {
		t.Fatalf("authorized: %v", gs)
	}
	h.ok("alice", Msg{Revoke: &Revoke{Gateway: h.addr("gw")}})
	h.fail("alice", Msg{Revoke: &Revoke{Gateway: h.addr("gw")}}, CodeNotFound)
	h.ok("gw", Msg{UnregisterGateway: &UnregisterGateway{}})
	h.fail("gw", Msg{UnregisterGateway: &UnregisterGateway{}}, CodeNotFound)

	h.fail(nodeName(0), Msg{RegisterNode: &RegisterNode{Endpoint: "http://127.0.0.1:8000", Capacity: 1 << 30, Stake: 1}}, CodeInvalid)
	h.fail(nodeName(0), Msg{RegisterNode: &RegisterNode{Endpoint: "http://127.0.0.1:8000", Capacity: 1 << 30, Stake: 20_000}}, CodeInsufficientFunds)
	h.fail(nodeName(0), Msg{RegisterNode: &RegisterNode{Endpoint: "http://127.0.0.1:8000", Capacity: 10, Stake: 1000}}, CodeInvalid)
	h.ok(nodeName(0), Msg{RegisterNode: &RegisterNode{Endpoint: "http://127.0.0.1:8000", Capacity: 1 << 30, Stake: 1000}})
	if b := h.account(nodeName(0)).Balance; b != 9000 {
		t.Fatalf("stake not taken: %d", b)
	}
	h.ok(nodeName(0), Msg{UpdateNode: &UpdateNode{Endpoint: "http://127.0.0.1:8100", Capacity: 2 << 30}})
	if n := h.node(0); n.Endpoint != "http://127.0.0.1:8100" || n.Capacity != 2<<30 || n.State != NodeActive {
		t.Fatalf("updated: %+v", n)
	}
	if ns := query[[]Node](h, "nodes"); len(ns) != 1 {
		t.Fatalf("nodes: %v", ns)
	}
	// An empty node exits at once and gets its stake back.
	h.ok(nodeName(0), Msg{ExitNode: &ExitNode{}})
	if ns := query[[]Node](h, "nodes"); len(ns) != 0 || h.account(nodeName(0)).Balance != 10_000 {
		t.Fatalf("exit: %v %d", ns, h.account(nodeName(0)).Balance)
	}
}

func TestFileLifecycle(t *testing.T) {
	h := newHarness(t, true)
	h.setup()
	fid, r := h.declare("gw", "alice", 2*seg+5, 1, 0) // 3 segments
	if r.Code != CodeOK {
		t.Fatal(r)
	}
	charge := uint64(3 * seg)
	if tr := h.territory("alice", "home"); tr.Locked != charge || tr.Used != 0 {
		t.Fatalf("locked: %+v", tr)
	}
	if n := h.node(0); n.Assigned != 3*types.FragmentSize {
		t.Fatalf("node assigned: %+v", n)
	}
	cols := query[[]NodeColumn](h, "columns/"+h.addr(nodeName(5)).String())
	if len(cols) != 1 || cols[0].FID != fid || cols[0].Column != 5 || cols[0].Reported {
		t.Fatalf("columns: %+v", cols)
	}
	// Reports: only the assigned node, once.
	h.fail(nodeName(1), Msg{ReportColumn: &ReportColumn{FID: fid, Column: 0}}, CodeUnauthorized)
	h.fail(nodeName(13), Msg{ReportColumn: &ReportColumn{FID: fid, Column: 0}}, CodeUnauthorized)
	h.ok(nodeName(0), Msg{ReportColumn: &ReportColumn{FID: fid, Column: 0}})
	h.fail(nodeName(0), Msg{ReportColumn: &ReportColumn{FID: fid, Column: 0}}, CodeConflict)
	h.fail(nodeName(0), Msg{ReportColumn: &ReportColumn{FID: fid, Column: 12}}, CodeInvalid)
	// Reassign: not a reported column, not to a node of the file, only by the
	// declaring gateway; the new node then reports.
	h.fail("gw", Msg{ReassignColumn: &ReassignColumn{FID: fid, Column: 0, Node: h.addr(nodeName(12))}}, CodeConflict)
	h.fail("gw", Msg{ReassignColumn: &ReassignColumn{FID: fid, Column: 1, Node: h.addr(nodeName(2))}}, CodeInvalid)
	h.fail("gw2", Msg{ReassignColumn: &ReassignColumn{FID: fid, Column: 1, Node: h.addr(nodeName(12))}}, CodeUnauthorized)
	h.ok("gw", Msg{ReassignColumn: &ReassignColumn{FID: fid, Column: 1, Node: h.addr(nodeName(12))}})
	if n := h.node(1); n.Assigned != 0 {
		t.Fatalf("old node still assigned: %+v", n)
	}
	h.fail(nodeName(1), Msg{ReportColumn: &ReportColumn{FID: fid, Column: 1}}, CodeUnauthorized)
	h.ok(nodeName(12), Msg{ReportColumn: &ReportColumn{FID: fid, Column: 1}})
	for j := 2; j < 12; j++ {
		h.ok(nodeName(j), Msg{ReportColumn: &ReportColumn{FID: fid, Column: uint8(j)}})
	}
	f, _ := h.file(fid)
	if f.State != FileStored || f.Deadline != 0 {
		t.Fatalf("not stored: %+v", f)
	}
	if tr := h.territory("alice", "home"); tr.Locked != 0 || tr.Used != charge {
		t.Fatalf("charged: %+v", tr)
	}
	if fs := query[[]UserFile](h, "files/"+h.addr("alice").String()); len(fs) != 1 || fs[0].State != FileStored || fs[0].Size != 2*seg+5 {
		t.Fatalf("files: %+v", fs)
	}
	// Deleting: not by another user; by the owner. Space and node bytes return.
	h.fail("bob", Msg{DeleteFile: &DeleteFile{FID: fid, Owner: h.addr("alice")}}, CodeUnauthorized)
	h.fail("bob", Msg{DeleteFile: &DeleteFile{FID: fid, Owner: h.addr("bob")}}, CodeNotFound)
	h.ok("alice", Msg{DeleteFile: &DeleteFile{FID: fid, Owner: h.addr("alice")}})
	if _, err := h.file(fid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("file remains: %v", err)
	}
	if tr := h.territory("alice", "home"); tr.Used != 0 || tr.Locked != 0 {
		t.Fatalf("space not returned: %+v", tr)
	}
	for i := range 13 {
		if n := h.node(i); n.Assigned != 0 {
			t.Fatalf("node %d keeps %d bytes", i, n.Assigned)
		}
	}
}

func TestDeclareRejections(t *testing.T) {
	h := newHarness(t, true)
	h.setup()
	// A gateway alice did not authorize; a user without territory.
	if _, r := h.declare("gw2", "alice", 10, 1, 0); r.Code != CodeUnauthorized {
		t.Fatalf("unauthorized gateway: %v", r)
	}
	h.ok("bob", Msg{Authorize: &Authorize{Gateway: h.addr("gw")}})
	if _, r := h.declare("gw", "bob", 10, 1, 0); r.Code != CodeNotFound {
		t.Fatalf("no territory: %v", r)
	}
	// Not enough space: 1 GiB holds 32 segments.
	if _, r := h.declare("gw", "alice", 33*seg, 1, 0); r.Code != CodeInsufficientSpace {
		t.Fatalf("space: %v", r)
	}
	l, fid := layoutOf(10, 2)
	declare := func(m DeclareFile) Result {
		m.Owner, m.Territory, m.Name = h.addr("alice"), "home", "f"
		if m.Columns == ([12]types.Address{}) {
			m.Columns = h.nodes(0)
		}
		return h.do("gw", Msg{DeclareFile: &m})
	}
	// The FID must be the layout's.
	wrong := fid
	wrong[0] ^= 1
	if r := declare(DeclareFile{FID: wrong, Layout: l}); r.Code != CodeInvalid {
		t.Fatalf("wrong fid: %v", r)
	}
	// An inconsistent layout (a segment too many).
	bad := l
	bad.Segments = append(append([]types.SegmentLayout(nil), l.Segments...), l.Segments[0])
	if r := declare(DeclareFile{FID: fid, Layout: bad}); r.Code != CodeInvalid {
		t.Fatalf("bad layout: %v", r)
	}
	// Two columns on one node; an unknown node.
	cols := h.nodes(0)
	cols[5] = cols[4]
	if r := declare(DeclareFile{FID: fid, Layout: l, Columns: cols}); r.Code != CodeInvalid {
		t.Fatalf("two columns on one node: %v", r)
	}
	cols = h.nodes(0)
	cols[3] = h.addr("nobody")
	if r := declare(DeclareFile{FID: fid, Layout: l, Columns: cols}); r.Code != CodeInvalid {
		t.Fatalf("unknown node: %v", r)
	}
	// Nothing of the failed declarations remains.
	for i := range 14 {
		if n := h.node(i); n.Assigned != 0 {
			t.Fatalf("node %d: %+v", i, n)
		}
	}
	if tr := h.territory("alice", "home"); tr.Locked != 0 {
		t.Fatalf("locked after failures: %+v", tr)
	}
	// A pending order cannot be declared twice; an expired territory takes none.
	if r := declare(DeclareFile{FID: fid, Layout: l}); r.Code != CodeOK {
		t.Fatal(r)
	}
	if r := declare(DeclareFile{FID: fid, Layout: l}); r.Code != CodeConflict {
		t.Fatalf("twice: %v", r)
	}
	h.block(31 * 86400)
	if _, r := h.declare("gw", "alice", 10, 3, 0); r.Code != CodeExpired {
		t.Fatalf("expired territory: %v", r)
	}
}

func TestOrderExpiry(t *testing.T) {
	h := newHarness(t, true)
	h.setup()
	fid, r := h.declare("gw", "alice", 10, 1, 0)
	if r.Code != CodeOK {
		t.Fatal(r)
	}
	h.ok(nodeName(0), Msg{ReportColumn: &ReportColumn{FID: fid, Column: 0}})
	h.block(DefaultParams().OrderTTL - 10) // not yet
	if f, err := h.file(fid); err != nil || f.State != FilePending {
		t.Fatalf("expired early: %v", err)
	}
	h.block(20)
	if _, err := h.file(fid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("order did not expire: %v", err)
	}
	if tr := h.territory("alice", "home"); tr.Locked != 0 || tr.Used != 0 {
		t.Fatalf("space after expiry: %+v", tr)
	}
	if fs := query[[]UserFile](h, "files/"+h.addr("alice").String()); len(fs) != 0 {
		t.Fatalf("files after expiry: %v", fs)
	}
	// Empty blocks change nothing: the app hash stays.
	before := h.l.AppHash()
	h.block(1)
	h.block(1)
	if !bytes.Equal(before, h.l.AppHash()) {
		t.Fatal("empty blocks changed the app hash")
	}
}

func TestSharedFileOwners(t *testing.T) {
	h := newHarness(t, true)
	h.setup()
	h.ok("bob", Msg{BuyTerritory: &BuyTerritory{Name: "home", GiB: 1, Days: 30}})
	h.ok("bob", Msg{Authorize: &Authorize{Gateway: h.addr("gw")}})
	fid, _ := h.declare("gw", "alice", seg+1, 7, 0)
	// While pending, a second declaration of the same FID is refused.
	if _, r := h.declare("gw", "bob", seg+1, 7, 0); r.Code != CodeConflict {
		t.Fatalf("pending: %v", r)
	}
	h.reportAll(fid, 0)
	// Stored: bob becomes a second owner, charged to his own territory.
	if _, r := h.declare("gw", "bob", seg+1, 7, 0); r.Code != CodeOK {
		t.Fatal(r)
	}
	if _, r := h.declare("gw", "bob", seg+1, 7, 0); r.Code != CodeConflict {
		t.Fatalf("owner twice: %v", r)
	}
	if tr := h.territory("bob", "home"); tr.Used != 2*seg {
		t.Fatalf("bob charged %+v", tr)
	}
	// Alice deletes through her gateway: the file stays for bob.
	h.ok("gw", Msg{DeleteFile: &DeleteFile{FID: fid, Owner: h.addr("alice")}})
	f, err := h.file(fid)
	if err != nil || len(f.Owners) != 1 || f.Owners[0].Address != h.addr("bob") {
		t.Fatalf("after alice: %+v %v", f, err)
	}
	if tr := h.territory("alice", "home"); tr.Used != 0 {
		t.Fatalf("alice still charged: %+v", tr)
	}
	if n := h.node(3); n.Assigned == 0 {
		t.Fatal("columns released while bob owns the file")
	}
	h.ok("bob", Msg{DeleteFile: &DeleteFile{FID: fid, Owner: h.addr("bob")}})
	if _, err := h.file(fid); !errors.Is(err, ErrNotFound) {
		t.Fatal("file survives its last owner")
	}
}

func TestEmptyFileAndExitingNode(t *testing.T) {
	h := newHarness(t, true)
	h.setup()
	l, fid := layoutOf(0, 9)
	r := h.do("gw", Msg{DeclareFile: &DeclareFile{Owner: h.addr("alice"), FID: fid, Name: "empty", Territory: "home", Layout: l}})
	if r.Code != CodeOK {
		t.Fatal(r)
	}
	if f, _ := h.file(fid); f.State != FileStored {
		t.Fatalf("empty file: %+v", f)
	}
	// A node that exits while holding a column is not assigned new ones and
	// is removed (stake back) when its last column goes.
	fid2, _ := h.declare("gw", "alice", 10, 1, 0)
	h.ok(nodeName(0), Msg{ExitNode: &ExitNode{}})
	if n := h.node(0); n.State != NodeExiting {
		t.Fatalf("exiting: %+v", n)
	}
	if _, r := h.declare("gw", "alice", 10, 2, 0); r.Code != CodeInvalid {
		t.Fatalf("assigned to an exiting node: %v", r)
	}
	h.ok("gw", Msg{ReassignColumn: &ReassignColumn{FID: fid2, Column: 0, Node: h.addr(nodeName(12))}})
	if _, err := h.l.Query("node/" + h.addr(nodeName(0)).String()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("exited node remains: %v", err)
	}
	if b := h.account(nodeName(0)).Balance; b != 10_000 {
		t.Fatalf("stake not returned: %d", b)
	}
}

// TestDeterminism: two ledgers fed the same blocks reach the same app hash,
// and a ledger reopened on its committed state continues identically.
func TestDeterminism(t *testing.T) {
	a, b := newHarness(t, true), newHarness(t, true)
	for _, h := range []*harness{a, b} {
		h.setup()
		fid, _ := h.declare("gw", "alice", 3*seg, 1, 0)
		h.reportAll(fid, 0)
	}
	if !bytes.Equal(a.l.AppHash(), b.l.AppHash()) || len(a.l.AppHash()) != 32 {
		t.Fatalf("app hashes differ: %x %x", a.l.AppHash(), b.l.AppHash())
	}
	reopened := New(a.kv, a.l.AppHash())
	a.l = reopened
	a.ok("alice", Msg{Transfer: &Transfer{To: a.addr("bob"), Amount: 1}})
	b.ok("alice", Msg{Transfer: &Transfer{To: b.addr("bob"), Amount: 1}})
	if !bytes.Equal(a.l.AppHash(), b.l.AppHash()) {
		t.Fatal("reopened ledger diverged")
	}
}

func TestQueryErrors(t *testing.T) {
	h := newHarness(t, true)
	for path, want := range map[string]error{
		"nope":                         ErrNotFound,
		"account/xyz":                  ErrInvalid,
		"file/ABC":                     ErrInvalid,
		"file/" + zeroFID():            ErrNotFound,
		"node/" + h.addr("x").String(): ErrNotFound,
	} {
		if _, err := h.l.Query(path); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", path, err, want)
		}
	}
	c := query[ChainInfo](h, "chain")
	if c.ChainID != testChain || !c.Dev || c.Params != h.params {
		t.Fatalf("chain: %+v", c)
	}
}

func zeroFID() string { return types.FID{}.String() }

// layoutV2 returns a synthetic v2 layout of owner and its FID.
func layoutV2(owner types.Address, size uint64, salt byte) (types.Layout, types.FID) {
	l := types.Layout{Version: types.FormatV2, Size: size, Owner: owner}
	for i := range types.ProfileV2.Segments(size, types.EncryptionNone) {
		seg := types.SegmentLayout{Hash: codec.Sum(types.FormatV2, []byte{salt, byte(i)})}
		for j := range seg.Fragments {
			seg.Fragments[j] = codec.Sum(types.FormatV2, []byte{salt, byte(i), byte(j)})
		}
		l.Segments = append(l.Segments, seg)
	}
	return l, codec.FileID(&l)
}

// TestV2Declarations: a v2 FID has one owner, bound into it. Nobody declares
// it for another owner, nobody declares it twice, and a layout that does not
// hash to its FID (another fragment hash, a v1 FID for it) is refused.
func TestV2Declarations(t *testing.T) {
	h := newHarness(t, true)
	h.setup()
	h.ok("bob", Msg{BuyTerritory: &BuyTerritory{Name: "home", GiB: 1, Days: 30}})
	h.ok("bob", Msg{Authorize: &Authorize{Gateway: h.addr("gw")}})
	declare := func(owner string, l types.Layout, fid types.FID) Result {
		return h.do("gw", Msg{DeclareFile: &DeclareFile{Owner: h.addr(owner), FID: fid, Name: "f", Territory: "home", Layout: l, Columns: h.nodes(0)}})
	}
	l, fid := layoutV2(h.addr("alice"), 1000, 1)
	// Bob cannot declare alice's file: neither as is, nor with himself as
	// the owner (then it is another FID).
	if r := declare("bob", l, fid); r.Code != CodeInvalid {
		t.Fatalf("bob declares alice's layout: %v", r)
	}
	lb := l
	lb.Owner = h.addr("bob")
	if r := declare("bob", lb, fid); r.Code != CodeInvalid {
		t.Fatalf("bob's layout under alice's FID: %v", r)
	}
	// A fragment hash changed: the FID no longer matches.
	bad := l
	bad.Segments = append([]types.SegmentLayout(nil), l.Segments...)
	bad.Segments[0].Fragments[5][0] ^= 1
	if r := declare("alice", bad, fid); r.Code != CodeInvalid {
		t.Fatalf("changed fragment hash: %v", r)
	}
	// A v1 FID for a v2 layout, and a v2 FID for a v1 layout.
	v1 := l
	v1.Version, v1.Owner = types.FormatV1, types.Address{}
	if r := declare("alice", l, codec.FileID(&v1)); r.Code != CodeInvalid {
		t.Fatalf("v2 layout with a v1 FID: %v", r)
	}
	if r := declare("alice", v1, fid); r.Code != CodeInvalid {
		t.Fatalf("v1 layout with a v2 FID: %v", r)
	}
	if r := declare("alice", l, fid); r.Code != CodeOK {
		t.Fatal(r)
	}
	if tr := h.territory("alice", "home"); tr.Locked != types.PadUnit {
		t.Fatalf("a 1,000-byte v2 file locks %d bytes, want %d", tr.Locked, types.PadUnit)
	}
	if n := h.node(0); n.Assigned != types.PadUnit/4 {
		t.Fatalf("its column takes %d bytes of a node", n.Assigned)
	}
	h.reportAll(fid, 0)
	if r := declare("alice", l, fid); r.Code != CodeConflict {
		t.Fatalf("declared twice: %v", r)
	}
	if r := declare("bob", l, fid); r.Code == CodeOK {
		t.Fatalf("bob became an owner of a v2 file: %v", r)
	}
	h.checkInvariants()
}

// Endpoints are base URLs only, and off dev chains not aimed at loopback,
// private or link-local addresses: gateways call every registered
// endpoint, so one could point them into their own networks (SSRF), or
// swallow the path they append with a query.
func TestEndpointsValidated(t *testing.T) {
	for _, dev := range []bool{true, false} {
		h := newHarness(t, dev)
		for _, bad := range []string{
			"http://gw.example/peer?x=", "http://gw.example/#frag", "http://user:pw@gw.example", "http://gw.example/some/path", "http://gw.example/",
			"ftp://gw.example", "http://", "gw.example:80",
		} {
			h.fail("gw", Msg{RegisterGateway: &RegisterGateway{Endpoint: bad}}, CodeInvalid)
		}
		inner := []string{"http://127.0.0.1:7000", "http://10.1.2.3", "http://192.168.0.9:80", "http://169.254.169.254", "http://[::1]:80", "http://[fe80::1]", "http://0.0.0.0:80"}
		for _, ep := range inner {
			if dev {
				continue // dev networks run on 127.0.0.1
			}
			h.fail("gw", Msg{RegisterGateway: &RegisterGateway{Endpoint: ep}}, CodeInvalid)
			h.fail(nodeName(0), Msg{RegisterNode: &RegisterNode{Endpoint: ep, Capacity: 1 << 30, Stake: 1000}}, CodeInvalid)
		}
		want := "https://gw.example:8443"
		if dev {
			want = inner[0]
		}
		h.ok("gw", Msg{RegisterGateway: &RegisterGateway{Endpoint: want}})
		h.ok("gw2", Msg{RegisterGateway: &RegisterGateway{Endpoint: "https://203.0.113.7"}})
	}
}

// CheckTx keeps only transactions that passed it, bounded by their bytes:
// refused ones (another chain's, a used nonce) cost a validator no memory.
// Before, each was kept decoded (up to 8,192 of up to 5 MiB each).
func TestCheckTxCacheHoldsOnlyPassed(t *testing.T) {
	h := newHarness(t, true)
	big := Msg{RegisterGateway: &RegisterGateway{Endpoint: "http://127.0.0.1:1", CacheOnly: true}}
	for i := range 200 {
		tx := Tx{ChainID: "other-chain", Nonce: uint64(i), Msg: big}
		tx.Sign(h.key("alice"))
		if _, err := h.l.CheckTx(tx.Encode()); !errors.Is(err, ErrWrongChain) {
			t.Fatal(err)
		}
	}
	if n := len(h.l.checked); n != 0 {
		t.Fatalf("%d refused transactions kept", n)
	}
	good := h.sign("alice", Msg{Transfer: &Transfer{To: h.addr("bob"), Amount: 1}}, 0)
	if _, err := h.l.CheckTx(good); err != nil {
		t.Fatal(err)
	}
	if n := len(h.l.checked); n != 1 || h.l.checkedBytes != len(good) {
		t.Fatalf("kept %d (%d bytes), want the one that passed", n, h.l.checkedBytes)
	}
	// DeliverTx takes it out again.
	if r := h.block(1, good)[0]; r.Code != CodeOK || len(h.l.checked) != 0 || h.l.checkedBytes != 0 {
		t.Fatalf("after delivery: %v, %d kept, %d bytes", r, len(h.l.checked), h.l.checkedBytes)
	}
}

// TestReassignCannotKeepAnOrderAlive: reassignments give a new node time,
// but never past the order's fixed end, at most MaxReassigns times, and
// only while the territory is active; the order then expires and returns
// the space and the nodes' bytes.
func TestReassignCannotKeepAnOrderAlive(t *testing.T) {
	h := newHarness(t, true)
	h.setup()
	fid, r := h.declare("gw", "alice", 1000, 7, 0)
	if r.Code != CodeOK {
		t.Fatal(r.Log)
	}
	f, _ := h.file(fid)
	ttl := h.params.OrderTTL
	if f.End != f.Deadline+(OrderEnds-1)*ttl {
		t.Fatalf("order end %d, deadline %d", f.End, f.Deadline)
	}
	// Two nodes swap column 0 back and forth, each time near the deadline.
	a, b := h.addr(nodeName(0)), h.addr(nodeName(12))
	end, extended := f.End, 0
	for {
		f, err := h.file(fid)
		if err != nil {
			break // expired
		}
		h.block(max(f.Deadline-h.now-2, 1))
		to := b
		if f.Columns[0].Node == b {
			to = a
		}
		if r := h.do("gw", Msg{ReassignColumn: &ReassignColumn{FID: fid, Column: 0, Node: to}}); r.Code != CodeOK {
			h.block(1)
			continue
		}
		g, _ := h.file(fid)
		if g.Deadline > f.End {
			t.Fatalf("deadline %d past the order's end %d", g.Deadline, f.End)
		}
		if g.Deadline > f.Deadline {
			extended++
		}
	}
	if h.now > end+2 {
		t.Fatalf("the order outlived its end: now %d, end %d", h.now, end)
	}
	if tr := h.territory("alice", "home"); tr.Locked != 0 {
		t.Fatalf("lock kept: %+v", tr)
	}
	if extended > OrderEnds {
		t.Fatalf("%d reassignments moved the deadline", extended)
	}

	// The cap: a file reassigned MaxReassigns times takes no more.
	fid2, _ := h.declare("gw", "alice", 1000, 8, 0)
	for i := range MaxReassigns {
		to := b
		if i%2 == 1 {
			to = a
		}
		h.ok("gw", Msg{ReassignColumn: &ReassignColumn{FID: fid2, Column: 0, Node: to}})
	}
	h.fail("gw", Msg{ReassignColumn: &ReassignColumn{FID: fid2, Column: 0, Node: b}}, CodeTooMany)
}

// TestListsPaged: the list queries answer at most MaxPage entries, in key
// order, from past the given entry; paging through gives each entry once.
func TestListsPaged(t *testing.T) {
	h := newHarness(t, true)
	h.setup() // 2 gateways, 14 nodes
	all := query[[]Node](h, "nodes")
	if len(all) != 14 {
		t.Fatalf("%d nodes", len(all))
	}
	var paged []Node
	after := ""
	for {
		p := "nodes?limit=4"
		if after != "" {
			p += "&after=" + after
		}
		pg := query[[]Node](h, p)
		if len(pg) > 4 {
			t.Fatalf("a page of %d, limit 4", len(pg))
		}
		paged = append(paged, pg...)
		if len(pg) < 4 {
			break
		}
		after = pg[len(pg)-1].Address.String()
	}
	if len(paged) != len(all) {
		t.Fatalf("paged %d of %d", len(paged), len(all))
	}
	for i := range all {
		if paged[i].Address != all[i].Address {
			t.Fatalf("entry %d: %s, want %s", i, paged[i].Address, all[i].Address)
		}
	}
	gw := h.addr("gw")
	if gs := query[[]Gateway](h, "gateways?limit=1&after="+gw.String()); len(gs) > 1 || (len(gs) == 1 && string(gs[0].Address[:]) <= string(gw[:])) {
		t.Fatalf("gateways after gw: %+v", gs)
	}
	for _, bad := range []string{"nodes?limit=0", "nodes?limit=x", "nodes?after=nothex", "nodes?%zz"} {
		if _, err := h.l.Query(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// TestOwnersAreKeys: every owner of a file is a key of its own; a new owner
// of the shared empty v1 file does not rewrite the file's record; the file
// query lists the first MaxOwnersListed and counts them all; any owner is
// found by owner/<fid>/<addr>; the file goes with its last owner, whichever
// order they leave in.
func TestOwnersAreKeys(t *testing.T) {
	h := newHarness(t, true)
	h.setup()
	empty := types.Layout{Version: types.FormatV1}
	fid := codec.FileID(&empty)
	n := MaxOwnersListed + 20
	var record []byte
	for i := range n {
		name := fmt.Sprintf("owner%03d", i)
		h.ok(name, Msg{Faucet: &Faucet{}})
		h.ok(name, Msg{BuyTerritory: &BuyTerritory{Name: "home", GiB: 1, Days: 1}})
		h.ok(name, Msg{Authorize: &Authorize{Gateway: h.addr("gw")}})
		h.ok("gw", Msg{DeclareFile: &DeclareFile{Owner: h.addr(name), FID: fid, Name: "empty", Territory: "home", Layout: empty}})
		rec := h.kv.Get([]byte(fidKey(fid)))
		if record == nil {
			record = rec
		} else if !bytes.Equal(rec, record) {
			t.Fatalf("owner %d rewrote the file's record", i)
		}
	}
	f, err := h.file(fid)
	if err != nil || len(f.Owners) != MaxOwnersListed || f.OwnerCount != uint64(n) {
		t.Fatalf("file: %d owners listed, count %d, %v", len(f.Owners), f.OwnerCount, err)
	}
	last := h.addr(fmt.Sprintf("owner%03d", n-1))
	if o := query[Owner](h, "owner/"+fid.String()+"/"+last.String()); o.Address != last || o.Name != "empty" {
		t.Fatalf("owner query: %+v", o)
	}
	if fs := query[[]UserFile](h, "files/"+last.String()); len(fs) != 1 || fs[0].FID != fid {
		t.Fatalf("the last owner's files: %+v", fs)
	}
	// Everyone leaves, the declarer first; the file goes with the last.
	for i := range n {
		if _, err := h.file(fid); err != nil {
			t.Fatalf("gone with %d owners left", n-i)
		}
		name := fmt.Sprintf("owner%03d", i)
		h.ok(name, Msg{DeleteFile: &DeleteFile{FID: fid, Owner: h.addr(name)}})
		if _, err := h.l.Query("owner/" + fid.String() + "/" + h.addr(name).String()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s still an owner: %v", name, err)
		}
	}
	if _, err := h.file(fid); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the file outlived its owners: %v", err)
	}
}
