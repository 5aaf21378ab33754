package codec

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"lukechampine.com/blake3"
	"lukechampine.com/blake3/bao"

	"github.com/deoss/deoss/internal/types"
)

func randBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestSliceRoundTrip(t *testing.T) {
	for _, size := range []int{types.ChunkGroup, 3 * types.ChunkGroup, 40 * types.ChunkGroup, 512 * types.ChunkGroup} {
		data := randBytes(size, uint64(size))
		ob, root := Outboard(data)
		if root != types.Hash(blake3.Sum256(data)) {
			t.Fatalf("%d: outboard root is not the BLAKE3 hash", size)
		}
		ob2, root2, err := BuildOutboard(bytes.NewReader(data), int64(size))
		if err != nil || root2 != root || !bytes.Equal(ob, ob2) {
			t.Fatalf("%d: BuildOutboard differs from Outboard: %v", size, err)
		}
		for _, r := range [][2]int64{{0, int64(size)}, {0, 1}, {int64(size) - 1, 1}, {5000, 20000}, {types.ChunkGroup, types.ChunkGroup}} {
			off, n := r[0], min(r[1], int64(size)-r[0])
			if n <= 0 {
				continue
			}
			var sl bytes.Buffer
			if err := WriteSlice(&sl, bytes.NewReader(data), ob, off, n); err != nil {
				t.Fatalf("%d %v: %v", size, r, err)
			}
			if int64(sl.Len()) != SliceSize(int64(size), off, n) {
				t.Fatalf("%d %v: slice is %d bytes, SliceSize says %d", size, r, sl.Len(), SliceSize(int64(size), off, n))
			}
			dst := make([]byte, n)
			if err := VerifySlice(bytes.NewReader(sl.Bytes()), dst, int64(size), off, root); err != nil {
				t.Fatalf("%d %v: %v", size, r, err)
			}
			if !bytes.Equal(dst, data[off:off+n]) {
				t.Fatalf("%d %v: wrong bytes", size, r)
			}
		}
	}
}

func TestSliceChunkIsBaoSlice(t *testing.T) {
	size := 40 * types.ChunkGroup
	data := randBytes(size, 7)
	ob, root := Outboard(data)
	full, _ := bao.EncodeBuf(data, 0, true)
	for _, k := range []int64{0, 1, 15, 16, 17, 300, int64(size/types.ProofChunk) - 1} {
		got, err := SliceChunk(bytes.NewReader(data), ob, k)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		c := k * types.ProofChunk
		if err := bao.ExtractSlice(&want, bytes.NewReader(data[c:c+types.ProofChunk]), bytes.NewReader(full), 0, uint64(c), types.ProofChunk); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("chunk %d: our slice differs from bao's (%d vs %d bytes)", k, len(got), want.Len())
		}
		b, err := VerifyChunk(got, int64(size), k, root)
		if err != nil || !bytes.Equal(b, data[c:c+types.ProofChunk]) {
			t.Fatalf("chunk %d: %v", k, err)
		}
		got[len(got)-1] ^= 1
		if _, err := VerifyChunk(got, int64(size), k, root); !errors.Is(err, ErrSliceCorrupt) {
			t.Fatalf("chunk %d flipped: %v", k, err)
		}
	}
	// An 8 MiB fragment's proof is about 1.9 KiB.
	frag := make([]byte, types.FragmentSize)
	ob, _ = Outboard(frag)
	p, err := SliceChunk(bytes.NewReader(frag), ob, 1234)
	if err != nil || len(p) > 2000 {
		t.Fatalf("proof of an 8 MiB fragment is %d bytes (%v)", len(p), err)
	}
	if float64(len(ob))/float64(len(frag)) > 0.005 {
		t.Fatalf("outboard is %d bytes for 8 MiB", len(ob))
	}
}

// TestSliceBadInput: every way a slice can be wrong is a typed error, and no
// byte is claimed verified.
func TestSliceBadInput(t *testing.T) {
	size := int64(8 * types.ChunkGroup)
	data := randBytes(int(size), 3)
	ob, root := Outboard(data)
	var sl bytes.Buffer
	off, n := int64(20000), int64(30000)
	if err := WriteSlice(&sl, bytes.NewReader(data), ob, off, n); err != nil {
		t.Fatal(err)
	}
	good := sl.Bytes()
	check := func(name string, b []byte, size, off, n int64, root types.Hash, want error) {
		t.Helper()
		dst := make([]byte, n)
		if err := VerifySlice(bytes.NewReader(b), dst, size, off, root); !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", name, err, want)
		}
	}
	for _, i := range []int{0, 9, 40, 100, len(good) / 2, len(good) - 1} {
		b := bytes.Clone(good)
		b[i] ^= 0x10
		check("flip", b, size, off, n, root, ErrSliceCorrupt)
	}
	check("truncated", good[:len(good)-1], size, off, n, root, ErrSliceShort)
	check("truncated header", good[:5], size, off, n, root, ErrSliceShort)
	check("overlong", append(bytes.Clone(good), 0), size, off, n, root, ErrSliceLong)
	other, _ := Outboard(randBytes(int(size), 4))
	_ = other
	check("another fragment", good, size, off, n, types.Hash(blake3.Sum256([]byte("x"))), ErrSliceCorrupt)
	check("past the end", good, size, size-10, 20, root, ErrSliceRange)
	check("another offset", good, size, off+types.ChunkGroup, n, root, ErrSliceCorrupt)
	check("another size", good, size+types.ChunkGroup, off, n, root, ErrSliceCorrupt)
	if err := WriteSlice(&sl, bytes.NewReader(data), ob, size-1, 2); !errors.Is(err, ErrSliceRange) {
		t.Errorf("WriteSlice past the end: %v", err)
	}
	if err := WriteSlice(&sl, bytes.NewReader(data), ob[:len(ob)-1], 0, 1); !errors.Is(err, ErrOutboard) {
		t.Errorf("WriteSlice with a cut outboard: %v", err)
	}
}

// TestSumIsBLAKE3: the bao-computed hash is BLAKE3-256 at every length.
func TestSumIsBLAKE3(t *testing.T) {
	for _, n := range []int{0, 1, 1023, 1024, 64<<10 - 1, 64 << 10, 1<<20 + 5, 3 << 20} {
		b := randBytes(n, uint64(n))
		if Sum(types.FormatV2, b) != types.Hash(blake3.Sum256(b)) {
			t.Fatalf("%d bytes: Sum differs from blake3.Sum256", n)
		}
	}
}

// TestOutboardStream: a whole fragment sent as its outboard and its bytes
// verifies; any flipped, missing or extra byte is a typed error.
func TestOutboardStream(t *testing.T) {
	frag := randBytes(10*types.ChunkGroup, 9)
	ob, root := Outboard(frag)
	var good bytes.Buffer
	if err := WriteOutboardStream(&good, bytes.NewReader(frag), ob); err != nil {
		t.Fatal(err)
	}
	if int64(good.Len()) != OutboardStreamSize(int64(len(frag))) {
		t.Fatalf("stream is %d bytes", good.Len())
	}
	dst := make([]byte, len(frag))
	if err := VerifyOutboardStream(bytes.NewReader(good.Bytes()), dst, root); err != nil || !bytes.Equal(dst, frag) {
		t.Fatalf("good stream: %v", err)
	}
	g := good.Bytes()
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"flipped data", flip(g, len(ob)+5*types.ChunkGroup+7), ErrSliceCorrupt},
		{"flipped tree node", flip(g, 40), ErrSliceCorrupt},
		{"flipped length", flip(g, 0), ErrSliceCorrupt},
		{"truncated", g[:len(g)-1], ErrSliceShort},
		{"overlong", append(bytes.Clone(g), 1), ErrSliceLong},
	} {
		if err := VerifyOutboardStream(bytes.NewReader(c.b), make([]byte, len(frag)), root); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x20
	return c
}

// TestTreeRoot: the in-place tree hash is BLAKE3 at every length, and the
// outboard walk finds every group's value.
func TestTreeRoot(t *testing.T) {
	for _, n := range []int{0, 1, 1024, 1025, 16 << 10, 16<<10 + 1, 48 << 10, 1<<20 - 3, 5 << 20} {
		b := randBytes(n, uint64(n)+5)
		if treeRoot(b) != types.Hash(blake3.Sum256(b)) {
			t.Fatalf("%d bytes: treeRoot differs from blake3.Sum256", n)
		}
	}
}
