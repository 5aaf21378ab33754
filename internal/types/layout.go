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

// SegmentLayout is what a reader needs to verify one segment: the SHA-256 of the
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
	Salt     []byte
	Segments []SegmentLayout
}

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
	want := p.Segments(l.Size, l.Encryption)
	if want > MaxSegments {
		return fmt.Errorf("%w: %d segments exceed the limit of %d", ErrInvalidLayout, want, MaxSegments)
	}
	if uint64(len(l.Segments)) != want {
		return fmt.Errorf("%w: %d segments listed, size %d needs %d", ErrInvalidLayout, len(l.Segments), l.Size, want)
	}
	return nil
}
