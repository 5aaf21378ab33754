// Package storetest is the conformance suite every store.Store runs.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/node/store"
	"github.com/deoss/deoss/internal/types"
)

// MaxSize is the fragment size limit the suite's stores must be opened with,
// and Capacity their capacity: room for exactly four fragments of MaxSize.
const (
	MaxSize  = 64 << 10
	Capacity = 4 * MaxSize
)

// Factory opens the store under test; reopen, if not nil, closes a store and
// opens it again on the same state (persistent stores).
type Factory struct {
	Open   func(t *testing.T) store.Store
	Reopen func(t *testing.T, s store.Store) store.Store
}

// Run runs the suite.
func Run(t *testing.T, f Factory) {
	tests := map[string]func(*testing.T, Factory){
		"PutOpen":     testPutOpen,
		"Idempotent":  testIdempotent,
		"BadBytes":    testBadBytes,
		"Dedup":       testDedup,
		"Capacity":    testCapacity,
		"Concurrent":  testConcurrent,
		"Listing":     testListing,
		"Persistence": testPersistence,
		"V2":          testV2,
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) { fn(t, f) })
	}
}

func frag(i int) ([]byte, types.Hash) {
	b := bytes.Repeat([]byte(fmt.Sprintf("fragment %d;", i)), MaxSize/8)[:MaxSize-i]
	return b, sha256.Sum256(b)
}

func ref(file byte, col uint8, seg uint32) store.Ref {
	return store.Ref{FID: types.FID{file}, Column: col, Segment: seg}
}

var ctx = context.Background()

func mustPut(t *testing.T, s store.Store, r store.Ref, i int) types.Hash {
	t.Helper()
	b, h := frag(i)
	if err := s.Put(ctx, r, store.V1(h), bytes.NewReader(b)); err != nil {
		t.Fatalf("put %s: %v", r, err)
	}
	return h
}

func read(t *testing.T, s store.Store, h types.Hash) []byte {
	t.Helper()
	f, err := s.Open(ctx, h)
	if err != nil {
		t.Fatalf("open %s: %v", h, err)
	}
	defer f.Close()
	b := make([]byte, f.Size())
	if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return b
}

func testPutOpen(t *testing.T, f Factory) {
	s := f.Open(t)
	defer s.Close()
	h := mustPut(t, s, ref(1, 0, 0), 1)
	want, _ := frag(1)
	if got := read(t, s, h); !bytes.Equal(got, want) {
		t.Fatal("bytes differ")
	}
	// A range.
	fr, _ := s.Open(ctx, h)
	part := make([]byte, 100)
	if _, err := fr.ReadAt(part, 1000); err != nil || !bytes.Equal(part, want[1000:1100]) || fr.Size() != int64(len(want)) {
		t.Fatalf("range: %v", err)
	}
	fr.Close()
	if got, err := s.Lookup(ctx, ref(1, 0, 0)); err != nil || got != h {
		t.Fatalf("lookup: %v", err)
	}
	if _, err := s.Open(ctx, types.Hash{9}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("open missing: %v", err)
	}
	if _, err := s.Lookup(ctx, ref(9, 0, 0)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("lookup missing: %v", err)
	}
	if used, capacity := s.Usage(); used != uint64(len(want)) || capacity != Capacity {
		t.Fatalf("usage %d/%d", used, capacity)
	}
}

func testIdempotent(t *testing.T, f Factory) {
	s := f.Open(t)
	defer s.Close()
	h := mustPut(t, s, ref(1, 0, 0), 1)
	mustPut(t, s, ref(1, 0, 0), 1)
	// The same ref with other bytes is a conflict, and changes nothing.
	b2, h2 := frag(2)
	if err := s.Put(ctx, ref(1, 0, 0), store.V1(h2), bytes.NewReader(b2)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("conflict: %v", err)
	}
	if got, _ := s.Lookup(ctx, ref(1, 0, 0)); got != h {
		t.Fatal("ref changed")
	}
	if _, err := s.Open(ctx, h2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("conflicting bytes stored: %v", err)
	}
}

func testBadBytes(t *testing.T, f Factory) {
	s := f.Open(t)
	defer s.Close()
	b, h := frag(1)
	bad := bytes.Clone(b)
	bad[7] ^= 1
	cases := map[string]struct {
		r    io.Reader
		want error
	}{
		"mismatch":  {bytes.NewReader(bad), store.ErrHashMismatch},
		"truncated": {bytes.NewReader(b[:len(b)-1]), store.ErrHashMismatch},
		"too large": {bytes.NewReader(append(bytes.Clone(b), make([]byte, MaxSize)...)), store.ErrTooLarge},
		"reader":    {io.MultiReader(bytes.NewReader(b[:100]), errReader{}), errBroken},
	}
	for name, c := range cases {
		if err := s.Put(ctx, ref(1, 0, 0), store.V1(h), c.r); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if _, err := s.Open(ctx, h); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("something was stored: %v", err)
	}
	if _, err := s.Lookup(ctx, ref(1, 0, 0)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a ref was kept: %v", err)
	}
	if used, _ := s.Usage(); used != 0 {
		t.Fatalf("used %d", used)
	}
	// A cancelled context stores nothing either.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Put(cctx, ref(1, 0, 0), store.V1(h), bytes.NewReader(b)); err == nil {
		if _, err := s.Lookup(ctx, ref(1, 0, 0)); err != nil {
			t.Fatal("Put succeeded without storing")
		}
	}
}

var errBroken = errors.New("broken reader")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }

func testDedup(t *testing.T, f Factory) {
	s := f.Open(t)
	defer s.Close()
	h := mustPut(t, s, ref(1, 0, 0), 1)
	// The second ref of stored bytes does not read its reader at all.
	if err := s.Put(ctx, ref(2, 5, 3), store.V1(h), errReader{}); err != nil {
		t.Fatalf("second ref: %v", err)
	}
	b, _ := frag(1)
	if used, _ := s.Usage(); used != uint64(len(b)) {
		t.Fatalf("stored twice: used %d", used)
	}
	if err := s.Release(ctx, ref(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, h); !bytes.Equal(got, b) {
		t.Fatal("fragment gone while referenced")
	}
	if err := s.Release(ctx, ref(1, 0, 0)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("double release: %v", err)
	}
	if err := s.Release(ctx, ref(2, 5, 3)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, h); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unreferenced fragment kept: %v", err)
	}
	if used, _ := s.Usage(); used != 0 {
		t.Fatalf("used %d after release", used)
	}
}

func testCapacity(t *testing.T, f Factory) {
	s := f.Open(t)
	defer s.Close()
	for i := range 4 {
		mustPut(t, s, ref(1, 0, uint32(i)), i)
	}
	b, h := frag(4)
	if err := s.Put(ctx, ref(1, 0, 4), store.V1(h), bytes.NewReader(b)); !errors.Is(err, store.ErrFull) {
		t.Fatalf("over capacity: %v", err)
	}
	// Stored bytes still take a new ref when full.
	_, h0 := frag(0)
	if err := s.Put(ctx, ref(2, 0, 0), store.V1(h0), errReader{}); err != nil {
		t.Fatalf("ref of stored bytes when full: %v", err)
	}
	if err := s.Release(ctx, ref(1, 0, 3)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, ref(1, 0, 4), store.V1(h), bytes.NewReader(b)); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

func testConcurrent(t *testing.T, f Factory) {
	s := f.Open(t)
	defer s.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			// Eight puts of one fragment, eight of two others, interleaved
			// with releases of their own refs.
			n := i % 3
			b, h := frag(n)
			r := ref(byte(i), 0, 0)
			if err := s.Put(ctx, r, store.V1(h), bytes.NewReader(b)); err != nil {
				errs <- err
				return
			}
			if i%2 == 0 {
				if err := s.Release(ctx, r); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Every ref still held reads back its bytes.
	for i := 1; i < 16; i += 2 {
		h, err := s.Lookup(ctx, ref(byte(i), 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := frag(i % 3)
		if !bytes.Equal(read(t, s, h), want) {
			t.Fatalf("ref %d reads wrong bytes", i)
		}
	}
}

func testListing(t *testing.T, f Factory) {
	s := f.Open(t)
	defer s.Close()
	mustPut(t, s, ref(1, 3, 2), 1)
	mustPut(t, s, ref(1, 3, 0), 2)
	mustPut(t, s, ref(1, 4, 1), 3)
	mustPut(t, s, ref(2, 3, 7), 1)
	segs, err := s.Segments(ctx, types.FID{1}, 3)
	if err != nil || fmt.Sprint(segs) != "[0 2]" {
		t.Fatalf("segments: %v %v", segs, err)
	}
	files, err := s.Files(ctx)
	if err != nil || len(files) != 2 || files[0] != (types.FID{1}) || files[1] != (types.FID{2}) {
		t.Fatalf("files: %v %v", files, err)
	}
}

func testPersistence(t *testing.T, f Factory) {
	if f.Reopen == nil {
		t.Skip("not persistent")
	}
	s := f.Open(t)
	h := mustPut(t, s, ref(1, 0, 0), 1)
	mustPut(t, s, ref(2, 0, 0), 1)
	h2 := mustPut(t, s, ref(3, 1, 1), 2)
	if err := s.Release(ctx, ref(3, 1, 1)); err != nil {
		t.Fatal(err)
	}
	s = f.Reopen(t, s)
	defer s.Close()
	want, _ := frag(1)
	if !bytes.Equal(read(t, s, h), want) {
		t.Fatal("lost after reopen")
	}
	if _, err := s.Open(ctx, h2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("released fragment back after reopen: %v", err)
	}
	if used, _ := s.Usage(); used != uint64(len(want)) {
		t.Fatalf("usage after reopen: %d", used)
	}
	// Both refs survived: releasing one keeps the bytes.
	if err := s.Release(ctx, ref(1, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(t, s, h), want) {
		t.Fatal("shared fragment lost")
	}
}

// testV2: a v2 fragment is checked with BLAKE3 at its exact size and keeps
// an outboard that serves verified slices; it survives a reopen and goes
// with its last ref.
func testV2(t *testing.T, f Factory) {
	s := f.Open(t)
	b, _ := frag(3)
	b = b[:MaxSize/2]
	ob, h := codec.Outboard(b)
	w := store.Want{Hash: h, Format: types.FormatV2, Size: int64(len(b))}
	bad := []struct {
		name string
		w    store.Want
		body []byte
		err  error
	}{
		{"short", w, b[:len(b)-1], store.ErrSize},
		{"long", w, append(bytes.Clone(b), 0), store.ErrSize},
		{"flipped", w, append(append([]byte(nil), b[:100]...), append([]byte{b[100] ^ 1}, b[101:]...)...), store.ErrHashMismatch},
		{"v1 hash", store.Want{Hash: sha256.Sum256(b), Format: types.FormatV2, Size: int64(len(b))}, b, store.ErrHashMismatch},
		{"no size", store.Want{Hash: h, Format: types.FormatV2}, b, store.ErrSize},
	}
	for _, c := range bad {
		if err := s.Put(ctx, ref(9, 0, 0), c.w, bytes.NewReader(c.body)); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
	}
	if _, err := s.Open(ctx, h); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused fragment stored: %v", err)
	}
	if err := s.Put(ctx, ref(9, 0, 0), w, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if f.Reopen != nil {
		s = f.Reopen(t, s)
	}
	defer s.Close()
	got, err := s.Outboard(ctx, h)
	if err != nil || !bytes.Equal(got, ob) {
		t.Fatalf("outboard: %v", err)
	}
	if used, _ := s.Usage(); used != uint64(len(b)+len(ob)) {
		t.Fatalf("usage %d, want fragment and outboard %d", used, len(b)+len(ob))
	}
	fr, err := s.Open(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	var sl bytes.Buffer
	if err := codec.WriteSlice(&sl, fr, got, 1000, 3000); err != nil {
		t.Fatal(err)
	}
	fr.Close()
	dst := make([]byte, 3000)
	if err := codec.VerifySlice(&sl, dst, int64(len(b)), 1000, h); err != nil || !bytes.Equal(dst, b[1000:4000]) {
		t.Fatalf("slice from the store: %v", err)
	}
	v1 := mustPut(t, s, ref(1, 0, 0), 1)
	if _, err := s.Outboard(ctx, v1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a v1 fragment has an outboard: %v", err)
	}
	if err := s.Release(ctx, ref(9, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Outboard(ctx, h); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("outboard outlives its fragment: %v", err)
	}
}
