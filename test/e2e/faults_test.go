package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/types"
	"github.com/deoss/deoss/sdk"
)

// TestUploadFaults: a node whose disk is full refuses with 507 and another
// takes its column; four holders killed while a file is being distributed:
// the file is still stored, by reassignment, and reads back identical.
func TestUploadFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 processes")
	}
	n := Start(t, Options{Nodes: 18,
		NodeArgs: func(i int) []string {
			if i == 0 {
				return []string{"--fault", "full"}
			}
			return nil
		},
		Gateway: func(_ int, cfg map[string]any) {
			cfg["report_deadline"] = "5s"
		}})
	full := n.Nodes[0]
	// Prefer the full node so that it is chosen.
	setPreferred(t, n, 0, full.Address)

	data := randomBytes(11, types.SegmentSize+99)
	fid := n.Put(0, "full-disk.bin", bytes.NewReader(data), int64(len(data)), nil)
	f := n.WaitStored(fid, 2*time.Minute)
	for j, c := range f.Columns {
		if c.Node == full.Address {
			t.Fatalf("column %d stored on the full node", j)
		}
	}
	if v := metric(t, n.Gateways[0].URL, `deoss_gateway_column_pushes_total{result="failed"}`); v < 1 {
		t.Fatalf("no failed push counted (the full node was preferred): %v", v)
	}

	// Four holders die in the middle of distribution: preferred, so that
	// the order names them, frozen before it is declared (their pushes
	// hang) and killed once it is, so none of them can store or report.
	four := n.Nodes[1:5]
	var fourAddrs []types.Address
	for _, nd := range four {
		fourAddrs = append(fourAddrs, nd.Address)
	}
	setPreferred(t, n, 0, fourAddrs...)
	for _, nd := range four {
		nd.Stop()
	}
	moved := metric(t, n.Gateways[0].URL, "deoss_gateway_reassignments_total")
	data2 := randomBytes(12, 2*types.SegmentSize+5)
	fid2 := n.Put(0, "four-killed.bin", bytes.NewReader(data2), int64(len(data2)), nil)
	declared := n.WaitDeclared(fid2, time.Minute)
	killed := map[types.Address]bool{}
	for _, c := range declared.Columns {
		if slices.Contains(fourAddrs, c.Node) {
			killed[c.Node] = true
		}
	}
	for _, nd := range four {
		nd.Kill()
	}
	if len(killed) != 4 {
		t.Fatalf("the order names %d of the four frozen holders, want 4: %+v", len(killed), declared.Columns)
	}
	f2 := n.WaitStored(fid2, 3*time.Minute)
	for j, c := range f2.Columns {
		if killed[c.Node] {
			t.Fatalf("column %d is on a killed node", j)
		}
	}
	if got := metric(t, n.Gateways[0].URL, "deoss_gateway_reassignments_total") - moved; got < 4 {
		t.Fatalf("%v reassignments after four holders died, want at least 4", got)
	}
	st, _, body := get(t, n.Gateways[0].URL+"/file/download/"+fid2.String(), nil)
	if st != 200 {
		t.Fatalf("download: %d", st)
	}
	mustEqual(t, "after four holders died", body, data2)

	// The gateway's own disk damages a column before it is pushed: the
	// node refuses the bytes, the gateway rebuilds the fragment from the
	// other columns and pushes again, and no node is blamed.
	gw := n.Gateways[0]
	// Every node excluded: the file waits, encoded, in the work area.
	var all []string
	for _, nd := range n.Nodes {
		all = append(all, nd.Address.String())
	}
	gw.Kill()
	editJSON(t, filepath.Join(gw.Home, "gateway.json"), func(cfg map[string]any) {
		cfg["scheduler"] = map[string]any{"excluded": all}
	})
	gw.Restart()
	waitHTTP(t, gw.URL+"/version")
	data3 := randomBytes(13, types.SegmentSize/2)
	fid3 := n.Put(0, "damaged-at-the-gateway.bin", bytes.NewReader(data3), int64(len(data3)), nil)
	gw.Kill()
	p := filepath.Join(gw.Home, "work", fid3.String(), "col-00") // a data column: 2 and 3 are zero padding here, which nodes may hold already
	cf, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	cf.WriteAt([]byte{0xde, 0xad}, 4096)
	cf.Close()
	editJSON(t, filepath.Join(gw.Home, "gateway.json"), func(cfg map[string]any) { delete(cfg, "scheduler") })
	gw.Restart()
	waitHTTP(t, gw.URL+"/version")
	n.WaitStored(fid3, 2*time.Minute)
	st, _, body = get(t, gw.URL+"/file/download/"+fid3.String(), nil)
	if st != 200 {
		t.Fatalf("download: %d", st)
	}
	mustEqual(t, "after the gateway healed its column", body, data3)
	logb, _ := os.ReadFile(filepath.Join(n.Dir, "gateway0.log"))
	if !bytes.Contains(logb, []byte("damaged fragment in the work area")) {
		t.Fatal("the damaged column was not noticed")
	}
	for _, line := range strings.Split(string(logb), "\n") {
		if strings.Contains(line, "push failed") && strings.Contains(line, "hash_mismatch") {
			t.Fatalf("a node was charged for the gateway's damage: %s", line)
		}
	}
}

// setPreferred restarts gateway g preferring some nodes.
func setPreferred(t *testing.T, n *Network, g int, as ...types.Address) {
	gw := n.Gateways[g]
	gw.Kill()
	var pref []string
	for _, a := range as {
		pref = append(pref, a.String())
	}
	editJSON(t, filepath.Join(gw.Home, "gateway.json"), func(cfg map[string]any) {
		cfg["scheduler"] = map[string]any{"preferred": pref, "preferred_boost": 1000, "failures": 1, "cooldown": "30s"}
	})
	gw.Restart()
	waitHTTP(t, gw.URL+"/version")
}

// TestGatewayKilledDuringUploads: 20 uploads (chunked, resumable) while the
// gateway is killed three times at random moments: every file reaches stored
// and reads back identical, and afterwards no session or column file is left.
func TestGatewayKilledDuringUploads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 14 processes")
	}
	// Sessions that a kill orphaned (created, but the answer never reached
	// the client) expire after 40 s.
	n := Start(t, Options{Nodes: 12, Gateway: func(_ int, cfg map[string]any) { cfg["session_ttl"] = "40s" }})
	gw := n.Gateways[0]
	c := sdk.NewWithKey(gw.URL, n.User)
	dir := t.TempDir()
	const files = 20
	datas := make([][]byte, files)
	fids := make([]types.FID, files)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < files; i += 4 {
				datas[i] = randomBytes(uint64(100+i), 1<<20+i*300_000)
				p := filepath.Join(dir, fmt.Sprintf("f%02d", i))
				os.WriteFile(p, datas[i], 0o600)
				o := sdk.UploadOptions{ChunkSize: 1 << 20, Concurrency: 2, StateFile: p + ".state", Tuning: "-", Retries: 2}
				for {
					fid, err := c.Upload(ctx, p, o)
					if err == nil {
						fids[i] = fid
						break
					}
					if ctx.Err() != nil {
						t.Errorf("file %d: %v", i, err)
						return
					}
					time.Sleep(200 * time.Millisecond) // the gateway is restarting
				}
			}
		})
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 3 {
		time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
		gw.Kill()
		time.Sleep(300 * time.Millisecond)
		gw.Restart()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, fid := range fids {
		n.WaitStored(fid, 3*time.Minute)
		st, _, body := get(t, gw.URL+"/file/download/"+fid.String(), nil)
		if st != 200 {
			t.Fatalf("file %d: %d", i, st)
		}
		mustEqual(t, fmt.Sprintf("file %d", i), body, datas[i])
	}
	waitCleaned(t, gw)
	deadline := time.Now().Add(90 * time.Second)
	for {
		entries, _ := os.ReadDir(filepath.Join(gw.Home, "sessions"))
		if len(entries) == 1 && entries[0].Name() == "sessions.db" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions left after their TTL: %v", entries)
		}
		time.Sleep(time.Second)
	}
	if v := metric(t, gw.URL, "deoss_gateway_queue_files"); v != 0 {
		t.Errorf("%v files still queued", v)
	}
}

// TestEncryptedSessionSurvivesRestart: an upload encrypted at the gateway
// keeps its key, sealed, across a gateway kill; the file completes and reads
// back with its cipher (from the work area: there are no nodes).
func TestEncryptedSessionSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a validator and a gateway")
	}
	n := Start(t, Options{Nodes: -1})
	gw := n.Gateways[0]
	secret := map[string]string{"Cipher": "sealed across restarts"}
	data := randomBytes(41, 2<<20)
	st, sess := n.Call("POST", gw.URL+"/upload", []byte(fmt.Sprintf(`{"name":"e.bin","territory":"home","size":%d,"chunk_size":%d}`, len(data), 1<<20)), secret)
	if st != 201 || sess["encryption"] != types.EncryptionAES256GCM.String() {
		t.Fatalf("create: %d %v", st, sess)
	}
	id := sess["id"].(string)
	putChunk := func(i int) {
		part := data[i<<20 : (i+1)<<20]
		if st, m := n.Call("PUT", fmt.Sprintf("%s/upload/%s/%d", gw.URL, id, i), part, map[string]string{"Chunk-Sha256": types.Sum(part).String()}); st != 201 {
			t.Fatalf("chunk %d: %d %v", i, st, m)
		}
	}
	putChunk(0)
	gw.Kill()
	gw.Restart()
	waitHTTP(t, gw.URL+"/version")
	putChunk(1)
	st, done := n.Call("POST", gw.URL+"/upload/"+id+"/complete", nil, nil)
	if st != 200 {
		t.Fatalf("complete: %d %v", st, done)
	}
	fid := done["fid"].(string)
	if st, _, _ := get(t, gw.URL+"/file/download/"+fid, nil); st != 401 {
		t.Fatalf("without the cipher: %d", st)
	}
	st, _, body := get(t, gw.URL+"/file/download/"+fid, secret)
	if st != 200 {
		t.Fatalf("with the cipher: %d %s", st, body)
	}
	mustEqual(t, "encrypted across a restart", body, data)
}
