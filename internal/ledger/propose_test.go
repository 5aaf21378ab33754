package ledger

import (
	"testing"
)

func TestPropose(t *testing.T) {
	h := newHarness(t, true)
	m := Msg{Transfer: &Transfer{To: [32]byte{1}, Amount: 1}}
	a0, a1, a2, a4 := h.sign("alice", m, 0), h.sign("alice", m, 1), h.sign("alice", m, 2), h.sign("alice", m, 4)
	b0, b1 := h.sign("bob", m, 0), h.sign("bob", m, 1)
	dup := h.sign("alice", Msg{Transfer: &Transfer{To: [32]byte{2}, Amount: 1}}, 0)
	in := [][]byte{a2, b1, a0, []byte("junk"), a4, b0, a1, dup}
	got := h.l.Propose(in, 1<<20)
	want := [][]byte{a0, a1, a2, b0, b1} // per sender, contiguous, in nonce order; a4 waits
	if len(got) != len(want) {
		t.Fatalf("proposed %d transactions, want %d", len(got), len(want))
	}
	for i := range want {
		if string(got[i]) != string(want[i]) {
			t.Fatalf("position %d differs", i)
		}
	}
	rs := h.block(1, got...)
	for i, r := range rs {
		if r.Code != CodeOK {
			t.Fatalf("tx %d: %v", i, r)
		}
	}
	// The byte limit cuts the block; what is cut waits for the next.
	if got := h.l.Propose([][]byte{h.sign("alice", m, 0), h.sign("alice", m, 1)}, int64(len(a0))+10); len(got) != 1 {
		t.Fatalf("limit: %d", len(got))
	}
}
