package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node/store"
	"github.com/deoss/deoss/internal/types"
)

// fixtureSize is the fixture file's size: a full segment (8 MiB fragments)
// and a short last one (16 KiB fragments).
const fixtureSize = types.SegmentSize + 1000

func newMemStore() store.Store { return store.NewMemory(64<<20, types.FragmentSize) }

// fakeChain holds files and gateways in memory.
type fakeChain struct {
	mu       sync.Mutex
	files    map[types.FID]*ledger.File
	gateways map[types.Address]bool
}

func (c *fakeChain) File(_ context.Context, fid types.FID) (*ledger.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.files[fid]
	if !ok {
		return nil, ledger.ErrNotFound
	}
	cp := *f
	return &cp, nil
}

func (c *fakeChain) Gateway(_ context.Context, a types.Address) (*ledger.Gateway, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.gateways[a] {
		return nil, ledger.ErrNotFound
	}
	return &ledger.Gateway{Address: a}, nil
}

type fixture struct {
	t      *testing.T
	srv    *httptest.Server
	chain  *fakeChain
	store  store.Store
	self   *auth.Key
	gw     *auth.Key
	fid    types.FID
	frags  [][]byte // column 3's fragments, by segment
	hashes []types.Hash
	replay *auth.ReplayCache
}

// newFixture: a v2 file of two segments whose column 3 is this node's.
func newFixture(t *testing.T, st store.Store) *fixture { return newFixtureSize(t, st, fixtureSize) }

func newFixtureSize(t *testing.T, st store.Store, size uint64) *fixture {
	self, _ := auth.Generate()
	gw, _ := auth.Generate()
	other, _ := auth.Generate()
	fx := &fixture{t: t, self: self, gw: gw, store: st, fid: types.FID{0xf1}}
	l := types.Layout{Version: types.FormatV2, Owner: types.Address{5}, Size: size, Segments: make([]types.SegmentLayout, 2)}
	f := &ledger.File{FID: fx.fid, Layout: l, State: ledger.FilePending}
	for j := range f.Columns {
		f.Columns[j].Node = other.Address()
	}
	f.Columns[3].Node = self.Address()
	for seg := range 2 {
		b := bytes.Repeat([]byte{byte(seg + 1)}, l.FragmentLen(seg))
		fx.frags = append(fx.frags, b)
		fx.hashes = append(fx.hashes, codec.Sum(types.FormatV2, b))
		f.Layout.Segments[seg].Fragments[3] = fx.hashes[seg]
	}
	fx.chain = &fakeChain{files: map[types.FID]*ledger.File{fx.fid: f}, gateways: map[types.Address]bool{gw.Address(): true}}
	fx.replay = auth.NewReplayCache(auth.ReplayLimits{})
	s := NewServer(ServerConfig{Self: self.Address(), FragmentSize: types.FragmentSize, ReadRate: 1000, ReadBurst: 1000, Replay: fx.replay}, st, fx.chain,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	fx.srv = httptest.NewUnstartedServer(s.Handler())
	fx.srv.Config = s.HTTPServer("", 2*time.Second)
	fx.srv.Start()
	t.Cleanup(fx.srv.Close)
	return fx
}

func (fx *fixture) put(key *auth.Key, path string, body []byte) (*http.Response, map[string]string) {
	fx.t.Helper()
	req, _ := http.NewRequest("PUT", fx.srv.URL+path, bytes.NewReader(body))
	if key != nil {
		auth.SignRequest(req, key, fx.self.Address(), 30*time.Second)
	}
	return do(fx.t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, map[string]string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]string
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &m)
	return resp, m
}

func (fx *fixture) path(col, seg int) string {
	return fmt.Sprintf("/fragment/%s/%d/%d", fx.fid, col, seg)
}

func TestStoreAndRead(t *testing.T) {
	fx := newFixture(t, newMemStore())
	resp, _ := fx.put(fx.gw, fx.path(3, 1), fx.frags[1])
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("store: %d", resp.StatusCode)
	}
	// The same again: success, and still one copy.
	if resp, _ := fx.put(fx.gw, fx.path(3, 1), fx.frags[1]); resp.StatusCode != http.StatusCreated {
		t.Fatalf("repeat: %d", resp.StatusCode)
	}
	// Whole, a range, HEAD.
	get := func(rng string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", fx.srv.URL+"/fragment/"+fx.hashes[1].String(), nil)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	if resp, b := get(""); resp.StatusCode != 200 || !bytes.Equal(b, fx.frags[1]) {
		t.Fatalf("read: %d", resp.StatusCode)
	}
	if resp, b := get("bytes=10-19"); resp.StatusCode != 206 || !bytes.Equal(b, fx.frags[1][10:20]) {
		t.Fatalf("range: %d %q", resp.StatusCode, b)
	}
	if resp, _ := get("bytes=20000-30000"); resp.StatusCode != http.StatusRequestedRangeNotSatisfiable {
		t.Fatalf("range past the end: %d", resp.StatusCode)
	}
	var info Info
	r, _ := http.Get(fx.srv.URL + "/info")
	json.NewDecoder(r.Body).Decode(&info)
	r.Body.Close()
	if info.Used != uint64(len(fx.frags[1]))+uint64(codec.OutboardSize(int64(len(fx.frags[1])))) || info.Address != fx.self.Address() {
		t.Fatalf("info: %+v", info)
	}
	r, _ = http.Get(fx.srv.URL + "/metrics")
	m, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(m), `deoss_node_store_requests_total{result="ok"} 2`) {
		t.Fatalf("metrics:\n%s", m)
	}
}

// TestSharedFragment: two refs of identical bytes (zero padding is the common
// case) are both stored; the second does not need the body read again.
func TestSharedFragment(t *testing.T) {
	fx := newFixtureSize(t, newMemStore(), 2*types.SegmentSize)
	f := fx.chain.files[fx.fid]
	f.Layout.Segments[1].Fragments[3] = f.Layout.Segments[0].Fragments[3]
	for seg := range 2 {
		if resp, body := fx.put(fx.gw, fx.path(3, seg), fx.frags[0]); resp.StatusCode != http.StatusCreated {
			t.Fatalf("segment %d: %d %v", seg, resp.StatusCode, body)
		}
	}
	if used, _ := fx.store.Usage(); used != types.FragmentSize+uint64(codec.OutboardSize(types.FragmentSize)) {
		t.Fatalf("used %d: stored twice", used)
	}
	if segs, _ := fx.store.Segments(context.Background(), fx.fid, 3); len(segs) != 2 {
		t.Fatalf("refs: %v", segs)
	}
}

func TestStoreRejections(t *testing.T) {
	fx := newFixture(t, newMemStore())
	stranger, _ := auth.Generate()
	bad := bytes.Clone(fx.frags[0])
	bad[0] ^= 1
	cases := []struct {
		name   string
		key    *auth.Key
		path   string
		body   []byte
		status int
		code   string
	}{
		{"unsigned", nil, fx.path(3, 0), fx.frags[0], 401, "unauthenticated"},
		{"not a gateway", stranger, fx.path(3, 0), fx.frags[0], 403, "not_a_gateway"},
		{"unknown order", fx.gw, fmt.Sprintf("/fragment/%s/3/0", types.FID{9}), fx.frags[0], 404, "no_order"},
		{"malformed fid", fx.gw, "/fragment/XYZ/3/0", fx.frags[0], 400, "bad_fid"},
		{"column out of range", fx.gw, fmt.Sprintf("/fragment/%s/12/0", fx.fid), fx.frags[0], 400, "bad_position"},
		{"not assigned", fx.gw, fx.path(4, 0), fx.frags[0], 403, "not_assigned"},
		{"no such segment", fx.gw, fx.path(3, 2), fx.frags[0], 404, "no_segment"},
		{"hash mismatch", fx.gw, fx.path(3, 0), bad, 400, "hash_mismatch"},
		{"oversize", fx.gw, fx.path(3, 0), append(bytes.Clone(fx.frags[0]), 0), 413, "too_large"},
		{"short", fx.gw, fx.path(3, 0), fx.frags[0][:10], 400, "bad_size"},
	}
	for _, c := range cases {
		resp, body := fx.put(c.key, c.path, c.body)
		if resp.StatusCode != c.status || body["code"] != c.code || body["error"] == "" {
			t.Errorf("%s: %d %v, want %d %s", c.name, resp.StatusCode, body, c.status, c.code)
		}
	}
	if used, _ := fx.store.Usage(); used != 0 {
		t.Fatalf("something was stored: %d", used)
	}
	// Forged: another key signed, the gateway's account claimed.
	req, _ := http.NewRequest("PUT", fx.srv.URL+fx.path(3, 0), bytes.NewReader(fx.frags[0]))
	auth.SignRequest(req, stranger, fx.self.Address(), 30*time.Second)
	req.Header.Set(auth.HeaderAccount, fx.gw.Address().String())
	if resp, _ := do(t, req); resp.StatusCode != 401 {
		t.Fatalf("forged: %d", resp.StatusCode)
	}
	// Signed by the gateway for another node: refused here.
	req, _ = http.NewRequest("PUT", fx.srv.URL+fx.path(3, 0), bytes.NewReader(fx.frags[0]))
	auth.SignRequest(req, fx.gw, stranger.Address(), 30*time.Second)
	if resp, body := do(t, req); resp.StatusCode != 401 || !strings.Contains(body["error"], "another server") {
		t.Fatalf("for another node: %d %v", resp.StatusCode, body)
	}
	// A stranger's well-signed requests spend no nonce.
	spent := fx.replay.Len()
	for range 10 {
		fx.put(stranger, fx.path(3, 0), fx.frags[0])
	}
	if n := fx.replay.Len(); n != spent {
		t.Fatalf("a stranger spent %d nonces", n-spent)
	}
	// Replayed: the exact headers of a good request, sent twice.
	req, _ = http.NewRequest("PUT", fx.srv.URL+fx.path(3, 0), bytes.NewReader(fx.frags[0]))
	auth.SignRequest(req, fx.gw, fx.self.Address(), 30*time.Second)
	hdr := req.Header.Clone()
	if resp, _ := do(t, req); resp.StatusCode != 201 {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("PUT", fx.srv.URL+fx.path(3, 0), bytes.NewReader(fx.frags[0]))
	req.Header = hdr
	if resp, body := do(t, req); resp.StatusCode != 401 || !strings.Contains(body["error"], "already used") {
		t.Fatalf("replay: %d %v", resp.StatusCode, body)
	}
	// A stored (no longer pending) order takes no new fragments, but a
	// repeat of a held one still succeeds.
	fx.chain.files[fx.fid].State = ledger.FileStored
	if resp, body := fx.put(fx.gw, fx.path(3, 1), fx.frags[1]); resp.StatusCode != 409 {
		t.Fatalf("stored order: %d %v", resp.StatusCode, body)
	}
	if resp, _ := fx.put(fx.gw, fx.path(3, 0), fx.frags[0]); resp.StatusCode != 201 {
		t.Fatalf("repeat after stored: %d", resp.StatusCode)
	}
	// Reads: a hash with path characters, an unknown hash.
	for path, want := range map[string]int{
		"/fragment/..%2F..%2Fetc%2Fpasswd":                    400,
		"/fragment/" + strings.Repeat("a", 63) + "/":          404,
		"/fragment/" + strings.Repeat("ab", 32):               404,
		"/fragment/" + strings.ToUpper(fx.hashes[0].String()): 400,
	} {
		r, err := http.Get(fx.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, r.StatusCode, want)
		}
	}
}

func TestStoreFull(t *testing.T) {
	fx := newFixture(t, store.Full{Store: newMemStore()})
	resp, body := fx.put(fx.gw, fx.path(3, 0), fx.frags[0])
	if resp.StatusCode != http.StatusInsufficientStorage || body["code"] != "full" {
		t.Fatalf("full: %d %v", resp.StatusCode, body)
	}
}

// TestSlowClient: a client that sends its body slower than the read timeout
// is cut off, and nothing is stored.
func TestSlowClient(t *testing.T) {
	fx := newFixture(t, newMemStore())
	req, _ := http.NewRequest("PUT", fx.srv.URL+fx.path(3, 0), nil)
	auth.SignRequest(req, fx.gw, fx.self.Address(), 30*time.Second)
	conn, err := net.Dial("tcp", strings.TrimPrefix(fx.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n", fx.path(3, 0), len(fx.frags[0]))
	for k, v := range req.Header {
		fmt.Fprintf(conn, "%s: %s\r\n", k, v[0])
	}
	fmt.Fprint(conn, "\r\n")
	conn.Write(fx.frags[0][:100])
	// The server answers or closes once its read timeout passes; only if it
	// waited for the slow client would the client's own (generous) deadline
	// end the read. No wall-clock bound is asserted.
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server waited for the slow client")
	}
	if n > 0 && strings.Contains(string(buf[:n]), " 201 ") {
		t.Fatalf("stored a partial body: %s", buf[:n])
	}
	if used, _ := fx.store.Usage(); used != 0 {
		t.Fatalf("stored %d bytes", used)
	}
}

// TestSlices: a stored v2 fragment is served as verified slices of any
// range and as 1 KiB proof chunks; bad ranges are 400 bad_range, a v1
// fragment 404 no_outboard.
func TestSlices(t *testing.T) {
	fx := newFixture(t, newMemStore())
	if resp, body := fx.put(fx.gw, fx.path(3, 0), fx.frags[0]); resp.StatusCode != http.StatusCreated {
		t.Fatalf("store: %d %v", resp.StatusCode, body)
	}
	frag, h := fx.frags[0], fx.hashes[0]
	get := func(path string) (*http.Response, []byte) {
		r, err := http.Get(fx.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r, b
	}
	for _, rg := range [][2]int64{{0, 1}, {12345, 1 << 20}, {0, int64(len(frag))}, {int64(len(frag)) - 5, 5}} {
		resp, b := get(fmt.Sprintf("/fragment/%s/slice?offset=%d&length=%d", h, rg[0], rg[1]))
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.deoss.bao-slice" {
			t.Fatalf("slice %v: %d %s", rg, resp.StatusCode, b)
		}
		dst := make([]byte, rg[1])
		if err := codec.VerifySlice(bytes.NewReader(b), dst, int64(len(frag)), rg[0], h); err != nil || !bytes.Equal(dst, frag[rg[0]:rg[0]+rg[1]]) {
			t.Fatalf("slice %v: %v", rg, err)
		}
		if int64(len(b)) > rg[1]+2*types.ChunkGroup+2048 {
			t.Fatalf("slice %v is %d bytes", rg, len(b))
		}
	}
	// The whole fragment as its outboard and its bytes.
	resp, v := get(fmt.Sprintf("/fragment/%s/verified", h))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.deoss.bao-outboard+data" {
		t.Fatalf("verified: %d", resp.StatusCode)
	}
	whole := make([]byte, len(frag))
	if err := codec.VerifyOutboardStream(bytes.NewReader(v), whole, h); err != nil || !bytes.Equal(whole, frag) {
		t.Fatalf("verified: %v", err)
	}
	resp, p := get(fmt.Sprintf("/fragment/%s/chunk/%d", h, 777))
	if resp.StatusCode != 200 {
		t.Fatalf("chunk: %d", resp.StatusCode)
	}
	if c, err := codec.VerifyChunk(p, int64(len(frag)), 777, h); err != nil || !bytes.Equal(c, frag[777*1024:778*1024]) {
		t.Fatalf("chunk: %v", err)
	}
	for path, code := range map[string]string{
		fmt.Sprintf("/fragment/%s/slice?offset=%d&length=2", h, len(frag)-1): "bad_range",
		fmt.Sprintf("/fragment/%s/slice?offset=-1&length=2", h):              "bad_range",
		fmt.Sprintf("/fragment/%s/slice?offset=0&length=0", h):               "bad_range",
		fmt.Sprintf("/fragment/%s/slice?offset=x&length=1", h):               "bad_range",
		fmt.Sprintf("/fragment/%s/chunk/%d", h, len(frag)/1024):              "bad_range",
		fmt.Sprintf("/fragment/%s/chunk/-1", h):                              "bad_range",
		fmt.Sprintf("/fragment/%s/slice?offset=0&length=1", fx.hashes[1]):    "not_found",
	} {
		resp, b := get(path)
		var m map[string]string
		json.Unmarshal(b, &m)
		if resp.StatusCode/100 != 4 || m["code"] != code {
			t.Errorf("GET %s: %d %s, want %s", path, resp.StatusCode, b, code)
		}
	}
	// A v1 fragment has no slices.
	v1 := bytes.Repeat([]byte{9}, 4096)
	if err := fx.store.Put(context.Background(), store.Ref{FID: types.FID{2}}, store.V1(types.Sum(v1)), bytes.NewReader(v1)); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/slice?offset=0&length=1", "/verified", "/chunk/0"} {
		resp, b := get(fmt.Sprintf("/fragment/%s%s", types.Sum(v1), path))
		if resp.StatusCode != 404 || !strings.Contains(string(b), "no_outboard") {
			t.Fatalf("v1 %s: %d %s", path, resp.StatusCode, b)
		}
	}
}
