package read

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/gateway/cache"
	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/gateway/work"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/ttlcache"
	"github.com/deoss/deoss/internal/types"
)

// peerOnlyChain knows no file and one peer gateway.
type peerOnlyChain struct{ peer string }

func (c peerOnlyChain) File(context.Context, types.FID) (*ledger.File, error) {
	return nil, ledger.ErrNotFound
}
func (c peerOnlyChain) Nodes(context.Context) ([]ledger.Node, error) { return nil, nil }
func (c peerOnlyChain) Gateways(context.Context) ([]ledger.Gateway, error) {
	return []ledger.Gateway{{Address: types.Address{9}, Endpoint: c.peer}}, nil
}
func (c peerOnlyChain) UserFiles(context.Context, types.Address) ([]ledger.UserFile, error) {
	return nil, nil
}

// fakePeer serves a layout and fragments, as a peer gateway that holds a
// pending file would; bad fragments and a forged layout make it lie.
type fakePeer struct {
	layout types.Layout
	frags  map[[2]int][]byte
	bad    map[[2]int]bool
}

func (p *fakePeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /peer/file/{fid}", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(PeerFile{Layout: &p.layout})
	})
	mux.HandleFunc("GET /peer/fragment/{fid}/{seg}/{idx}", func(w http.ResponseWriter, r *http.Request) {
		seg, _ := strconv.Atoi(r.PathValue("seg"))
		idx, _ := strconv.Atoi(r.PathValue("idx"))
		b := bytes.Clone(p.frags[[2]int{seg, idx}])
		if q := r.URL.Query(); q.Has("offset") {
			// A v2 slice, as a real peer builds it.
			off, _ := strconv.ParseInt(q.Get("offset"), 10, 64)
			n, _ := strconv.ParseInt(q.Get("length"), 10, 64)
			ob, _ := codec.Outboard(b)
			var sl bytes.Buffer
			codec.WriteSlice(&sl, bytes.NewReader(b), ob, off, n)
			b = sl.Bytes()
		}
		if p.bad[[2]int{seg, idx}] {
			b[len(b)/2] ^= 1
		}
		w.Write(b)
	})
	mux.ServeHTTP(w, r)
}

func encodeToMap(t *testing.T, data []byte, opts ...codec.EncodeOption) (*codec.Result, map[[2]int][]byte) {
	frags := map[[2]int][]byte{}
	res, err := codec.Encode(context.Background(), bytes.NewReader(data), codec.SinkFunc(func(s *codec.Segment) error {
		for j, f := range s.Fragments {
			frags[[2]int{int(s.Index), j}] = bytes.Clone(f)
		}
		return nil
	}), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return res, frags
}

func newTestReader(t *testing.T, peer string) *Reader { return newReaderOver(t, peerOnlyChain{peer}) }

func newReaderOver(t *testing.T, ch Chain) *Reader {
	root := t.TempDir()
	w, _ := work.Open(root + "/work")
	q, err := pipeline.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	c, _ := cache.Open(root+"/cache", 1<<30)
	return New(Config{}, ch, types.Address{1}, w, q, c, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// TestPeerWrongBytes: a peer gateway that serves a corrupted fragment is
// caught by the hash and routed around; one that serves a forged layout (its
// own fragments, their hashes changed to match) is caught by the segment
// check, and no byte of it reaches the reader.
func TestPeerWrongBytes(t *testing.T) {
	data := bytes.Repeat([]byte("peer bytes "), 500_000)
	res, frags := encodeToMap(t, data, codec.WithFormat(types.FormatV1))
	peer := &fakePeer{layout: res.Layout, frags: frags, bad: map[[2]int]bool{{0, 1}: true}}
	srv := httptest.NewServer(peer)
	defer srv.Close()
	rd := newTestReader(t, srv.URL)
	f, err := rd.Resolve(context.Background(), res.FID)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := rd.Read(context.Background(), &out, f, 0, int64(len(data)), nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("wrong bytes through a lying peer")
	}

	// A forged layout: fragment 0 of segment 0 replaced by other bytes, its
	// hash updated. The FID still matches (it binds segment hashes only).
	forged := res.Layout
	forged.Segments = append([]types.SegmentLayout(nil), res.Layout.Segments...)
	fake := bytes.Repeat([]byte{0xee}, types.FragmentSize)
	forged.Segments[0].Fragments[0] = types.Sum(fake)
	frags2 := map[[2]int][]byte{}
	for k, v := range frags {
		frags2[k] = v
	}
	frags2[[2]int{0, 0}] = fake
	srv2 := httptest.NewServer(&fakePeer{layout: forged, frags: frags2})
	defer srv2.Close()
	rd2 := newTestReader(t, srv2.URL)
	f2, err := rd2.Resolve(context.Background(), res.FID)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = rd2.Read(context.Background(), &out, f2, 0, 1000, nil)
	if !errors.Is(err, codec.ErrNotEnoughFragments) || out.Len() != 0 {
		t.Fatalf("forged layout: %v, %d bytes delivered", err, out.Len())
	}
}

// TestSlowNodesAskedAgainWhenNeeded: a node that lost a hedge is skipped for
// the rest of a download only while enough others remain; with 8 holders
// dead, a slow live one is asked again (a segment needs it).
func TestSlowNodesAskedAgainWhenNeeded(t *testing.T) {
	s := &source{}
	slow := types.Address{1}
	s.markSlow(slow)
	if !s.isSlow(slow) {
		t.Fatal("a slow node with 11 others to ask is not skipped")
	}
	for i := range 7 {
		s.markFailed(types.Address{byte(10 + i)})
	}
	if !s.isSlow(slow) {
		t.Fatal("slow + 7 failed: 4 remain, the slow one may still be skipped")
	}
	s.markFailed(types.Address{99})
	if s.isSlow(slow) {
		t.Fatal("slow + 8 failed: skipping the slow node leaves 3, yet it is skipped")
	}
}

// TestLaggardsExpire: a node that lost a hedge is skipped by other
// downloads for 15 s from that loss; being skipped does not renew it, so a
// busy gateway asks it again once the 15 s are over (CI caught a node once
// slow never being read again while reads kept coming).
func TestLaggardsExpire(t *testing.T) {
	base := time.Unix(1_000_000, 0)
	now := base
	rd := &Reader{laggards: ttlcache.New[types.Address, bool](15*time.Second, 100).WithClock(func() time.Time { return now })}
	slow := types.Address{1}
	(&source{rd: rd}).markSlow(slow)
	for i := 1; i < 15; i++ {
		now = base.Add(time.Duration(i) * time.Second)
		if !(&source{rd: rd}).isSlow(slow) {
			t.Fatalf("%d s after its loss: not skipped", i)
		}
	}
	now = base.Add(15 * time.Second)
	if (&source{rd: rd}).isSlow(slow) {
		t.Fatal("15 s after its only loss a node is still skipped: skipping renewed it")
	}
}

// TestPeerWrongSlicesV2: a peer serving a v2 file's slices with a flipped
// byte is routed around, ranges included; a forged v2 layout does not even
// resolve, since the v2 FID binds every fragment hash.
func TestPeerWrongSlicesV2(t *testing.T) {
	data := bytes.Repeat([]byte("peer bytes v2 "), 500_000)
	res, frags := encodeToMap(t, data, codec.WithOwner(types.Address{7}))
	peer := &fakePeer{layout: res.Layout, frags: frags, bad: map[[2]int]bool{{0, 0}: true, {0, 1}: true}}
	srv := httptest.NewServer(peer)
	defer srv.Close()
	rd := newTestReader(t, srv.URL)
	f, err := rd.Resolve(context.Background(), res.FID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][2]int64{{0, int64(len(data))}, {100, 5000}, {int64(len(data)) - 70000, 70000}} {
		var out bytes.Buffer
		if err := rd.Read(context.Background(), &out, f, r[0], r[1], nil); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), data[r[0]:r[0]+r[1]]) {
			t.Fatalf("range %v: wrong bytes through a lying peer", r)
		}
	}
	forged := res.Layout
	forged.Segments = append([]types.SegmentLayout(nil), res.Layout.Segments...)
	forged.Segments[0].Fragments[0] = codec.Sum(types.FormatV2, []byte("other"))
	srv2 := httptest.NewServer(&fakePeer{layout: forged, frags: frags})
	defer srv2.Close()
	if _, err := newTestReader(t, srv2.URL).Resolve(context.Background(), res.FID); err == nil {
		t.Fatal("a forged v2 layout resolved")
	}
}

// blockedWriter takes nothing until unblocked: a client that never reads.
type blockedWriter struct {
	entered chan struct{}
	unblock chan struct{}
}

func (b *blockedWriter) Write(p []byte) (int, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.unblock
	return len(p), nil
}

// TestStalledReadersHoldNoSlot: downloads whose clients never read hold no
// decode slot while they wait on their clients, so other downloads go
// through (with one slot, the second reader used to wait for the first
// stalled one).
func TestStalledReadersHoldNoSlot(t *testing.T) {
	data := bytes.Repeat([]byte("stalled "), 200_000)
	res, frags := encodeToMap(t, data, codec.WithOwner(types.Address{7}))
	srv := httptest.NewServer(&fakePeer{layout: res.Layout, frags: frags})
	defer srv.Close()
	root := t.TempDir()
	w, _ := work.Open(root + "/work")
	q, err := pipeline.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	c, _ := cache.Open(root+"/cache", 1<<30)
	rd := New(Config{Downloads: 1}, peerOnlyChain{srv.URL}, types.Address{1}, w, q, c, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := rd.Resolve(ctx, res.FID)
	if err != nil {
		t.Fatal(err)
	}
	unblock := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(unblock)
	for i := range 3 { // inFlight is 4 with one slot
		bw := &blockedWriter{entered: make(chan struct{}, 1), unblock: unblock}
		wg.Go(func() { rd.Read(ctx, bw, f, 0, int64(len(data)), nil) })
		select {
		case <-bw.entered: // this reader is stuck on its client now
		case <-time.After(time.Minute):
			t.Fatalf("stalled reader %d waited a minute for a slot held by stalled readers", i+1)
		}
	}
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- rd.Read(ctx, &out, f, 0, int64(len(data)), nil) }()
	select {
	case err := <-done:
		if err != nil || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("the download beside stalled ones: %v (%d bytes)", err, out.Len())
		}
	case <-time.After(time.Minute):
		t.Fatal("a download waited a minute behind three stalled readers")
	}
}

// manyGateways knows 500 gateways, all at one counting endpoint.
type manyGateways struct {
	peerOnlyChain
	endpoint string
}

func (c manyGateways) Gateways(context.Context) ([]ledger.Gateway, error) {
	out := make([]ledger.Gateway, 500)
	for i := range out {
		out[i] = ledger.Gateway{Address: types.Address{byte(i), byte(i >> 8), 1}, Endpoint: c.endpoint}
	}
	return out, nil
}

// TestPeerProbesBounded: looking for a file asks at most 16 peers, however
// many gateways are registered (every unauthenticated download would
// otherwise make this gateway call every endpoint on chain).
func TestPeerProbesBounded(t *testing.T) {
	var probes atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		probes.Add(1)
		http.NotFound(w, nil)
	}))
	defer srv.Close()
	rd := newTestReader(t, "")
	rd.chain = manyGateways{endpoint: srv.URL}
	for range 3 {
		if _, err := rd.Resolve(context.Background(), types.FID{7}); !errors.Is(err, ErrNoFile) {
			t.Fatalf("resolve: %v", err)
		}
	}
	if n := probes.Load(); n > 3*maxPeerProbes || n == 0 {
		t.Fatalf("3 reads sent %d probes to 500 registered gateways, want 1 to %d", n, 3*maxPeerProbes)
	}
}

// nodesChain is a chain of storage nodes at the given endpoints (and of
// file, when set).
type nodesChain struct {
	peerOnlyChain
	nodes []ledger.Node
	file  *ledger.File
}

func (c nodesChain) File(context.Context, types.FID) (*ledger.File, error) {
	if c.file == nil {
		return nil, ledger.ErrNotFound
	}
	cp := *c.file
	return &cp, nil
}

func (c nodesChain) Nodes(context.Context) ([]ledger.Node, error) { return c.nodes, nil }
func (c nodesChain) Gateways(context.Context) ([]ledger.Gateway, error) {
	return nil, nil
}

// TestSlowNodeAskedWhenTheDeadAreFound: the one live node left beside three
// is a laggard (it lost a hedge lately), and the decoder asks it before it
// learns that eight holders are dead; skipped then, it is asked when the
// segment turns out to need it, and the read succeeds (CI caught a 503
// there with four live holders).
func TestSlowNodeAskedWhenTheDeadAreFound(t *testing.T) {
	data := bytes.Repeat([]byte("slow but needed "), 20_000)
	res, serve := nodeServing(t, data)
	live := httptest.NewServer(serve)
	defer live.Close()
	dead := httptest.NewServer(serve)
	dead.Close() // connection refused from now on
	chainFile := &ledger.File{FID: res.FID, Layout: res.Layout, State: ledger.FileStored}
	var nodes []ledger.Node
	for j := range types.TotalShards {
		a := types.Address{byte(100 + j)}
		ep := live.URL
		if j >= 1 && j <= 8 {
			ep = dead.URL
		}
		chainFile.Columns[j] = ledger.Column{Node: a, Reported: true}
		nodes = append(nodes, ledger.Node{Address: a, Endpoint: ep, State: ledger.NodeActive})
	}
	rd := newReaderOver(t, nodesChain{nodes: nodes})
	rd.laggards.Put(nodes[0].Address, true)
	var out bytes.Buffer
	if err := rd.Read(context.Background(), &out, &File{FID: res.FID, Layout: &res.Layout, Chain: chainFile}, 0, int64(len(data)), nil); err != nil {
		t.Fatalf("read with 4 live holders, one a laggard: %v", err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("wrong bytes")
	}
}

// TestStoredWhileReadAsPending: a file resolved while pending here, whose
// work copy goes when it is stored (before the read gets to it), is read
// from its nodes instead of failing (CI: a 503 for a 3 KiB file read right
// after its upload, under load).
func TestStoredWhileReadAsPending(t *testing.T) {
	data := bytes.Repeat([]byte("pending, then stored "), 200)
	res, serve := nodeServing(t, data)
	srv := httptest.NewServer(serve)
	defer srv.Close()
	stored := &ledger.File{FID: res.FID, Layout: res.Layout, State: ledger.FileStored}
	var nodes []ledger.Node
	for j := range types.TotalShards {
		a := types.Address{byte(100 + j)}
		stored.Columns[j] = ledger.Column{Node: a, Reported: true}
		nodes = append(nodes, ledger.Node{Address: a, Endpoint: srv.URL, State: ledger.NodeActive})
	}
	rd := newReaderOver(t, nodesChain{nodes: nodes, file: stored})
	var out bytes.Buffer
	// Resolved as pending: no chain record, and the work area (empty here)
	// has lost its copy.
	if err := rd.Read(context.Background(), &out, &File{FID: res.FID, Layout: &res.Layout}, 0, int64(len(data)), nil); err != nil {
		t.Fatalf("read of a file stored while it was read as pending: %v", err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("wrong bytes")
	}
}

// nodeServing encodes data as a v2 file and returns a handler that serves
// its fragments whole by hash, as a storage node's GET /fragment/{hash}.
func nodeServing(t *testing.T, data []byte) (*codec.Result, http.Handler) {
	res, frags := encodeToMap(t, data, codec.WithOwner(types.Address{7}))
	byHash := map[types.Hash][]byte{}
	for k, b := range frags {
		byHash[res.Layout.Segments[k[0]].Fragments[k[1]]] = b
	}
	return res, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, err := types.ParseHash(strings.TrimPrefix(r.URL.Path, "/fragment/"))
		if b, ok := byHash[h]; err == nil && ok {
			w.Write(b)
			return
		}
		http.NotFound(w, r)
	})
}
