package codec

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"

	"lukechampine.com/blake3/guts"

	"github.com/deoss/deoss/internal/types"
)

// The BLAKE3 tree over 16 KiB groups, computed directly: the hash of a
// buffer without building an outboard, and the verification of an outboard
// stream as it is read into its destination, without bao's reader and
// writer copies. TestTreeRoot checks it against blake3.Sum256.

const group16 = guts.MaxSIMD * guts.ChunkSize // 16 KiB: types.ChunkGroup

// groupNode is the node of one group of at most 16 KiB at chunk counter.
// The group is copied into a local array first: measured, hashing from a
// cache-hot copy beats hashing in place from memory (AVX-512 reads 16
// chunks 1 KiB apart, which the prefetcher follows poorly), 3.1 against
// 2.3 GB/s on 8 MiB here.
func groupNode(b []byte, counter uint64) guts.Node {
	var buf [group16]byte
	copy(buf[:], b)
	return guts.CompressBuffer(&buf, len(b), &guts.IV, counter, 0)
}

// subtreeNode is the (unflagged) node of the subtree over b at counter.
func subtreeNode(b []byte, counter uint64) guts.Node {
	if len(b) <= group16 {
		return groupNode(b, counter)
	}
	mid := 1 << (bits.Len64(uint64(len(b)-1)) - 1)
	l := guts.ChainingValue(subtreeNode(b[:mid], counter))
	r := guts.ChainingValue(subtreeNode(b[mid:], counter+uint64(mid/guts.ChunkSize)))
	return guts.ParentNode(l, r, &guts.IV, 0)
}

// treeRoot is BLAKE3-256 of b, hashed in place.
func treeRoot(b []byte) types.Hash {
	n := subtreeNode(b, 0)
	n.Flags |= guts.FlagRoot
	return cvHash(guts.ChainingValue(n))
}

func cvHash(cv [8]uint32) types.Hash {
	var h types.Hash
	for i, w := range cv {
		binary.LittleEndian.PutUint32(h[4*i:], w)
	}
	return h
}

func hashCV(h types.Hash) [8]uint32 {
	var cv [8]uint32
	for i := range cv {
		cv[i] = binary.LittleEndian.Uint32(h[4*i:])
	}
	return cv
}

// expectation is what one group of a fragment must hash to.
type expectation struct {
	cv    [8]uint32
	flags uint32 // FlagRoot when the group is the whole fragment
}

// expectedGroups walks an outboard from the root down, checking every
// parent node against the value above it, and returns what each 16 KiB
// group must hash to.
func expectedGroups(ob []byte, size int64, root types.Hash) ([]expectation, error) {
	exp := make([]expectation, 0, (size+group16-1)/group16)
	p := 8
	var walk func(l int64, cv [8]uint32, flags uint32) error
	walk = func(l int64, cv [8]uint32, flags uint32) error {
		if l <= group16 {
			exp = append(exp, expectation{cv, flags})
			return nil
		}
		if p+64 > len(ob) {
			return ErrOutboard
		}
		var left, right [8]uint32
		for i := range 8 {
			left[i] = binary.LittleEndian.Uint32(ob[p+4*i:])
			right[i] = binary.LittleEndian.Uint32(ob[p+32+4*i:])
		}
		p += 64
		if guts.ChainingValue(guts.ParentNode(left, right, &guts.IV, flags)) != cv {
			return ErrSliceCorrupt
		}
		mid := int64(1) << (bits.Len64(uint64(l-1)) - 1)
		if err := walk(mid, left, 0); err != nil {
			return err
		}
		return walk(l-mid, right, 0)
	}
	if err := walk(size, hashCV(root), guts.FlagRoot); err != nil {
		return nil, err
	}
	return exp, nil
}

// VerifyOutboardStream reads a whole fragment of len(dst) bytes in the
// EncOutboard encoding into dst and verifies it 16 KiB group by group as it
// arrives, in place (a fragment that goes bad is noticed within 256 KiB of
// where it does, the read step). On an error dst is unverified. The stream
// must end with the fragment.
func VerifyOutboardStream(r io.Reader, dst []byte, root types.Hash) error {
	size := int64(len(dst))
	if size == 0 {
		return fmt.Errorf("%w: an empty fragment", ErrSliceRange)
	}
	ob := make([]byte, OutboardSize(size))
	if _, err := io.ReadFull(r, ob); err != nil {
		return sliceReadErr(err)
	}
	if got, err := outboardLen(ob); err != nil || got != size {
		return fmt.Errorf("%w: the outboard is not of a %d-byte fragment", ErrSliceCorrupt, size)
	}
	exp, err := expectedGroups(ob, size, root)
	if err != nil {
		return err
	}
	const step = 256 << 10
	var got, checked int64
	for got < size {
		n, err := io.ReadFull(r, dst[got:min(got+step, size)])
		got += int64(n)
		if err != nil {
			return sliceReadErr(err)
		}
		for ; checked+group16 <= got || checked < got && got == size; checked += group16 {
			g := dst[checked:min(checked+group16, size)]
			nd := groupNode(g, uint64(checked/guts.ChunkSize))
			e := exp[checked/group16]
			nd.Flags |= e.flags
			if guts.ChainingValue(nd) != e.cv {
				return fmt.Errorf("%w: at byte %d", ErrSliceCorrupt, checked)
			}
		}
	}
	var one [1]byte
	if m, _ := io.ReadFull(r, one[:]); m > 0 {
		return ErrSliceLong
	}
	return nil
}
