package ledger

import (
	"slices"

	"github.com/deoss/deoss/internal/types"
)

// Propose chooses, from the mempool's transactions in their order, those this
// validator puts in its block: for each sender, only nonces that continue the
// sender's committed nonce without a gap, in nonce order. Gossip between
// validators takes several paths, so one sender's transactions can reach a
// proposer out of order; proposed as they came, the later nonce would fail and
// take every following transaction of that sender with it. What is left out
// stays in the mempool for a later block. Malformed transactions are left out
// too. The total size stays within maxBytes.
func (l *Ledger) Propose(txs [][]byte, maxBytes int64) [][]byte {
	committed := state{newOverlay(l.base)}
	type cand struct {
		b     []byte
		nonce uint64
	}
	bySender := map[types.Address][]cand{}
	var order []types.Address // senders in order of first appearance
	for _, b := range txs {
		tx, err := l.decode(b, true)
		if err != nil {
			continue
		}
		if _, seen := bySender[tx.Sender]; !seen {
			order = append(order, tx.Sender)
		}
		bySender[tx.Sender] = append(bySender[tx.Sender], cand{b, tx.Nonce})
	}
	out := make([][]byte, 0, len(txs))
	var size int64
	for _, s := range order {
		cs := bySender[s]
		slices.SortStableFunc(cs, func(a, b cand) int {
			switch {
			case a.nonce < b.nonce:
				return -1
			case a.nonce > b.nonce:
				return 1
			}
			return 0
		})
		next := committed.account(s).Nonce
		for _, c := range cs {
			if c.nonce != next {
				if c.nonce < next {
					continue // a duplicate or a stale nonce: it would fail
				}
				break // a gap: wait for the missing nonce
			}
			if size+int64(len(c.b)) > maxBytes {
				return out
			}
			size += int64(len(c.b))
			out = append(out, c.b)
			next++
		}
	}
	return out
}
