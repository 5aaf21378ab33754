package work

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/types"
)

func TestEncodeAndRead(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, ".encoding-left"), 0o700)
	a, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, ".encoding-left")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("leftover of an interrupted encoding kept")
	}
	data := bytes.Repeat([]byte("work area "), types.SegmentSize/10+77) // two segments
	res, err := a.Encode(ctx, bytes.NewReader(data), codec.WithOwner(types.Address{1}))
	if err != nil {
		t.Fatal(err)
	}
	l, err := a.Layout(res.FID)
	if err != nil || codec.FileID(l) != res.FID || len(l.Segments) != 2 {
		t.Fatalf("layout: %v", err)
	}
	// Every fragment reads back with its hash.
	for s := range uint64(2) {
		for j := range types.TotalShards {
			rc, err := a.Fragment(res.FID, s, j)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if len(b) != l.FragmentLen(int(s)) || codec.Sum(l.Version, b) != l.Segments[s].Fragments[j] {
				t.Fatalf("fragment (%d, %d) differs", s, j)
			}
		}
	}
	// The work area is a fragment source: the file decodes from it.
	var out bytes.Buffer
	if err := codec.Decode(ctx, &out, l, a.Source(res.FID), 0, int64(len(data))); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("decode from the work area: %v", err)
	}
	// The same bytes again keep the one copy.
	if again, err := a.Encode(ctx, bytes.NewReader(data), codec.WithOwner(types.Address{1})); err != nil || again.FID != res.FID {
		t.Fatalf("again: %v", err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 1 || entries[0].Name() != res.FID.String() {
		t.Fatalf("the work area holds %v, want the one file", entries)
	}
	// A failed encoding leaves nothing.
	if _, err := a.Encode(ctx, bytes.NewReader(data), codec.WithOwner(types.Address{1}), codec.WithSize(int64(len(data))+1)); !errors.Is(err, codec.ErrSizeMismatch) {
		t.Fatalf("size mismatch: %v", err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Fatalf("left after a failed encoding: %v", entries)
	}
	if err := a.Remove(res.FID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Layout(res.FID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after remove: %v", err)
	}
	if _, err := a.Fragment(res.FID, 0, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("fragment after remove: %v", err)
	}
}

func TestRepair(t *testing.T) {
	a, _ := Open(t.TempDir())
	data := bytes.Repeat([]byte("repair me "), types.SegmentSize/10+5) // two segments
	res, err := a.Encode(context.Background(), bytes.NewReader(data), codec.WithOwner(types.Address{1}))
	if err != nil {
		t.Fatal(err)
	}
	l := &res.Layout
	// The disk flips a byte of column 5 in segment 1.
	p := filepath.Join(a.dir(res.FID), colName(5))
	f, _ := os.OpenFile(p, os.O_RDWR, 0)
	f.WriteAt([]byte{0xff}, types.FragmentSize+1234)
	f.Close()
	if ok, err := a.Verify(res.FID, l, 1, 5); ok || err != nil {
		t.Fatalf("verify a damaged fragment: %v %v", ok, err)
	}
	if ok, _ := a.Verify(res.FID, l, 0, 5); !ok {
		t.Fatal("segment 0 was not damaged")
	}
	if err := a.Repair(res.FID, l, 1, 5); err != nil {
		t.Fatal(err)
	}
	if ok, err := a.Verify(res.FID, l, 1, 5); !ok || err != nil {
		t.Fatalf("after repair: %v %v", ok, err)
	}
	// With nine columns of a segment damaged, nothing can rebuild it.
	for j := range 9 {
		f, _ := os.OpenFile(filepath.Join(a.dir(res.FID), colName(j)), os.O_RDWR, 0)
		f.WriteAt([]byte{0xff, 0xfe}, 10)
		f.Close()
	}
	if err := a.Repair(res.FID, l, 0, 0); !errors.Is(err, ErrUnrepairable) {
		t.Fatalf("repair with 3 good columns: %v", err)
	}
}
