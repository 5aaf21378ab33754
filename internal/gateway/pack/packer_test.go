package pack

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"lukechampine.com/blake3"

	"github.com/deoss/deoss/internal/gateway/ingest"
	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// fakeNet stands for ingest, the queue and the chain: a pack accepted is
// a file named by the hash of its bytes, stored when the test says so.
type fakeNet struct {
	accepted map[types.FID][]byte
	files    map[types.FID]*ledger.File
	declared []ledger.DeclarePack
}

func (n *fakeNet) Accept(_ context.Context, body io.Reader, f ingest.File) (*pipeline.Record, error) {
	b, _ := io.ReadAll(body)
	if int64(len(b)) != f.Size || f.Owner != owner || f.Territory != "packs" {
		panic("a pack accepted wrong")
	}
	fid := types.FID(blake3.Sum256(b))
	n.accepted[fid] = b
	return &pipeline.Record{FID: fid, Owner: f.Owner}, nil
}

func (n *fakeNet) File(_ context.Context, fid types.FID) (*ledger.File, error) {
	if f, ok := n.files[fid]; ok {
		return f, nil
	}
	return nil, ledger.ErrNotFound
}

func (n *fakeNet) Submit(_ context.Context, m ledger.Msg) error {
	n.declared = append(n.declared, *m.DeclarePack)
	n.files[m.DeclarePack.Pack].Pack = &ledger.PackStats{Entries: uint64(len(m.DeclarePack.Entries))}
	return nil
}

func (n *fakeNet) Territory(context.Context, types.Address, string) (*ledger.Territory, error) {
	return &ledger.Territory{Total: 1 << 30, Expires: 1 << 62}, nil
}

func (n *fakeNet) Packed(context.Context, types.FID) (*ledger.PackedView, error) {
	return nil, ledger.ErrNotFound
}

func (n *fakeNet) PackEntries(context.Context, types.FID) ([]ledger.PackEntryView, error) {
	return nil, nil
}

func (n *fakeNet) Records(types.FID) ([]pipeline.Record, error) { return nil, nil }

func TestPackerSealsDeclaresDrops(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	b, err := Open(dir, c.now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	net := &fakeNet{accepted: map[types.FID][]byte{}, files: map[types.FID]*ledger.File{}}
	newPacker := func(b *Buffer) *Packer {
		return NewPacker(Config{Territory: "packs", MaxAge: time.Minute, Now: func() time.Time { return c.t }}, b, owner, net, net, net, slog.New(slog.DiscardHandler))
	}
	p := newPacker(b)
	var objs []Object
	for i := range 3 {
		o, err := b.AppendReader(Object{Owner: owner, Name: "n", Territory: "home", Length: uint64(len(content(i)))}, bytes.NewReader(content(i)))
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	if _, err := b.AppendReader(Object{Owner: owner, Length: 10}, bytes.NewReader([]byte("short"))); err == nil {
		t.Fatal("a short body was buffered")
	}
	ctx := context.Background()
	p.Step(ctx)
	if len(b.Sealed()) != 0 {
		t.Fatal("sealed before the oldest object's time")
	}
	c.t = c.t.Add(2 * time.Minute)
	p.Step(ctx) // sealed and accepted; not on chain yet
	if len(b.Sealed()) != 1 || len(net.accepted) != 1 {
		t.Fatalf("sealed %v, accepted %d", b.Sealed(), len(net.accepted))
	}
	if err := b.Delete(objs[1].OID); err != nil {
		t.Fatal(err)
	}
	// A restart before the pack is stored: the seal is redone with the
	// same bytes (the same pack).
	b.Close()
	if b, err = Open(dir, c.now, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	p = newPacker(b)
	p.Step(ctx)
	if len(net.accepted) != 1 {
		t.Fatalf("the pack changed across the restart: %d packs", len(net.accepted))
	}
	var fid types.FID
	for f := range net.accepted {
		fid = f
	}
	net.files[fid] = &ledger.File{FID: fid, State: ledger.FileStored}
	p.Step(ctx)
	if len(net.declared) != 1 || len(b.Sealed()) != 0 {
		t.Fatalf("declared %d, sealed %v", len(net.declared), b.Sealed())
	}
	d := net.declared[0]
	if len(d.Entries) != 2 || d.Entries[0].OID != objs[0].OID || d.Entries[1].OID != objs[2].OID {
		t.Fatalf("entries: %+v", d.Entries)
	}
	data := net.accepted[fid]
	for i, e := range d.Entries {
		if want := content([]int{0, 2}[i]); !bytes.Equal(data[e.Offset:e.Offset+e.Length], want) {
			t.Fatalf("entry %d does not point at its bytes", i)
		}
	}
	if _, ok := b.Get(objs[0].OID); ok {
		t.Fatal("a declared object is still buffered")
	}
}

// TestAppendReaderBodies: a body shorter or longer than declared, or one
// that fails, is refused with its own error, in memory and spooled alike,
// and nothing of it stays in the buffer.
func TestAppendReaderBodies(t *testing.T) {
	b := openAt(t, t.TempDir())
	boom := errors.New("the body's signature does not match")
	for _, size := range []int{100, memSpoolMax + 1} {
		body := bytes.Repeat([]byte{7}, size)
		for name, r := range map[string]io.Reader{
			"short":  bytes.NewReader(body[:size-1]),
			"long":   io.MultiReader(bytes.NewReader(body), strings.NewReader("x")),
			"failed": io.MultiReader(bytes.NewReader(body[:10]), iotest.ErrReader(boom)),
		} {
			_, err := b.AppendReader(Object{Owner: owner, Length: uint64(size)}, r)
			switch {
			case name == "failed" && !errors.Is(err, boom):
				t.Errorf("%d bytes, %s: %v, want the body's error", size, name, err)
			case name != "failed" && !errors.Is(err, ingest.ErrSizeMismatch):
				t.Errorf("%d bytes, %s: %v, want a size mismatch", size, name, err)
			}
		}
		o, err := b.AppendReader(Object{Owner: owner, Length: uint64(size)}, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if _, sr, err := b.Read(o.OID); err != nil || sr.Size() != int64(size) {
			t.Fatalf("%d bytes read back: %v", size, err)
		}
	}
	if st := b.OpenLog(); st.Objects != 2 {
		t.Fatalf("%d objects buffered, want 2", st.Objects)
	}
	if b.memHeld.Load() != 0 {
		t.Fatalf("%d bytes still held in memory", b.memHeld.Load())
	}
}
