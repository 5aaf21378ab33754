package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/testutil"
	"github.com/deoss/deoss/internal/types"
)

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	rand.NewChaCha8(s).Read(b)
	return b
}

// get downloads (a range of) a file and returns status, headers and body.
func get(t testing.TB, url string, hdr map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp.StatusCode, resp.Header, b
}

func mustEqual(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, want %d, differ", what, len(got), len(want))
	}
}

func metric(t testing.TB, url, name string) float64 {
	t.Helper()
	_, _, b := get(t, url+"/metrics", nil)
	var sum float64
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name) && !strings.HasPrefix(line, "#") {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			sum += v
		}
	}
	return sum
}

// TestDownload: two gateways and 14 nodes. A file is read through the other
// gateway before and after distribution, in ranges, with 8 of its 12
// holders killed, with a corrupted fragment and a frozen node; an encrypted
// file needs its cipher; a delete removes everything.
func TestDownload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 17 processes")
	}
	n := Start(t, Options{Nodes: 14, Gateways: 2, Gateway: func(i int, cfg map[string]any) {
		cfg["cache_bytes"] = 3 * types.FragmentSize
	}})
	a, b := n.Gateways[0], n.Gateways[1]
	data := randomBytes(1, 2*types.SegmentSize+12345) // three segments
	// Every node frozen: the file stays pending at A, in its work area.
	for _, nd := range n.Nodes {
		nd.Stop()
	}
	fid := n.Put(0, "film.bin", bytes.NewReader(data), int64(len(data)), nil)

	// Through the other gateway at once: B has it from A, as a peer.
	st, _, body := get(t, b.URL+"/file/download/"+fid.String(), nil)
	if st != 200 {
		t.Fatalf("download via B before stored: %d %s", st, body)
	}
	mustEqual(t, "via B before stored", body, data)
	if peer, node := metric(t, b.URL, `deoss_gateway_fragments_read_total{source="peer"}`), metric(t, b.URL, `deoss_gateway_fragments_read_total{source="node"}`); peer < 9 || node != 0 {
		// 4 data fragments for each whole segment, 1 for the last one's
		// 12,345 bytes (the decoder reads only the fragments a range covers).
		t.Fatalf("B read %v fragments from its peer and %v from nodes; want at least the 9 data fragments the file needs, all from A", peer, node)
	}
	for _, nd := range n.Nodes {
		nd.Cont()
	}

	f := n.WaitStored(fid, 2*time.Minute)
	// Ranges through both gateways.
	for _, g := range []*Gateway{a, b} {
		st, h, body := get(t, g.URL+"/file/download/"+fid.String(), map[string]string{"Range": "bytes=33554000-33555000"})
		if st != 206 || h.Get("Content-Range") != fmt.Sprintf("bytes 33554000-33555000/%d", len(data)) {
			t.Fatalf("range: %d %v", st, h)
		}
		mustEqual(t, "range", body, data[33554000:33555001])
		st, _, body = get(t, g.URL+"/file/download/"+fid.String(), map[string]string{"Range": "bytes=-100"})
		if st != 206 {
			t.Fatalf("suffix range: %d", st)
		}
		mustEqual(t, "suffix", body, data[len(data)-100:])
	}
	for _, c := range []struct {
		rng  string
		want int
	}{{fmt.Sprintf("bytes=%d-", len(data)), 416}, {"bytes=0-1,5-6", 416}, {"bytes=x-y", 400}, {"bytes=9-3", 400}, {"lines=1-2", 400}} {
		if st, _, body := get(t, a.URL+"/file/download/"+fid.String(), map[string]string{"Range": c.rng}); st != c.want || !bytes.Contains(body, []byte(`"code"`)) {
			t.Errorf("Range %q: %d %s, want %d", c.rng, st, body, c.want)
		}
	}
	if st, _, _ := get(t, a.URL+"/file/download/nothex", nil); st != 400 {
		t.Errorf("malformed FID: %d", st)
	}
	if st, _, _ := get(t, a.URL+"/file/download/"+strings.Repeat("ab", 32), nil); st != 404 {
		t.Errorf("unknown FID: %d", st)
	}
	// HEAD and the inline preview.
	resp, err := http.Head(a.URL + "/file/download/" + fid.String())
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != int64(len(data)) {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	text := []byte("<html><body>hello</body></html>")
	tfid := n.Put(0, "page.html", bytes.NewReader(text), int64(len(text)), nil)
	st, h, body := get(t, b.URL+"/file/open/"+tfid.String(), nil)
	if st != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/html") || !bytes.Equal(body, text) {
		t.Fatalf("open: %d %v %q", st, h, body)
	}
	// Shown, never run on the gateway's origin (issue 16, item 8).
	if csp := h.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox") || !strings.Contains(csp, "default-src 'none'") || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("open without a sandbox: %v", h)
	}
	// Metadata, location, list.
	if st, m := n.Call("GET", a.URL+"/file/metadata/"+fid.String(), nil, nil); st != 200 || m["state"] != ledger.FileStored || m["size"].(float64) != float64(len(data)) {
		t.Fatalf("metadata: %d %v", st, m)
	}
	if st, m := n.Call("GET", b.URL+"/file/location/"+fid.String(), nil, nil); st != 200 || len(m["columns"].([]any)) != 12 {
		t.Fatalf("location: %d %v", st, m)
	}
	resp = n.Do(nil, "GET", a.URL+"/files/"+n.User.Address().String(), nil, 0, nil)
	lb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(lb, []byte(fid.String())) || !bytes.Contains(lb, []byte("film.bin")) {
		t.Fatalf("list: %s", lb)
	}

	// The cache stays within its bound.
	var cached int64
	for _, g := range []*Gateway{a, b} {
		entries, _ := os.ReadDir(filepath.Join(g.Home, "cache"))
		cached = 0
		for _, e := range entries {
			if info, err := e.Info(); err == nil && !e.IsDir() {
				cached += info.Size()
			}
		}
		if cached > 3*types.FragmentSize {
			t.Fatalf("%s cache holds %d bytes, bound %d", g.Home, cached, 3*types.FragmentSize)
		}
	}

	// A fresh file, never read: one data fragment corrupted at its node,
	// then the holder of another data column frozen (SIGSTOP).
	data2 := randomBytes(2, types.SegmentSize+777)
	fid2 := n.Put(0, "second.bin", bytes.NewReader(data2), int64(len(data2)), nil)
	f2 := n.WaitStored(fid2, 2*time.Minute)
	waitCleaned(t, a)
	corrupted := n.NodeByAddress(f2.Columns[0].Node)
	h0 := f2.Layout.Segments[0].Fragments[0].String()
	p := filepath.Join(corrupted.Home, "store", "frags", h0[:2], h0[2:4], h0)
	fb, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("fragment file: %v", err)
	}
	fb[1000] ^= 0xff
	os.WriteFile(p, fb, 0o600)
	frozen := n.NodeByAddress(f2.Columns[1].Node)
	frozen.Stop()
	badBefore := metric(t, b.URL, "deoss_gateway_bad_fragments_total")
	start := time.Now()
	st, _, body = get(t, b.URL+"/file/download/"+fid2.String(), nil)
	if st != 200 {
		t.Fatalf("download with a corrupt fragment and a frozen node: %d %s", st, body)
	}
	mustEqual(t, "corrupt+frozen", body, data2)
	t.Logf("download with a corrupt fragment and a frozen node: %v", time.Since(start))
	// The corrupt fragment is noticed and charged once the gateway reads it
	// from its node. That download may not have: under load a hedge can
	// finish a segment without it, and a node that lost a hedge is skipped
	// for 15 s from that loss. So read the range only it holds until it is
	// read (each read is checked), within a bound.
	if !testutil.Eventually(2*time.Minute, 200*time.Millisecond, func() bool {
		if metric(t, b.URL, "deoss_gateway_bad_fragments_total") > badBefore {
			return true
		}
		st, _, body := get(t, b.URL+"/file/download/"+fid2.String(), map[string]string{"Range": "bytes=0-4095"})
		if st != 206 {
			t.Fatalf("range of the corrupt fragment: %d %s", st, body)
		}
		mustEqual(t, "range of the corrupt fragment", body, data2[:4096])
		return false
	}) {
		t.Fatal("the corrupt fragment was never counted")
	}
	frozen.Cont()
	// The node that served wrong bytes lost score at the gateway that read
	// them.
	var infos []struct {
		Address string  `json:"address"`
		Score   float64 `json:"score"`
	}
	_, _, nb := get(t, b.URL+"/nodes", nil)
	json.Unmarshal(nb, &infos)
	for _, in := range infos {
		if in.Address == corrupted.Address.String() && in.Score >= 0.25 {
			t.Fatalf("the corrupting node keeps score %v (prior 0.25)", in.Score)
		}
	}

	// 8 of the 12 holders of the first file killed: it still reads, through
	// the gateway whose cache was never filled with it... and through A.
	killed := 0
	for _, c := range f.Columns {
		if killed == 8 {
			break
		}
		if nd := n.NodeByAddress(c.Node); nd != nil {
			nd.Kill()
			killed++
		}
	}
	for _, g := range []*Gateway{a, b} {
		st, _, body := get(t, g.URL+"/file/download/"+fid.String(), nil)
		if st != 200 {
			t.Fatalf("with 8 holders dead via %s: %d %s", g.URL, st, body)
		}
		mustEqual(t, "8 holders dead", body, data)
	}

	// An encrypted file.
	secret := map[string]string{"Cipher": "open sesame"}
	edata := randomBytes(3, 3<<20)
	efid := n.Put(0, "secret.bin", bytes.NewReader(edata), int64(len(edata)), secret)
	if st, _, _ := get(t, b.URL+"/file/download/"+efid.String(), nil); st != 401 {
		t.Fatalf("no cipher: %d", st)
	}
	if st, _, _ := get(t, b.URL+"/file/download/"+efid.String(), map[string]string{"Cipher": "wrong"}); st != 403 {
		t.Fatalf("wrong cipher: %d", st)
	}
	st, _, body = get(t, b.URL+"/file/download/"+efid.String(), map[string]string{"Cipher": "open sesame", "Range": "bytes=100-199"})
	if st != 206 {
		t.Fatalf("right cipher: %d %s", st, body)
	}
	mustEqual(t, "decrypted range", body, edata[100:200])

	// Delete: a stranger may not; the owner may; then it is gone.
	stranger, _ := auth.Generate()
	resp = n.Do(stranger, "DELETE", a.URL+"/file/"+tfid.String(), nil, 0, nil)
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("delete by a stranger: %d", resp.StatusCode)
	}
	// An account that authorized the gateway but does not own the file.
	other := chain.DevAccount("e2e-other")
	for _, m := range []ledger.Msg{{Faucet: &ledger.Faucet{}}, {Authorize: &ledger.Authorize{Gateway: a.Address}}} {
		if _, err := n.Chain.Signer(other).Submit(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	resp = n.Do(other, "DELETE", a.URL+"/file/"+tfid.String(), nil, 0, nil)
	ob, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !bytes.Contains(ob, []byte("not_owner")) {
		t.Fatalf("delete by a non-owner: %d %s", resp.StatusCode, ob)
	}
	f3 := n.WaitStored(tfid, 2*time.Minute)
	if st, m := n.Call("DELETE", a.URL+"/file/"+tfid.String(), nil, nil); st != 204 {
		t.Fatalf("delete: %d %v", st, m)
	}
	if _, err := n.File(tfid); err == nil {
		t.Fatal("chain record still there")
	}
	if st, _, _ := get(t, b.URL+"/file/download/"+tfid.String(), nil); st != 404 {
		t.Fatalf("download after delete: %d", st)
	}
	// A live holder of a parity column (the data columns of so small a file
	// are mostly zeros, which other files share) collects its fragment.
	col := -1
	for j := types.DataShards; j < types.TotalShards && col < 0; j++ {
		if n.NodeByAddress(f3.Columns[j].Node).Alive() {
			col = j
		}
	}
	if col < 0 {
		t.Fatal("no live holder of a parity column to check collection on")
	}
	holder := n.NodeByAddress(f3.Columns[col].Node)
	deadline := time.Now().Add(time.Minute)
	for {
		r, err := http.Get(holder.URL + "/fragment/" + f3.Layout.Segments[0].Fragments[col].String())
		if err == nil {
			r.Body.Close()
			if r.StatusCode == 404 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s kept column %d of the deleted file", holder.Address, col)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitCleaned waits until a gateway's work area is empty.
func waitCleaned(t testing.TB, g *Gateway) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		entries, _ := os.ReadDir(filepath.Join(g.Home, "work"))
		if len(entries) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("work area not cleaned: %v", entries)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
