package types

import (
	"errors"
	"fmt"
)

// Format versions. A file records the version it was written with; readers
// refuse versions they do not know instead of guessing.
const (
	// FormatV1: 32 MiB segments zero-padded, Reed-Solomon 4+8 with
	// klauspost/reedsolomon's default matrix, SHA-256 hashes, the FID of
	// docs/format.md, AES-256-GCM with Argon2id(t=3, m=64 MiB, p=4) keys.
	FormatV1 uint8 = 1
	// FormatV2: the geometry of v1 with a short last segment (padded to a
	// multiple of PadUnit), BLAKE3-256 hashes with Bao outboards, the FID v2
	// that binds the owner, salt and every fragment hash, and AES-256-GCM in
	// CipherBlock-sized blocks (docs/format.md).
	FormatV2 uint8 = 2
)

// Sizes of format version 2 beyond v1's.
const (
	// PadUnit is what a v2 last segment is padded to a multiple of: its
	// fragments are then multiples of ChunkGroup.
	PadUnit = 64 << 10
	// CipherBlock is one AES-256-GCM block of a v2 encrypted segment:
	// CipherBlock-GCMOverhead bytes of plaintext and the tag.
	CipherBlock = 64 << 10
	// ChunkGroup is the Bao chunk group of v2 outboards and slices (16 KiB,
	// group 4 in lukechampine.com/blake3/bao).
	ChunkGroup = 16 << 10
	// ProofChunk is the unit a storage proof opens (one BLAKE3 chunk).
	ProofChunk = 1 << 10
)

// Sizes of format version 1.
const (
	MiB = 1 << 20

	SegmentSize  = 32 * MiB
	DataShards   = 4
	ParityShards = 8
	TotalShards  = DataShards + ParityShards
	FragmentSize = SegmentSize / DataShards

	// GCMOverhead is the AES-GCM tag length. An encrypted segment carries
	// SegmentSize-GCMOverhead bytes of the user's data so that ciphertext plus
	// tag is exactly one segment.
	GCMOverhead = 16
)

// ErrUnknownFormat is returned for a format version or encryption mode this
// build does not implement.
var ErrUnknownFormat = errors.New("unknown format")

// Encryption says how a file's segment bytes relate to the user's bytes.
type Encryption uint8

const (
	// EncryptionNone: segment bytes are the user's bytes.
	EncryptionNone Encryption = 0
	// EncryptionAES256GCM: each segment is AES-256-GCM ciphertext and tag of
	// SegmentSize-GCMOverhead bytes of the user's data (docs/format.md).
	EncryptionAES256GCM Encryption = 1
)

// String names the mode as the API and docs spell it.
func (e Encryption) String() string {
	switch e {
	case EncryptionNone:
		return "none"
	case EncryptionAES256GCM:
		return "aes-256-gcm"
	}
	return fmt.Sprintf("encryption(%d)", uint8(e))
}

// Valid reports whether e is a mode this build implements.
func (e Encryption) Valid() bool { return e == EncryptionNone || e == EncryptionAES256GCM }

// Profile is the geometry of a format version.
type Profile struct {
	Version      uint8
	SegmentSize  int
	DataShards   int
	ParityShards int
	FragmentSize int
	// Pad is what the last segment is padded to a multiple of.
	Pad int
	// CipherBlock is the size of one sealed block of an encrypted segment
	// (ciphertext and tag): the whole segment in v1.
	CipherBlock int
}

// ProfileV1 is the geometry of FormatV1.
var ProfileV1 = Profile{
	Version:      FormatV1,
	SegmentSize:  SegmentSize,
	DataShards:   DataShards,
	ParityShards: ParityShards,
	FragmentSize: FragmentSize,
	Pad:          SegmentSize,
	CipherBlock:  SegmentSize,
}

// ProfileV2 is the geometry of FormatV2.
var ProfileV2 = Profile{
	Version:      FormatV2,
	SegmentSize:  SegmentSize,
	DataShards:   DataShards,
	ParityShards: ParityShards,
	FragmentSize: FragmentSize,
	Pad:          PadUnit,
	CipherBlock:  CipherBlock,
}

// ProfileFor returns the profile of a format version.
func ProfileFor(version uint8) (Profile, error) {
	switch version {
	case FormatV1:
		return ProfileV1, nil
	case FormatV2:
		return ProfileV2, nil
	}
	return Profile{}, fmt.Errorf("%w: version %d", ErrUnknownFormat, version)
}

// TotalShards is data plus parity shards: the number of fragments, and of
// columns, of every segment.
func (p Profile) TotalShards() int { return p.DataShards + p.ParityShards }

// BlockSize is how many of the user's bytes one segment carries.
func (p Profile) BlockSize(e Encryption) int {
	if e == EncryptionAES256GCM {
		return p.SegmentSize / p.CipherBlock * (p.CipherBlock - GCMOverhead)
	}
	return p.SegmentSize
}

// SegmentLen is the stored length of a segment that carries n of the user's
// bytes (0 < n <= BlockSize): the whole segment in v1; in v2 a short last
// segment is padded only to a multiple of Pad (encrypted: whole cipher
// blocks, which are Pad-sized).
func (p Profile) SegmentLen(n int, e Encryption) int {
	if e == EncryptionAES256GCM {
		per := p.CipherBlock - GCMOverhead
		blocks := (n + per - 1) / per
		return min(blocks*p.CipherBlock, p.SegmentSize)
	}
	return min((n+p.Pad-1)/p.Pad*p.Pad, p.SegmentSize)
}

// Segments is the number of segments of a file of size bytes. An empty file has
// no segments (docs/format.md, "Empty files").
func (p Profile) Segments(size uint64, e Encryption) uint64 {
	b := uint64(p.BlockSize(e))
	n := size / b
	if size%b != 0 {
		n++
	}
	return n
}

// PaddedSize is what a file of size bytes takes once its last segment is
// padded (Layout.PaddedSize before the file is encoded).
func (p Profile) PaddedSize(size uint64, e Encryption) uint64 {
	n := p.Segments(size, e)
	if n == 0 {
		return 0
	}
	block := uint64(p.BlockSize(e))
	return (n-1)*uint64(p.SegmentSize) + uint64(p.SegmentLen(int(size-(n-1)*block), e))
}
