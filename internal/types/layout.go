package types

import (
	"errors"
	"fmt"
)

// SaltSize is the length of an encrypted file's key-derivation salt.
const SaltSize = 16

// MaxSegments bounds the segments of one file (10,000 x 32 MiB, about 312 GiB).
// The storage order on chain lists every fragment hash, so the cap keeps one
// order transaction near 4 MiB; the chain's transaction limit is set from it.
const MaxSegments = 10000

// ErrInvalidLayout is returned (wrapped) by Layout.Validate.
var ErrInvalidLayout = errors.New("invalid layout")

// SegmentLayout is what a reader needs to verify one segment: the hash of the
// segment bytes and of each of its fragments, fragment i at index i.
type SegmentLayout struct {
	Hash      Hash
	Fragments [TotalShards]Hash
}

// Layout is a file's metadata as the codec produces it and as the chain records
// it: everything needed to verify and rebuild the bytes, and to recompute the FID.
type Layout struct {
	Version    uint8
	Encryption Encryption
	// Size is the length of the user's (plaintext) data in bytes.
	Size uint64
	// Salt is the Argon2id salt of an encrypted file, empty otherwise. It is not
	// secret.
	Salt []byte
	// Owner is the account the file belongs to. Format v2 binds it into the
	// FID (no dedup across owners, docs/format.md); v1 leaves it zero.
	Owner    Address `json:",omitzero"`
	Segments []SegmentLayout
}

// SegmentLen is the stored length of segment i: a full segment except,
// in v2, the last, padded to a multiple of the profile's Pad.
func (l *Layout) SegmentLen(i int) int {
	p, err := l.Profile()
	if err != nil {
		return SegmentSize
	}
	if i < len(l.Segments)-1 {
		return p.SegmentSize
	}
	block := uint64(p.BlockSize(l.Encryption))
	n := l.Size - uint64(i)*block
	return p.SegmentLen(int(min(n, block)), l.Encryption)
}

// FragmentLen is the length of each of segment i's 12 fragments.
func (l *Layout) FragmentLen(i int) int { return l.SegmentLen(i) / DataShards }

// ColumnBytes is what one column of the file takes on its node.
func (l *Layout) ColumnBytes() uint64 {
	n := len(l.Segments)
	if n == 0 {
		return 0
	}
	return uint64(n-1)*FragmentSize + uint64(l.FragmentLen(n-1))
}

// PaddedSize is the sum of the stored segment lengths: the space a file is
// charged for (its 12 fragments take three times as much on the nodes).
func (l *Layout) PaddedSize() uint64 { return l.ColumnBytes() * DataShards }

// Profile returns the geometry of the layout's format version.
func (l *Layout) Profile() (Profile, error) { return ProfileFor(l.Version) }

// Validate checks that the layout is internally consistent: a known version and
// encryption mode, a salt exactly when encrypted, and the segment count that
// the size implies. It does not check the FID (codec.FileID does that).
func (l *Layout) Validate() error {
	p, err := l.Profile()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidLayout, err)
	}
	if !l.Encryption.Valid() {
		return fmt.Errorf("%w: %v", ErrInvalidLayout, l.Encryption)
	}
	switch {
	case l.Encryption == EncryptionNone && len(l.Salt) != 0:
		return fmt.Errorf("%w: salt on an unencrypted file", ErrInvalidLayout)
	case l.Encryption != EncryptionNone && len(l.Salt) != SaltSize:
		return fmt.Errorf("%w: salt is %d bytes, want %d", ErrInvalidLayout, len(l.Salt), SaltSize)
	}
	switch {
	case l.Version == FormatV1 && !l.Owner.IsZero():
		return fmt.Errorf("%w: a v1 layout names no owner", ErrInvalidLayout)
	case l.Version == FormatV2 && l.Owner.IsZero():
		return fmt.Errorf("%w: a v2 layout names its owner", ErrInvalidLayout)
	}
	want := p.Segments(l.Size, l.Encryption)
	if want > MaxSegments {
		return fmt.Errorf("%w: %d segments exceed the limit of %d", ErrInvalidLayout, want, MaxSegments)
	}
	if uint64(len(l.Segments)) != want {
		return fmt.Errorf("%w: %d segments listed, size %d needs %d", ErrInvalidLayout, len(l.Segments), l.Size, want)
	}
	return nil
}

// Equal reports whether two layouts describe the same bytes: every field and
// every hash equal (a nil and an empty salt are equal).
func (l *Layout) Equal(o *Layout) bool {
	if l.Version != o.Version || l.Encryption != o.Encryption || l.Size != o.Size || l.Owner != o.Owner ||
		string(l.Salt) != string(o.Salt) || len(l.Segments) != len(o.Segments) {
		return false
	}
	for i := range l.Segments {
		if l.Segments[i] != o.Segments[i] {
			return false
		}
	}
	return true
}
