package codec

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"

	"github.com/deoss/deoss/internal/types"
)

// Domain-separation prefixes of the FID construction (docs/format.md). Leaves,
// inner nodes and the final binding hash each start with their own byte, so no
// value of one kind can be passed off as another (the RFC 6962 defence against
// second-preimage attacks on Merkle trees).
const (
	prefixLeaf = 0x00
	prefixNode = 0x01
	prefixFID  = 0x02
)

func leafHash(segment types.Hash) types.Hash {
	var b [1 + types.HashSize]byte
	b[0] = prefixLeaf
	copy(b[1:], segment[:])
	return sha256.Sum256(b[:])
}

func nodeHash(left, right types.Hash) types.Hash {
	var b [1 + 2*types.HashSize]byte
	b[0] = prefixNode
	copy(b[1:], left[:])
	copy(b[1+types.HashSize:], right[:])
	return sha256.Sum256(b[:])
}

// splitPoint is the largest power of two smaller than n (n >= 2): RFC 6962's
// k, which makes the tree's shape depend on n alone.
func splitPoint(n int) int { return 1 << (bits.Len(uint(n-1)) - 1) }

// merkleRoot is RFC 6962's MTH over the segment hashes, with the empty tree's
// root SHA-256("").
func merkleRoot(leaves []types.Hash) types.Hash {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leafHash(leaves[0])
	}
	k := splitPoint(len(leaves))
	return nodeHash(merkleRoot(leaves[:k]), merkleRoot(leaves[k:]))
}

// bindFID hashes the tree root together with what gives the segment hashes their
// meaning: the format version, the encryption mode and the user's byte length.
// Binding the length is what makes a file and the same file plus trailing zero
// bytes (which pad to the same segments) two different FIDs.
func bindFID(version uint8, enc types.Encryption, size uint64, root types.Hash) types.FID {
	var b [1 + 1 + 1 + 8 + types.HashSize]byte
	b[0] = prefixFID
	b[1] = version
	b[2] = byte(enc)
	binary.BigEndian.PutUint64(b[3:], size)
	copy(b[11:], root[:])
	return sha256.Sum256(b[:])
}

// FileID computes the FID of a layout from its segment hashes. It does not
// validate the layout; callers that got it from elsewhere call Validate first.
func FileID(l *types.Layout) types.FID {
	leaves := make([]types.Hash, len(l.Segments))
	for i := range l.Segments {
		leaves[i] = l.Segments[i].Hash
	}
	return bindFID(l.Version, l.Encryption, l.Size, merkleRoot(leaves))
}
