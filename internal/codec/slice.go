package codec

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"lukechampine.com/blake3/bao"
	"lukechampine.com/blake3/guts"

	"github.com/deoss/deoss/internal/types"
)

// baoGroup is log2 of the chunk group in 1 KiB chunks: 16 KiB groups
// (types.ChunkGroup). The proof slices of SliceChunk use group 0.
const baoGroup = 4

// Slice errors: what a verified read can find wrong with a slice.
var (
	ErrSliceCorrupt = errors.New("slice does not verify against the fragment hash")
	ErrSliceShort   = errors.New("slice is truncated")
	ErrSliceLong    = errors.New("slice is longer than its range")
	ErrSliceRange   = errors.New("slice range outside the fragment")
	ErrOutboard     = errors.New("outboard does not fit the fragment")
)

// OutboardSize is the size of the Bao outboard (16 KiB groups) of n bytes:
// about n/512, 32 KiB for an 8 MiB fragment.
func OutboardSize(n int64) int64 { return int64(bao.EncodedSize(int(n), baoGroup, true)) }

// Outboard returns the Bao outboard of b and b's BLAKE3 hash.
func Outboard(b []byte) ([]byte, types.Hash) {
	ob, root := bao.EncodeBuf(b, baoGroup, true)
	return ob, root
}

// BuildOutboard reads exactly n bytes from r and returns their outboard and
// BLAKE3 hash, in one pass: a storage node builds it while it receives a
// fragment. A shorter stream is ErrSliceShort; r is not read past n.
func BuildOutboard(r io.Reader, n int64) ([]byte, types.Hash, error) {
	buf := &atBuffer{b: make([]byte, OutboardSize(n))}
	root, err := bao.Encode(buf, r, n, baoGroup, true)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return nil, types.Hash{}, ErrSliceShort
	}
	if err != nil {
		return nil, types.Hash{}, err
	}
	return buf.b, root, nil
}

type atBuffer struct{ b []byte }

func (a *atBuffer) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(a.b)) {
		return 0, ErrOutboard
	}
	return copy(a.b[off:], p), nil
}

// outboardLen is the data length an outboard was built for.
func outboardLen(ob []byte) (int64, error) {
	if len(ob) < 8 {
		return 0, ErrOutboard
	}
	n := binary.LittleEndian.Uint64(ob)
	if n > 1<<40 || int64(len(ob)) != OutboardSize(int64(n)) {
		return 0, ErrOutboard
	}
	return int64(n), nil
}

// groupSpan is [off, off+n) widened to whole chunk groups, within size.
func groupSpan(off, n, size int64) (int64, int64) {
	const g = types.ChunkGroup
	lo := off / g * g
	hi := min((off+n+g-1)/g*g, size)
	return lo, hi
}

// WriteSlice writes the Bao slice of bytes [off, off+n) of a fragment: data
// reads the fragment's bytes (only the chunk groups the range touches are
// read), ob is its outboard. The slice is those groups and the tree nodes
// that connect them to the root, about n + 1 KiB.
func WriteSlice(w io.Writer, data io.ReaderAt, ob []byte, off, n int64) error {
	size, err := outboardLen(ob)
	if err != nil {
		return err
	}
	if off < 0 || n <= 0 || off > size || n > size-off {
		return fmt.Errorf("%w: %d bytes at %d of %d", ErrSliceRange, n, off, size)
	}
	lo, hi := groupSpan(off, n, size)
	// bao reads and writes a 16 KiB group (and 64-byte tree nodes) at a
	// time: buffered, a node makes a few large system calls instead of two
	// per group.
	bw := bufio.NewWriterSize(w, sliceBuf)
	src := bufio.NewReaderSize(io.NewSectionReader(data, lo, hi-lo), sliceBuf)
	if err := bao.ExtractSlice(bw, src, bytes.NewReader(ob), baoGroup, uint64(off), uint64(n)); err != nil {
		return err
	}
	return bw.Flush()
}

// sliceBuf is the buffer of slice reads and writes.
const sliceBuf = 256 << 10

// WriteOutboardStream writes a whole fragment in the EncOutboard encoding:
// its outboard, then its size bytes from data. A node serves it so that the
// fragment goes from file to socket with sendfile (data an *os.File).
func WriteOutboardStream(w io.Writer, data io.Reader, ob []byte) error {
	size, err := outboardLen(ob)
	if err != nil {
		return err
	}
	if _, err := w.Write(ob); err != nil {
		return err
	}
	_, err = io.Copy(w, io.LimitReader(data, size))
	return err
}

// OutboardStreamSize is the length of WriteOutboardStream's output for a
// fragment of size bytes.
func OutboardStreamSize(size int64) int64 { return OutboardSize(size) + size }

// SliceSize is the exact length of the slice WriteSlice writes for [off,
// off+n) of a size-byte fragment, so a reader can bound what it reads.
func SliceSize(size, off, n int64) int64 {
	const g = types.ChunkGroup
	total := int64(8)
	var rec func(pos, l int64)
	rec = func(pos, l int64) {
		if pos >= off+n || off >= pos+l {
			return
		}
		if l <= g {
			total += l
			return
		}
		total += 64
		mid := int64(1) << (bits.Len64(uint64(l-1)) - 1)
		rec(pos, mid)
		rec(pos+mid, l-mid)
	}
	rec(0, size)
	return total
}

// VerifySlice reads a Bao slice of bytes [off, off+len(dst)) of a fragment
// of size bytes whose BLAKE3 hash is root, and writes the verified bytes into
// dst. Nothing is written to dst beyond what verified; on any error the
// caller must treat dst as unverified. The stream must end with the slice.
func VerifySlice(r io.Reader, dst []byte, size, off int64, root types.Hash) error {
	n := int64(len(dst))
	if off < 0 || n <= 0 || off > size || n > size-off {
		return fmt.Errorf("%w: %d bytes at %d of %d", ErrSliceRange, n, off, size)
	}
	// The length prefix is checked against the layout's, not trusted: the
	// tree shape (and so what verifies) depends on it.
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return sliceReadErr(err)
	}
	if got := binary.LittleEndian.Uint64(hdr[:]); got != uint64(size) {
		return fmt.Errorf("%w: slice says the fragment is %d bytes, not %d", ErrSliceCorrupt, got, size)
	}
	fw := &fillWriter{b: dst}
	// Buffered: bao reads 64-byte tree nodes and 16 KiB groups one at a
	// time, which from a socket is two system calls per group.
	br := bufio.NewReaderSize(r, min(sliceBuf, int(SliceSize(size, off, n))))
	r = br
	ok, err := bao.DecodeSlice(fw, io.MultiReader(bytes.NewReader(hdr[:]), br), baoGroup, uint64(off), uint64(n), root)
	switch {
	case err != nil:
		return sliceReadErr(err)
	case !ok:
		return ErrSliceCorrupt
	case fw.n != len(dst):
		return ErrSliceShort
	}
	var one [1]byte
	if m, _ := io.ReadFull(r, one[:]); m > 0 {
		return ErrSliceLong
	}
	return nil
}

func sliceReadErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return ErrSliceShort
	}
	if errors.Is(err, errFillOverflow) {
		return ErrSliceLong
	}
	return err
}

var errFillOverflow = errors.New("more verified bytes than asked for")

// fillWriter writes into a fixed buffer.
type fillWriter struct {
	b []byte
	n int
}

func (f *fillWriter) Write(p []byte) (int, error) {
	if len(p) > len(f.b)-f.n {
		return 0, errFillOverflow
	}
	f.n += copy(f.b[f.n:], p)
	return len(p), nil
}

// SliceChunk returns the proof slice of one 1 KiB chunk (index k) of a
// fragment: a Bao slice with 1 KiB groups (about 1.9 KiB for an 8 MiB
// fragment), which anyone holding the fragment hash checks with
// VerifyChunk. The tree nodes above 16 KiB come from the outboard; the four
// levels inside the chunk's group are computed from the group's bytes.
func SliceChunk(data io.ReaderAt, ob []byte, k int64) ([]byte, error) {
	const g = types.ChunkGroup
	size, err := outboardLen(ob)
	if err != nil {
		return nil, err
	}
	c := k * types.ProofChunk
	if k < 0 || c >= size {
		return nil, fmt.Errorf("%w: chunk %d of a %d-byte fragment", ErrSliceRange, k, size)
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(size))
	p := 8 // read position in ob (pre-order parents)
	pos, l := int64(0), size
	for l > g {
		mid := int64(1) << (bits.Len64(uint64(l-1)) - 1)
		out = append(out, ob[p:p+64]...)
		p += 64
		if c < pos+mid {
			l = mid
			continue
		}
		p += 64 * int(innerNodes(mid))
		pos, l = pos+mid, l-mid
	}
	grp := make([]byte, l)
	if _, err := data.ReadAt(grp, pos); err != nil {
		return nil, err
	}
	// Inside the group: the same walk over chunks, with the children's
	// chaining values computed.
	for l > types.ProofChunk {
		mid := int64(1) << (bits.Len64(uint64(l-1)) - 1)
		lo, hi := grp[:mid], grp[mid:l]
		left, right := subtreeCV(lo, uint64(pos/types.ProofChunk)), subtreeCV(hi, uint64((pos+mid)/types.ProofChunk))
		out = append(out, cvBytes(left)...)
		out = append(out, cvBytes(right)...)
		if c < pos+mid {
			grp, l = lo, mid
			continue
		}
		grp, pos, l = hi, pos+mid, l-mid
	}
	return append(out, grp[:l]...), nil
}

// innerNodes is the number of parent nodes of a subtree of l bytes in a
// 16 KiB-group tree.
func innerNodes(l int64) int64 { return (l+types.ChunkGroup-1)/types.ChunkGroup - 1 }

// subtreeCV is the chaining value of a non-root subtree of chunks starting at
// chunk counter.
func subtreeCV(b []byte, counter uint64) [8]uint32 {
	if len(b) <= types.ProofChunk {
		return guts.ChainingValue(guts.CompressChunk(b, &guts.IV, counter, 0))
	}
	mid := 1 << (bits.Len64(uint64(len(b)-1)) - 1)
	l := subtreeCV(b[:mid], counter)
	r := subtreeCV(b[mid:], counter+uint64(mid/types.ProofChunk))
	return guts.ChainingValue(guts.ParentNode(l, r, &guts.IV, 0))
}

func cvBytes(cv [8]uint32) []byte {
	b := make([]byte, 32)
	for i, w := range cv {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
	return b
}

// VerifyChunk checks a proof slice of chunk k of a fragment of size bytes
// whose hash is root, and returns the chunk's verified bytes.
func VerifyChunk(slice []byte, size, k int64, root types.Hash) ([]byte, error) {
	c := k * types.ProofChunk
	if k < 0 || c >= size {
		return nil, fmt.Errorf("%w: chunk %d of a %d-byte fragment", ErrSliceRange, k, size)
	}
	if len(slice) < 8 || binary.LittleEndian.Uint64(slice) != uint64(size) {
		return nil, ErrSliceCorrupt
	}
	n := min(int64(types.ProofChunk), size-c)
	b, ok := bao.VerifySlice(slice, 0, uint64(c), uint64(n), root)
	if !ok {
		return nil, ErrSliceCorrupt
	}
	return b, nil
}
