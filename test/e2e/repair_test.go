package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node"
	"github.com/deoss/deoss/internal/testutil"
	"github.com/deoss/deoss/internal/types"
)

// TestRepairRestoresColumns runs repair on a whole network of 25 nodes (24 and the one that exits)
// (epochs of 3 s, repair delays of seconds): a 70 MiB file and an encrypted
// 40 MiB one are stored; a holder that exits gracefully has its columns
// moved and gets its stake back; 6 holders killed for good are repaired
// away (both files back to 12 healthy columns on live nodes); then 6 of the
// new holders are killed and repaired away again; what-if predicts the
// loss of 8 of the 12 current holders, which are then killed, and both
// files still read byte-identical from the 4 left.
func TestRepairRestoresColumns(t *testing.T) {
	if testing.Short() {
		t.Skip("25 nodes")
	}
	n := Start(t, Options{Nodes: 25, Gateways: 2, TerritoryGiB: 2, Capacity: 2 << 30, Proofs: func(p *ledger.Params) {
		p.EpochSeconds, p.ProofWindow, p.SuspectAfter, p.FaultyAfter = 3, 4, 2, 4
		p.RepairDelay11, p.RepairDelay9, p.RepairDelay7 = 2, 1, 0
	}})
	ctx := context.Background()
	data := randomBytes(18, 70<<20+77)
	fid := n.Put(0, "big.bin", bytes.NewReader(data), int64(len(data)), nil)
	secret := map[string]string{"Cipher": "repair me"}
	edata := randomBytes(19, 40<<20)
	efid := n.Put(0, "secret.bin", bytes.NewReader(edata), int64(len(edata)), secret)
	first := n.WaitStored(fid, 3*time.Minute)
	n.WaitStored(efid, 3*time.Minute)

	dead := map[types.Address]bool{}
	// healthy: both files stored with 12 healthy columns, none on a dead
	// node.
	var last string
	healthy := func() bool {
		for _, id := range []types.FID{fid, efid} {
			f, err := n.Chain.File(ctx, id)
			if err != nil {
				return false
			}
			last = fmt.Sprintf("%s: %s health %d", id, f.State, f.Health)
			if f.State != ledger.FileStored || f.Health != types.TotalShards {
				return false
			}
			for _, c := range f.Columns {
				if dead[c.Node] {
					last += " (a column on a dead node)"
					return false
				}
			}
		}
		return true
	}
	waitHealthy := func(what string) {
		t.Helper()
		if !testutil.Eventually(5*time.Minute, 500*time.Millisecond, healthy) {
			st, _ := n.Chain.RepairStatus(ctx)
			t.Fatalf("%s: not repaired: %s; status %+v", what, last, st)
		}
	}
	holders := func(id types.FID) []types.Address {
		f, err := n.Chain.File(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var out []types.Address
		for _, c := range f.Columns {
			out = append(out, c.Node)
		}
		return out
	}
	kill := func(nodes []types.Address) {
		for _, a := range nodes {
			n.NodeByAddress(a).Kill()
			dead[a] = true
		}
	}

	// A graceful exit: the node's columns move, then it is removed and
	// its stake returned.
	leaver := n.NodeByAddress(first.Columns[0].Node)
	key, err := auth.Load(node.KeyPath(leaver.Home), nil)
	if err != nil {
		t.Fatal(err)
	}
	before, err := n.Chain.AccountView(ctx, leaver.Address)
	if err != nil {
		t.Fatal(err)
	}
	// The node signs its proofs with the same key meanwhile: a nonce both
	// used is spent by one, and the other's transaction may never land
	// (a timeout). Sending the exit again is safe: a second one answers
	// that the node is exiting already.
	for try := 0; ; try++ {
		_, err := n.Chain.Signer(key).Submit(ctx, ledger.Msg{ExitNode: &ledger.ExitNode{}})
		if err == nil || errors.Is(err, ledger.ErrConflict) {
			break
		}
		if !errors.Is(err, chain.ErrTimeout) || try == 4 {
			t.Fatal(err)
		}
	}
	if !testutil.Eventually(5*time.Minute, 500*time.Millisecond, func() bool {
		_, err := n.Chain.Node(ctx, leaver.Address)
		return errors.Is(err, ledger.ErrNotFound)
	}) {
		nd, _ := n.Chain.Node(ctx, leaver.Address)
		t.Fatalf("the exiting node never left: %+v", nd)
	}
	after, err := n.Chain.AccountView(ctx, leaver.Address)
	if err != nil {
		t.Fatal(err)
	}
	if after.Balance < before.Balance+before.NodeStake-1000 || after.NodeStake != 0 {
		t.Fatalf("stake not returned: before %+v, after %+v", before, after)
	}
	dead[leaver.Address] = true // it holds nothing now; it must not hold a column again
	waitHealthy("after a graceful exit")

	// 6 holders killed for good.
	start := holders(fid)
	kill(start[1:7])
	waitHealthy("6 holders killed")

	// 6 of the new holders killed.
	was := map[types.Address]bool{}
	for _, a := range start {
		was[a] = true
	}
	var fresh []types.Address
	for _, a := range holders(fid) {
		if !was[a] {
			fresh = append(fresh, a)
		}
	}
	if len(fresh) < 6 {
		t.Fatalf("%d new holders after repair, want 6 or more", len(fresh))
	}
	kill(fresh[:6])
	waitHealthy("6 new holders killed")

	// The status shows what was done; what-if predicts 8 more losses.
	var st ledger.RepairStatus
	code, _, body := get(t, n.Gateways[1].URL+"/repair/status", nil)
	if code != 200 || json.Unmarshal(body, &st) != nil {
		t.Fatalf("repair status: %d %s", code, body)
	}
	if st.Health[12].Files < 2 || st.RepairedHour == 0 || st.Rate == 0 {
		t.Fatalf("repair status: %+v", st)
	}
	cur := holders(fid)
	q := ""
	for i, a := range cur[:8] {
		if i > 0 {
			q += ","
		}
		q += a.String()
	}
	var w ledger.WhatIf
	code, _, body = get(t, n.Gateways[1].URL+"/repair/whatif?node="+q, nil)
	if code != 200 || json.Unmarshal(body, &w) != nil {
		t.Fatalf("whatif: %d %s", code, body)
	}
	if w.FilesAffected < 1 || w.After[4].Files < 1 || w.FilesLost != 0 || w.RepairBytes == 0 {
		t.Fatalf("whatif of 8 holders: %+v", w)
	}

	// 8 of the 12 current holders killed, and the gateway that cached the
	// uploads too: both files read from the 4 left.
	n.Gateways[0].Kill()
	kill(cur[:8])
	code, _, body = get(t, n.Gateways[1].URL+"/file/download/"+fid.String(), nil)
	if code != 200 {
		t.Fatalf("with 8 holders dead: %d %s", code, body)
	}
	mustEqual(t, "8 holders dead", body, data)
	code, _, body = get(t, n.Gateways[1].URL+"/file/download/"+efid.String(), secret)
	if code != 200 {
		t.Fatalf("encrypted, with its holders dead: %d %s", code, body)
	}
	mustEqual(t, "encrypted, repaired twice", body, edata)
}
