package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/devnet"
	"github.com/deoss/deoss/internal/gateway"
	"github.com/deoss/deoss/internal/gateway/scheduler"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/testutil"
	"github.com/deoss/deoss/internal/types"
)

// TestUploadToStored: a validator, 14 storage nodes and a gateway as
// separate processes; a file uploaded to the gateway reaches the stored
// state on chain, every column's node holds its fragments, and the gateway's
// work area is cleaned.
func TestUploadToStored(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 15 processes")
	}
	dir := t.TempDir()
	const nodes = 14 // 12 columns, a dead node and a lying one
	layout := devnet.Layout{Dir: dir, Validators: 1, Gateways: 1, Nodes: nodes}
	layout.Base = testutil.FreePorts(t, layout.Ports())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Node 1 accepts fragments and never reports.
	run := &testutil.Processes{T: t, Bin: deossBin, Dir: dir, NodeArgs: func(i int) []string {
		if i == 1 {
			return []string{"--fault", "no-report"}
		}
		return nil
	}}
	var liar types.Address
	net, err := devnet.Assemble(ctx, devnet.Spec{Layout: layout, TimeoutCommit: 10 * time.Millisecond, NodeCapacity: 4 << 30}, run,
		func(net *devnet.Network) error {
			// The gateway prefers the lying node, gives reports 5 s, and sends
			// a node to the cooldown pool for 30 s on its first failure (short
			// enough that an honest node slowed down by a loaded CI machine
			// comes back).
			liar = net.NodeKeys[1].Address()
			cfg, err := gateway.LoadConfig(layout.GatewayHome(0))
			if err != nil {
				return err
			}
			cfg.ReportDeadline = types.Duration(5 * time.Second)
			cfg.Scheduler = scheduler.Config{Preferred: []types.Address{liar}, PreferredBoost: 1000, Failures: 1, Cooldown: types.Duration(30 * time.Second)}
			return gateway.SaveConfig(layout.GatewayHome(0), cfg)
		})
	if err != nil {
		t.Fatal(err)
	}
	c, procs, gwProc := net.Chain, run.Nodes, run.Gateways[0]
	gwHome, gwListen := layout.GatewayHome(0), layout.GatewayListen(0)
	for i := range nodes {
		waitHTTP(t, "http://"+layout.NodeListen(i)+"/healthz")
	}
	waitHTTP(t, "http://"+gwListen+"/version")

	// The user.
	user := chain.DevAccount("uploader")
	if err := devnet.SetupUser(ctx, c, user, "home", 4, 1, net.GatewayKeys[0].Address()); err != nil {
		t.Fatal(err)
	}
	put := func(name string, data []byte) types.FID {
		t.Helper()
		req, _ := http.NewRequest("PUT", "http://"+gwListen+"/object/"+name+"?territory=home", bytes.NewReader(data))
		auth.SignRequest(req, user, net.GatewayKeys[0].Address(), time.Minute)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			FID types.FID `json:"fid"`
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &rec) != nil {
			t.Fatalf("upload %s: %d %s", name, resp.StatusCode, body)
		}
		return rec.FID
	}
	stored := func(fid types.FID) ledger.File {
		t.Helper()
		var f ledger.File
		deadline := time.Now().Add(90 * time.Second)
		for {
			if cf, err := c.File(ctx, fid); err == nil && cf.State == ledger.FileStored {
				return *cf
			} else if err == nil {
				f = *cf
			}
			if time.Now().After(deadline) {
				for _, name := range []string{"gateway.log", "gateway2.log"} {
					if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
						t.Logf("%s:\n%s", name, b)
					}
				}
				t.Fatalf("%s not stored in time: %+v", fid, f.Columns)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// One node is down: its column (if it was chosen) moves to the spare.
	procs[0].Kill()
	data := bytes.Repeat([]byte("end to end "), types.SegmentSize/11+5000) // two segments
	fid := put("e2e.bin", data)
	f := stored(fid)
	dead := nodeAddress(t, dir, 0)
	for j, col := range f.Columns {
		if col.Node == dead || col.Node == liar {
			t.Fatalf("column %d stored on a dead or lying node", j)
		}
	}
	// The liar was chosen (it is preferred), missed its deadline, lost its
	// column and went to the cooldown pool.
	r, err := http.Get("http://" + gwListen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for _, want := range []string{"deoss_gateway_cooldowns_total", "deoss_gateway_reassignments_total"} {
		if !strings.Contains(string(m), want+" ") || strings.Contains(string(m), want+" 0\n") {
			gl, _ := os.ReadFile(filepath.Join(dir, "gateway.log"))
			t.Fatalf("metric %s not counted:\n%s\ngateway log:\n%s", want, m, gl)
		}
	}
	if f.Layout.Size != uint64(len(data)) || len(f.Owners) != 1 || f.Owners[0].Address != user.Address() {
		t.Fatalf("file record: %+v", f)
	}
	// Every column's node serves its fragments, which hash right.
	ns, _ := c.Nodes(ctx)
	endpoint := map[types.Address]string{}
	for _, n := range ns {
		endpoint[n.Address] = n.Endpoint
	}
	for j, col := range f.Columns {
		for s, seg := range f.Layout.Segments {
			r, err := http.Get(endpoint[col.Node] + "/fragment/" + seg.Fragments[j].String())
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != 200 || codec.Sum(f.Layout.Version, b) != seg.Fragments[j] {
				t.Fatalf("column %d segment %d at %s: %d", j, s, endpoint[col.Node], r.StatusCode)
			}
		}
	}
	// The gateway is killed right after answering: after a restart the file
	// still reaches stored.
	fid2 := put("after-kill.bin", bytes.Repeat([]byte("kill "), 100_000))
	gwProc.Kill()
	gw2 := startDaemon(t, dir, "gateway2", "gateway", "run", "--home", gwHome, "--log-level", "info")
	stored(fid2)

	// Killed in the middle of a chunked upload: after a restart the session
	// shows the chunks it holds, the client sends the rest, and the file is
	// stored.
	gw := "http://" + gwListen
	call := func(method, path string, body []byte, hdr map[string]string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, gw+path, bytes.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		auth.SignRequest(req, user, net.GatewayKeys[0].Address(), time.Minute)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	chunked := bytes.Repeat([]byte("resumed "), 3<<17) // 3 MiB in 1 MiB chunks
	st, sess := call("POST", "/upload", []byte(fmt.Sprintf(`{"name":"resumed.bin","territory":"home","size":%d,"chunk_size":%d}`, len(chunked), 1<<20)), nil)
	if st != 201 {
		t.Fatalf("create session: %d %v", st, sess)
	}
	id := sess["id"].(string)
	putChunk := func(i int) {
		t.Helper()
		part := chunked[i<<20 : (i+1)<<20]
		if st, m := call("PUT", fmt.Sprintf("/upload/%s/%d", id, i), part, map[string]string{"Chunk-Sha256": types.Sum(part).String()}); st != 201 {
			t.Fatalf("chunk %d: %d %v", i, st, m)
		}
	}
	putChunk(0)
	// A signed request seen before the kill: replayed after the restart,
	// it is refused (spent nonces are kept on disk).
	seen, _ := http.NewRequest("DELETE", gw+"/upload/"+strings.Repeat("0", 32), nil)
	auth.SignRequest(seen, user, net.GatewayKeys[0].Address(), time.Minute)
	if resp, err := http.DefaultClient.Do(seen); err != nil || resp.StatusCode != 404 {
		t.Fatalf("request before the kill: %v %v", resp, err)
	}
	putChunk(2)
	gw2.Kill()
	gw3 := startDaemon(t, dir, "gateway3", "gateway", "run", "--home", gwHome, "--log-level", "info")
	waitHTTP(t, gw+"/version")
	replayed, _ := http.NewRequest("DELETE", gw+"/upload/"+strings.Repeat("0", 32), nil)
	replayed.Header = seen.Header
	if resp, err := http.DefaultClient.Do(replayed); err != nil || resp.StatusCode != 401 {
		t.Fatalf("replayed after the restart: %v %v, want 401", resp, err)
	}
	if st, m := call("GET", "/upload/"+id, nil, nil); st != 200 || fmt.Sprint(m["stored"]) != "[[0 0] [2 2]]" || fmt.Sprint(m["missing"]) != "[[1 1]]" {
		t.Fatalf("session after the restart: %d %v", st, m)
	}
	putChunk(1)
	st, done := call("POST", "/upload/"+id+"/complete", nil, nil)
	if st != 200 {
		t.Fatalf("complete: %d %v", st, done)
	}
	fid3, _ := types.ParseFID(done["fid"].(string))
	stored(fid3)

	// Killed while a declared file is being distributed: after a restart it
	// is stored.
	fid4 := put("distributing.bin", bytes.Repeat([]byte("distributing "), 3*types.SegmentSize/13))
	deadline0 := time.Now().Add(60 * time.Second)
	for {
		if _, err := c.File(ctx, fid4); err == nil {
			break // declared: distribution has begun
		}
		if time.Now().After(deadline0) {
			t.Fatal("never declared")
		}
		time.Sleep(20 * time.Millisecond)
	}
	gw3.Kill()
	startDaemon(t, dir, "gateway4", "gateway", "run", "--home", gwHome, "--log-level", "info")
	stored(fid4)

	// The gateway frees its work area once the files are stored.
	deadline := time.Now().Add(30 * time.Second)
	for {
		entries, _ := os.ReadDir(filepath.Join(gwHome, "work"))
		if len(entries) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("work area not cleaned: %v", entries)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nodeAddress reads the address of node i's key file.
func nodeAddress(t *testing.T, dir string, i int) types.Address {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node%02d", i), "key.json"))
	if err != nil {
		t.Fatal(err)
	}
	var kf struct {
		Address types.Address `json:"address"`
	}
	if err := json.Unmarshal(b, &kf); err != nil {
		t.Fatal(err)
	}
	return kf.Address
}
