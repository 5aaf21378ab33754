package ledger

import (
	"bytes"
	"testing"
)

// TestFragmentCount: a segment with 11 or 13 fragment hashes cannot be written
// in the canonical encoding of a DeclareFile, so it is malformed.
func TestFragmentCount(t *testing.T) {
	h := newHarness(t, true)
	h.setup()
	l, fid := layoutOf(10, 1)
	tx := Tx{ChainID: testChain, Nonce: h.account("gw").Nonce, Msg: Msg{DeclareFile: &DeclareFile{
		Owner: h.addr("alice"), FID: fid, Name: "f", Territory: "home", Layout: l, Columns: h.nodes(0)}}}
	tx.Sign(h.key("gw"))
	enc := tx.Encode()
	body := marshal(&tx)
	first := l.Segments[0].Fragments[0]
	hdr := append([]byte{0x8c, 0x58, 0x20}, first[:]...) // array(12), bytes(32), hash 0
	i := bytes.Index(body, hdr)
	if i < 0 {
		t.Fatal("fragment array not found")
	}
	eleven := append(append(bytes.Clone(body[:i]), 0x8b), body[i+1+34:]...)
	thirteen := append(append(append(bytes.Clone(body[:i]), 0x8d), body[i+1:i+1+34]...), body[i+1:]...)
	// The sender itself signs the altered bodies: still refused.
	for name, b := range map[string][]byte{"11": signBody(h, "gw", eleven), "13": signBody(h, "gw", thirteen)} {
		if _, err := DecodeTx(b); CodeOf(err) != CodeMalformed {
			t.Errorf("%s fragments: %v", name, err)
		}
		if r := h.block(1, b)[0]; r.Code != CodeMalformed {
			t.Errorf("%s fragments delivered: %v", name, r)
		}
	}
	if r := h.block(1, enc)[0]; r.Code != CodeOK {
		t.Fatalf("the original: %v", r)
	}
}

// FuzzDecodeTx: no input panics, an accepted transaction is exactly its
// canonical encoding, and a rejected one changes no state.
func FuzzDecodeTx(f *testing.F) {
	h := newHarness(&testing.T{}, true)
	l, fid := layoutOf(10, 1)
	for _, m := range []Msg{
		{Transfer: &Transfer{To: h.addr("bob"), Amount: 1}},
		{Faucet: &Faucet{}},
		{BuyTerritory: &BuyTerritory{Name: "x", GiB: 1, Days: 1}},
		{DeclareFile: &DeclareFile{Owner: h.addr("alice"), FID: fid, Name: "f", Territory: "home", Layout: l}},
		{ReportColumn: &ReportColumn{FID: fid, Column: 3}},
	} {
		f.Add(h.sign("alice", m, 0))
	}
	f.Add([]byte{})
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := DecodeTx(b)
		if err == nil {
			if !bytes.Equal(tx.Encode(), b) {
				t.Fatal("accepted a non-canonical encoding")
			}
			return
		}
		code := CodeOf(err)
		if code != CodeMalformed && code != CodeBadSignature {
			t.Fatalf("rejection with code %d: %v", code, err)
		}
		l := New(NewMemKV(), nil)
		if err := l.InitChain(&Genesis{ChainID: testChain, Params: DefaultParams()}); err != nil {
			t.Fatal(err)
		}
		l.Commit()
		l.BeginBlock(1, 1, nil)
		if r := l.DeliverTx(b); r.Code == CodeOK {
			t.Fatal("DeliverTx accepted what DecodeTx refused")
		}
		l.EndBlock()
		if changes, _ := l.Commit(); len(changes) != 0 {
			t.Fatalf("a refused transaction wrote %d keys", len(changes))
		}
	})
}

// signBody wraps raw body bytes, signed by name, in an envelope.
func signBody(h *harness, name string, body []byte) []byte {
	return marshal(envelope{Body: body, Sig: h.key(name).Sign(signBytes(body))})
}
