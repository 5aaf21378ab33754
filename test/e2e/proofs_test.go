package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/testutil"
	"github.com/deoss/deoss/internal/types"
)

// TestProofsCatchALosingNode runs proofs of storage on a whole network
// (epochs of 4 s, 8 s to answer): a node whose fragment files are deleted
// while it keeps running is caught by its challenges, loses stake, turns
// suspect, then faulty, and its column is marked for repair; a node frozen
// for three epochs misses and then recovers; every other holder, under
// uploads and downloads all along, never misses a proof, and the pool pays
// the provers.
func TestProofsCatchALosingNode(t *testing.T) {
	n := Start(t, Options{Proofs: func(p *ledger.Params) {
		p.EpochSeconds, p.ProofWindow, p.SuspectAfter, p.FaultyAfter = 4, 8, 2, 4
	}})
	data := randomBytes(17, 5<<20+123)
	fid := n.Put(0, "proved.bin", bytes.NewReader(data), int64(len(data)), nil)
	f := n.WaitStored(fid, 2*time.Minute)
	g := n.Gateways[0]
	ctx := context.Background()
	node := func(a types.Address) *ledger.Node {
		t.Helper()
		nd, err := n.Chain.Node(ctx, a)
		if err != nil {
			t.Fatalf("node %s: %v", a, err)
		}
		return nd
	}
	// Load between the checks: one download of the file and one small
	// upload each round.
	round := 0
	load := func() {
		round++
		st, _, body := get(t, g.URL+"/file/download/"+fid.String(), nil)
		if st != 200 {
			t.Fatalf("download under proofs: %d", st)
		}
		mustEqual(t, "download under proofs", body, data)
		small := randomBytes(uint64(1000+round), 1<<20)
		n.Put(0, fmt.Sprintf("load-%d.bin", round), bytes.NewReader(small), int64(len(small)), nil)
	}
	waitFor := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(within); !cond(); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, within)
			}
			load()
		}
	}

	// Every holder proves once before anything goes wrong.
	waitFor("every holder proves", 2*time.Minute, func() bool {
		for _, c := range f.Columns {
			if node(c.Node).Passed == 0 {
				return false
			}
		}
		return true
	})

	loser, sleeper := n.NodeByAddress(f.Columns[2].Node), n.NodeByAddress(f.Columns[5].Node)
	// It loses whatever it holds, again and again: what the uploads of
	// the load give it too.
	// (A removal racing the node's own writes may leave a file behind;
	// the next round takes it.)
	lose := func() { os.RemoveAll(filepath.Join(loser.Home, "store", "frags")) }
	lose()
	stake := node(loser.Address).Stake
	sleeper.Stop()
	suspect := false
	waitFor("the losing node turns faulty", 3*time.Minute, func() bool {
		if sleeper != nil && node(sleeper.Address).Missed > 0 { // frozen until it missed a deadline
			sleeper.Cont()
			sleeper = nil
		}
		lose()
		st := node(loser.Address).State
		suspect = suspect || st == ledger.NodeSuspect
		return st == ledger.NodeFaulty
	})
	if sleeper != nil {
		// The loser may turn faulty first: the sleeper stays frozen until
		// the chain counts a proof it missed (CI saw it freed after a few
		// seconds, before any deadline passed).
		waitFor("the frozen node misses a proof", 2*time.Minute, func() bool { return node(sleeper.Address).Missed > 0 })
		sleeper.Cont()
	}
	ln := node(loser.Address)
	if !suspect || ln.Missed < 4 || ln.Stake >= stake || ln.Penalties == 0 {
		t.Fatalf("the losing node: suspect seen %v, %+v (stake was %d)", suspect, ln, stake)
	}
	// Its column is ordered for repair (or repaired already, if a node
	// was free to take it).
	var seen string
	ordered := testutil.Eventually(30*time.Second, 200*time.Millisecond, func() bool {
		q, err := n.Chain.Restorals(ctx, 100)
		if err != nil {
			return false
		}
		for _, r := range q.Orders {
			if r.FID == fid && r.Column == 2 && r.Reason == ledger.DownFaulty {
				return true
			}
		}
		cur, err := n.Chain.File(ctx, fid)
		seen = fmt.Sprintf("%+v", q.Orders)
		return err == nil && cur.Columns[2].Node != loser.Address
	})
	if !ordered {
		t.Fatalf("the faulty node's column is not ordered for repair: %s", seen)
	}

	// The frozen node missed while it was frozen, then recovers.
	sl := n.NodeByAddress(f.Columns[5].Node)
	missed := node(sl.Address)
	if missed.Missed == 0 {
		t.Fatalf("frozen for three epochs, yet it missed nothing: %+v", missed)
	}
	waitFor("the frozen node proves again", 2*time.Minute, func() bool {
		nd := node(sl.Address)
		return nd.Passed > missed.Passed && nd.State == ledger.NodeActive && nd.Faults == 0
	})

	// The honest holders never missed, and were paid.
	var rewards uint64
	for j, c := range f.Columns {
		nd := node(c.Node)
		rewards += nd.Rewards
		if j == 2 || j == 5 {
			continue
		}
		if nd.Missed != 0 || nd.State != ledger.NodeActive || nd.Passed == 0 {
			t.Errorf("honest holder of column %d: %+v", j, nd)
		}
	}
	if rewards == 0 {
		t.Error("no holder earned a reward")
	}
	t.Logf("%d rounds of load; the losing node: %d proofs missed, stake %d -> %d; rewards paid %d",
		round, ln.Missed, stake, ln.Stake, rewards)
}
