package read

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
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
