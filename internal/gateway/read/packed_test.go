package read

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"lukechampine.com/blake3"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/gateway/pack"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

type noPacked struct{}

func (noPacked) Packed(context.Context, types.FID) (*ledger.PackedView, error) {
	return nil, ledger.ErrNotFound
}

// A peer's buffered object is found by its OID and served only once its
// bytes hash to it: a peer that serves other bytes (or claims another
// owner) serves nothing.
func TestPeerObject(t *testing.T) {
	owner := types.Address{7}
	data := []byte("a small object in a peer's buffer")
	oid := codec.ObjectID(types.EncryptionNone, owner, uint64(len(data)), blake3.Sum256(data))
	serve := data
	claimed := owner
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/peer/object/"+oid.String() {
			http.NotFound(w, r)
			return
		}
		w.Header().Set(HeaderObjectOwner, claimed.String())
		w.Header().Set(HeaderObjectName, "n%C3%A9")
		w.Header().Set("Content-Length", strconv.Itoa(len(serve)))
		if r.Method == http.MethodGet {
			w.Write(serve)
		}
	}))
	defer srv.Close()
	rd := newReaderOver(t, peerOnlyChain{srv.URL})
	rd.UsePacks(nil, noPacked{}, t.TempDir())
	ctx := context.Background()
	f, err := rd.Resolve(ctx, oid)
	if err != nil || f.Object == nil || f.Object.Owner != owner || f.Object.Name != "né" || f.Layout.Size != uint64(len(data)) {
		t.Fatalf("resolve: %v %+v", err, f)
	}
	var got bytes.Buffer
	if err := rd.Read(ctx, &got, f, 2, 5, nil); err != nil || got.String() != string(data[2:7]) {
		t.Fatalf("read: %v %q", err, got.String())
	}
	serve = bytes.ToUpper(data)
	got.Reset()
	if err := rd.Read(ctx, &got, f, 0, int64(len(data)), nil); !errors.Is(err, pack.ErrCorrupt) || got.Len() != 0 {
		t.Fatalf("a lying peer: %v, %d bytes served", err, got.Len())
	}
	serve, claimed = data, types.Address{8}
	f, err = rd.Resolve(ctx, oid)
	if err != nil {
		t.Fatal(err)
	}
	got.Reset()
	if err := rd.Read(ctx, &got, f, 0, int64(len(data)), nil); !errors.Is(err, pack.ErrCorrupt) || got.Len() != 0 {
		t.Fatalf("a peer claiming another owner: %v, %d bytes served", err, got.Len())
	}
}

// packsChain serves pack files, nodes and one packed object's record.
type packsChain struct {
	nodesChain
	files  map[types.FID]*ledger.File
	object *ledger.PackedView
}

func (c packsChain) File(_ context.Context, fid types.FID) (*ledger.File, error) {
	if f, ok := c.files[fid]; ok {
		cp := *f
		return &cp, nil
	}
	return nil, ledger.ErrNotFound
}

func (c packsChain) Packed(_ context.Context, oid types.FID) (*ledger.PackedView, error) {
	if c.object != nil && c.object.OID == oid {
		cp := *c.object
		return &cp, nil
	}
	return nil, ledger.ErrNotFound
}

// TestForgedLocation: a gateway (one the victim authorized, so that the
// ledger took its entry) declared the victim's OID first, in a pack of its
// own whose bytes there are garbage; its location is the credited one.
// The victim's own upload, packed again by an honest gateway, is a second
// location: a read verifies the first, refuses it and serves the second.
func TestForgedLocation(t *testing.T) {
	victim := types.Address{7}
	data := bytes.Repeat([]byte("the victim's object "), 300)
	oid := codec.ObjectID(types.EncryptionNone, victim, uint64(len(data)), blake3.Sum256(data))
	forgedBytes := append(bytes.Repeat([]byte{0xEE}, 4096), bytes.Repeat([]byte("x"), len(data))...)
	honestBytes := append(bytes.Repeat([]byte("other objects "), 100), data...)
	byHash := map[types.Hash][]byte{}
	files := map[types.FID]*ledger.File{}
	var locs []ledger.PackLocation
	for i, pk := range [][]byte{forgedBytes, honestBytes} {
		res, frags := encodeToMap(t, pk, codec.WithOwner(types.Address{byte(50 + i)}))
		for k, b := range frags {
			byHash[res.Layout.Segments[k[0]].Fragments[k[1]]] = b
		}
		files[res.FID] = &ledger.File{FID: res.FID, Layout: res.Layout, State: ledger.FileStored}
		locs = append(locs, ledger.PackLocation{Pack: res.FID, Offset: uint64(len(pk) - len(data)), Gateway: types.Address{byte(50 + i)}, Credited: i == 0})
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, err := types.ParseHash(strings.TrimPrefix(r.URL.Path, "/fragment/"))
		if b, ok := byHash[h]; err == nil && ok {
			w.Write(b)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	var nodes []ledger.Node
	for j := range types.TotalShards {
		a := types.Address{byte(100 + j)}
		for _, f := range files {
			f.Columns[j] = ledger.Column{Node: a, Reported: true}
		}
		nodes = append(nodes, ledger.Node{Address: a, Endpoint: srv.URL, State: ledger.NodeActive})
	}
	ch := packsChain{nodesChain: nodesChain{nodes: nodes}, files: files,
		object: &ledger.PackedView{PackedObject: ledger.PackedObject{OID: oid, Owner: victim, Length: uint64(len(data)), Locations: locs}}}
	rd := newReaderOver(t, ch)
	rd.UsePacks(nil, ch, t.TempDir())
	ctx := context.Background()
	f, err := rd.Resolve(ctx, oid)
	if err != nil || f.Object == nil {
		t.Fatalf("resolve: %v", err)
	}
	for range 2 { // the second read finds the verified location at once
		var got bytes.Buffer
		if err := rd.Read(ctx, &got, f, 0, int64(len(data)), nil); err != nil || !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("read past the forged location: %v (%d bytes)", err, got.Len())
		}
	}
	// With the honest location gone only the forged one is left: nothing
	// is served.
	ch.object.Locations = locs[:1]
	f, _ = rd.Resolve(ctx, oid)
	var got bytes.Buffer
	if err := rd.Read(ctx, &got, f, 0, int64(len(data)), nil); !errors.Is(err, pack.ErrCorrupt) || got.Len() != 0 {
		t.Fatalf("only the forged location: %v, %d bytes served", err, got.Len())
	}
}
