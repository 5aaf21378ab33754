package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node"
	"github.com/deoss/deoss/internal/testutil"
	"github.com/deoss/deoss/internal/types"
)

// startDaemon runs a deoss subcommand as a process, logging to dir/name.log.
func startDaemon(t *testing.T, dir, name string, a ...string) *testutil.Proc {
	t.Helper()
	return testutil.StartProc(t, deossBin, dir, name, nil, a...)
}

func waitHTTP(t *testing.T, url string) { t.Helper(); testutil.WaitHTTP(t, url) }

// encodeFile encodes data and keeps its fragments by [segment][column].
func encodeFile(t *testing.T, data []byte, owner types.Address) (*codec.Result, [][][]byte) {
	t.Helper()
	var frags [][][]byte
	res, err := codec.Encode(context.Background(), bytes.NewReader(data), codec.SinkFunc(func(s *codec.Segment) error {
		seg := make([][]byte, types.TotalShards)
		for j, f := range s.Fragments {
			seg[j] = bytes.Clone(f)
		}
		frags = append(frags, seg)
		return nil
	}), codec.WithOwner(owner))
	if err != nil {
		t.Fatal(err)
	}
	return res, frags
}

func TestNodeProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a validator and a storage node")
	}
	dir := t.TempDir()
	base := testutil.FreePorts(t, 3)
	rpc := fmt.Sprintf("http://127.0.0.1:%d", base+1)
	if _, code := cli(t, nil, "chain", "testnet", "--dev", "--validators", "1", "--dir", dir, "--base-port", fmt.Sprint(base), "--timeout-commit", "10ms"); code != 0 {
		t.Fatal("testnet")
	}
	startDaemon(t, dir, "validator", "chain", "start", "--home", filepath.Join(dir, "v0"), "--log-level", "error")
	c, err := chain.Dial(rpc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}

	// The storage node: init (faucet, registration) and run.
	home := filepath.Join(dir, "node")
	listen := fmt.Sprintf("127.0.0.1:%d", base+2)
	out, code := cli(t, nil, "node", "init", "--home", home, "--chain", rpc, "--listen", listen, "--capacity", fmt.Sprint(1<<30))
	if code != 0 {
		t.Fatal("node init")
	}
	nodeAddr, err := types.ParseAddress(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	runNode := func() *testutil.Proc {
		p := startDaemon(t, dir, "node", "node", "run", "--home", home, "--log-level", "info")
		waitHTTP(t, "http://"+listen+"/healthz")
		return p
	}
	np := runNode()

	// The test is the gateway: register it, a user with space, and 11
	// stand-in nodes (registered, never running) for the other columns.
	submit := func(k *auth.Key, msgs ...ledger.Msg) {
		t.Helper()
		for _, m := range msgs {
			if _, err := c.Signer(k).Submit(ctx, m); err != nil {
				t.Fatalf("%s: %v", m.Name(), err)
			}
		}
	}
	gw, user := chain.DevAccount("gw"), chain.DevAccount("user")
	submit(gw, ledger.Msg{Faucet: &ledger.Faucet{}}, ledger.Msg{RegisterGateway: &ledger.RegisterGateway{Endpoint: "http://127.0.0.1:1"}})
	submit(user, ledger.Msg{Faucet: &ledger.Faucet{}}, ledger.Msg{BuyTerritory: &ledger.BuyTerritory{Name: "home", GiB: 10, Days: 1}},
		ledger.Msg{Authorize: &ledger.Authorize{Gateway: gw.Address()}})
	var cols [types.TotalShards]types.Address
	for j := range cols {
		if j == 5 {
			cols[j] = nodeAddr
			continue
		}
		k := chain.DevAccount(fmt.Sprintf("standin%d", j))
		submit(k, ledger.Msg{Faucet: &ledger.Faucet{}}, ledger.Msg{RegisterNode: &ledger.RegisterNode{
			Endpoint: fmt.Sprintf("http://127.0.0.1:%d", 1+j), Capacity: 1 << 30, Stake: 1000}})
		cols[j] = k.Address()
	}
	declare := func(data []byte) (*codec.Result, [][][]byte) {
		res, frags := encodeFile(t, data, user.Address())
		submit(gw, ledger.Msg{DeclareFile: &ledger.DeclareFile{Owner: user.Address(), FID: res.FID, Name: "f",
			Territory: "home", Layout: res.Layout, Columns: cols}})
		return res, frags
	}
	put := func(fid types.FID, seg int, body []byte) int {
		req, _ := http.NewRequest("PUT", fmt.Sprintf("http://%s/fragment/%s/5/%d", listen, fid, seg), bytes.NewReader(body))
		auth.SignRequest(req, gw, nodeAddr, time.Minute)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	get := func(h types.Hash) int {
		resp, err := http.Get(fmt.Sprintf("http://%s/fragment/%s", listen, h))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting: %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// A two-segment file: both fragments of column 5 stored, then the node
	// reports the column on its own.
	res1, frags1 := declare(bytes.Repeat([]byte("one"), types.SegmentSize/3+1000))
	for seg := range 2 {
		if st := put(res1.FID, seg, frags1[seg][5]); st != http.StatusCreated {
			t.Fatalf("store segment %d: %d", seg, st)
		}
	}
	waitFor("column 5 reported", func() bool {
		f, err := c.File(ctx, res1.FID)
		return err == nil && f.Columns[5].Reported
	})

	// Killed while a fragment arrives: after a restart nothing of it is
	// visible, the stored ones are all there, and it can be stored again.
	res2, frags2 := declare(bytes.Repeat([]byte("two"), types.SegmentSize/3)) // one whole segment
	conn, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PUT", fmt.Sprintf("http://%s/fragment/%s/5/0", listen, res2.FID), nil)
	auth.SignRequest(req, gw, nodeAddr, time.Minute)
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", req.URL.RequestURI(), listen, len(frags2[0][5]))
	for k, v := range req.Header {
		fmt.Fprintf(conn, "%s: %s\r\n", k, v[0])
	}
	fmt.Fprint(conn, "\r\n")
	conn.Write(frags2[0][5][:len(frags2[0][5])/2])
	time.Sleep(200 * time.Millisecond)
	np.Kill()
	conn.Close()
	np = runNode()
	h2 := res2.Layout.Segments[0].Fragments[5]
	if st := get(h2); st != http.StatusNotFound {
		t.Fatalf("partial fragment after the kill: %d", st)
	}
	for seg := range 2 {
		if st := get(res1.Layout.Segments[seg].Fragments[5]); st != http.StatusOK {
			t.Fatalf("stored fragment lost in the restart: %d", st)
		}
	}
	if st := put(res2.FID, 0, frags2[0][5]); st != http.StatusCreated {
		t.Fatalf("store after restart: %d", st)
	}

	// Deleting the first file: the node collects exactly its fragments.
	submit(user, ledger.Msg{DeleteFile: &ledger.DeleteFile{FID: res1.FID, Owner: user.Address()}})
	waitFor("fragments of the deleted file collected", func() bool {
		return get(res1.Layout.Segments[0].Fragments[5]) == http.StatusNotFound &&
			get(res1.Layout.Segments[1].Fragments[5]) == http.StatusNotFound
	})
	if st := get(h2); st != http.StatusOK {
		t.Fatalf("a referenced fragment was collected: %d", st)
	}

	// Restarted against a chain that knows nothing of it (another, fresh
	// chain: as a validator restarted empty, or a stub answering "not
	// found" to everything), the node deletes nothing.
	np.Kill()
	dir2 := t.TempDir()
	base2 := testutil.FreePorts(t, 2)
	if _, code := cli(t, nil, "chain", "testnet", "--dev", "--validators", "1", "--dir", dir2, "--base-port", fmt.Sprint(base2), "--timeout-commit", "10ms"); code != 0 {
		t.Fatal("second testnet")
	}
	startDaemon(t, dir, "validator2", "chain", "start", "--home", filepath.Join(dir2, "v0"), "--log-level", "error")
	rpc2 := fmt.Sprintf("http://127.0.0.1:%d", base2+1)
	c2, err := chain.Dial(rpc2)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	cfg, err := node.LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Chain = rpc2
	if err := node.SaveConfig(home, cfg); err != nil {
		t.Fatal(err)
	}
	runNode()
	var log []byte
	if !testutil.Eventually(time.Minute, 50*time.Millisecond, func() bool {
		log, _ = os.ReadFile(filepath.Join(dir, "node.log"))
		return bytes.Contains(log, []byte("does not know this node"))
	}) {
		t.Fatalf("the node never said it refuses to collect against a chain that does not know it; its log ends:\n%s", log[max(0, len(log)-3000):])
	}
	if st := get(h2); st != http.StatusOK {
		t.Fatalf("a fragment deleted on the word of a chain that knows nothing: %d", st)
	}
}
