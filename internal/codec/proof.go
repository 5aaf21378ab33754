package codec

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/deoss/deoss/internal/types"
)

// proofVersion is the first byte of an encoded proof.
const proofVersion = 1

// maxProofPath bounds the audit path: a tree of at most 2^63 leaves has at most
// 63 levels, and types.MaxSegments keeps real files far below that.
const maxProofPath = 63

// ErrBadProof is returned (wrapped) when a proof is malformed or does not prove
// the claimed segment hash against the claimed FID.
var ErrBadProof = errors.New("bad inclusion proof")

// Proof shows that a segment hash is segment Index of the file with a given FID,
// without the other segment hashes. Peers and caches send it beside a segment so
// that a gateway that knows only the FID can check what it received.
type Proof struct {
	Version    uint8
	Encryption types.Encryption
	Size       uint64
	Index      uint64
	// Path holds the sibling hashes from the leaf up to the root.
	Path []types.Hash
}

// Prove returns the inclusion proof of segment index of the layout.
func Prove(l *types.Layout, index uint64) (*Proof, error) {
	if index >= uint64(len(l.Segments)) {
		return nil, fmt.Errorf("%w: segment %d of %d", ErrBadProof, index, len(l.Segments))
	}
	leaves := make([]types.Hash, len(l.Segments))
	for i := range l.Segments {
		leaves[i] = l.Segments[i].Hash
	}
	return &Proof{
		Version: l.Version, Encryption: l.Encryption, Size: l.Size, Index: index,
		Path: auditPath(int(index), leaves),
	}, nil
}

// auditPath is RFC 6962's PATH(m, D[n]), leaf level first.
func auditPath(m int, leaves []types.Hash) []types.Hash {
	if len(leaves) <= 1 {
		return nil
	}
	k := splitPoint(len(leaves))
	if m < k {
		return append(auditPath(m, leaves[:k]), merkleRoot(leaves[k:]))
	}
	return append(auditPath(m-k, leaves[k:]), merkleRoot(leaves[:k]))
}

// Verify checks that segment is the segment hash at p.Index of the file fid.
func (p *Proof) Verify(fid types.FID, segment types.Hash) error {
	prof, err := types.ProfileFor(p.Version)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadProof, err)
	}
	if !p.Encryption.Valid() {
		return fmt.Errorf("%w: encryption %v", ErrBadProof, p.Encryption)
	}
	count := prof.Segments(p.Size, p.Encryption)
	if p.Index >= count {
		return fmt.Errorf("%w: segment %d of %d", ErrBadProof, p.Index, count)
	}
	// RFC 9162 section 2.1.3.2: walk from the leaf to the root, using the
	// index's bits to know on which side each sibling stands.
	fn, sn := p.Index, count-1
	r := leafHash(segment)
	for _, sib := range p.Path {
		if sn == 0 {
			return fmt.Errorf("%w: path too long", ErrBadProof)
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(sib, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = nodeHash(r, sib)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return fmt.Errorf("%w: path too short", ErrBadProof)
	}
	if bindFID(p.Version, p.Encryption, p.Size, r) != fid {
		return fmt.Errorf("%w: does not lead to %s", ErrBadProof, fid)
	}
	return nil
}

// MarshalBinary encodes the proof as docs/format.md ("Inclusion proofs") gives.
func (p *Proof) MarshalBinary() ([]byte, error) {
	if len(p.Path) > maxProofPath {
		return nil, fmt.Errorf("%w: path of %d hashes", ErrBadProof, len(p.Path))
	}
	b := make([]byte, 20, 20+len(p.Path)*types.HashSize)
	b[0] = proofVersion
	b[1] = p.Version
	b[2] = byte(p.Encryption)
	binary.BigEndian.PutUint64(b[3:], p.Size)
	binary.BigEndian.PutUint64(b[11:], p.Index)
	b[19] = byte(len(p.Path))
	for _, h := range p.Path {
		b = append(b, h[:]...)
	}
	return b, nil
}

// UnmarshalBinary decodes a proof, refusing anything but the exact encoding.
func (p *Proof) UnmarshalBinary(b []byte) error {
	if len(b) < 20 {
		return fmt.Errorf("%w: %d bytes is too short", ErrBadProof, len(b))
	}
	if b[0] != proofVersion {
		return fmt.Errorf("%w: proof version %d", ErrBadProof, b[0])
	}
	n := int(b[19])
	if n > maxProofPath {
		return fmt.Errorf("%w: path of %d hashes", ErrBadProof, n)
	}
	if len(b) != 20+n*types.HashSize {
		return fmt.Errorf("%w: %d bytes, want %d for %d hashes", ErrBadProof, len(b), 20+n*types.HashSize, n)
	}
	q := Proof{
		Version:    b[1],
		Encryption: types.Encryption(b[2]),
		Size:       binary.BigEndian.Uint64(b[3:]),
		Index:      binary.BigEndian.Uint64(b[11:]),
		Path:       make([]types.Hash, n),
	}
	for i := range q.Path {
		copy(q.Path[i][:], b[20+i*types.HashSize:])
	}
	*p = q
	return nil
}
