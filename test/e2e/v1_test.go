package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/devnet"
	"github.com/deoss/deoss/internal/gateway"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// TestV1FileStillReads: a format v1 file, declared and pushed as a gateway
// of the first version did (SHA-256, whole 8 MiB fragments, no outboards),
// reads through today's gateway: whole, a range, and with 8 of its 12
// holders killed.
func TestV1FileStillReads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 14 processes")
	}
	n := Start(t, Options{Nodes: 12})
	gw := n.Gateways[0]
	key, err := devnet.LoadOrCreateKey(gateway.KeyPath(gw.Home))
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(41, types.SegmentSize+12345)
	var frags [][types.TotalShards][]byte
	res, err := codec.Encode(context.Background(), bytes.NewReader(data), codec.SinkFunc(func(s *codec.Segment) error {
		var seg [types.TotalShards][]byte
		for j, f := range s.Fragments {
			seg[j] = bytes.Clone(f)
		}
		frags = append(frags, seg)
		return nil
	}), codec.WithFormat(types.FormatV1))
	if err != nil {
		t.Fatal(err)
	}
	var cols [types.TotalShards]types.Address
	for j := range cols {
		cols[j] = n.Nodes[j].Address
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := n.Chain.Signer(key).Submit(ctx, ledger.Msg{DeclareFile: &ledger.DeclareFile{Owner: n.User.Address(), FID: res.FID,
		Name: "old.bin", Territory: "home", Layout: res.Layout, Columns: cols}}); err != nil {
		t.Fatal(err)
	}
	for s, seg := range frags {
		for j, f := range seg {
			req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/fragment/%s/%d/%d", n.Nodes[j].URL, res.FID, j, s), bytes.NewReader(f))
			auth.SignRequest(req, key, n.Nodes[j].Address, time.Minute)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("push segment %d column %d: %d", s, j, resp.StatusCode)
			}
		}
	}
	f := n.WaitStored(res.FID, time.Minute)
	if f.Layout.Version != types.FormatV1 {
		t.Fatalf("stored as version %d", f.Layout.Version)
	}
	url := gw.URL + "/file/download/" + res.FID.String()
	st, _, body := get(t, url, nil)
	if st != 200 {
		t.Fatalf("v1 download: %d", st)
	}
	mustEqual(t, "v1 whole", body, data)
	st, _, body = get(t, url, map[string]string{"Range": "bytes=33554000-33555999"})
	if st != 206 {
		t.Fatalf("v1 range: %d", st)
	}
	mustEqual(t, "v1 range", body, data[33554000:33556000])
	for _, c := range f.Columns[:8] {
		n.NodeByAddress(c.Node).Kill()
	}
	st, _, body = get(t, url, nil)
	if st != 200 {
		t.Fatalf("v1 download with 8 holders dead: %d", st)
	}
	mustEqual(t, "v1 with 8 holders dead", body, data)
}
