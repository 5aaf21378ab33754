package types

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// HashSize is the length in bytes of a Hash and of a FID (both hashes are
// 256 bits).
const HashSize = sha256.Size

// ErrMalformedHash is returned (wrapped) when text is not 64 lowercase hex characters.
var ErrMalformedHash = errors.New("malformed hash: want 64 lowercase hex characters")

// Hash is a 32-byte digest: SHA-256 in format v1, BLAKE3-256 in v2. Its text form is 64 lowercase hex characters; that is
// the only accepted spelling, so that one hash has one name (uppercase would let
// two strings address the same fragment file).
type Hash [HashSize]byte

// Sum returns the SHA-256 of b (format v1's hash; codec.Sum picks by version).
func Sum(b []byte) Hash { return Hash(sha256.Sum256(b)) }

// String returns the 64-character lowercase hex form.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is all zero bytes (an unset hash).
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText implements encoding.TextMarshaler.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseHash's rules.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := parseHex32(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHash parses the 64-character lowercase hex form of a hash.
func ParseHash(s string) (Hash, error) { return parseHex32(s) }

// FID identifies a file (docs/format.md, "File id"). It shares Hash's text form
// but is a distinct type so that a fragment hash is never passed where a file id
// is meant.
type FID [HashSize]byte

// String returns the 64-character lowercase hex form.
func (f FID) String() string { return Hash(f).String() }

// MarshalText implements encoding.TextMarshaler.
func (f FID) MarshalText() ([]byte, error) { return Hash(f).MarshalText() }

// UnmarshalText implements encoding.TextUnmarshaler with ParseFID's rules.
func (f *FID) UnmarshalText(b []byte) error { return (*Hash)(f).UnmarshalText(b) }

// ParseFID parses the 64-character lowercase hex form of a FID.
func ParseFID(s string) (FID, error) {
	h, err := parseHex32(s)
	return FID(h), err
}

func parseHex32(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*HashSize {
		return h, fmt.Errorf("%w: got %d characters", ErrMalformedHash, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return h, fmt.Errorf("%w: character %d is %q", ErrMalformedHash, i, c)
		}
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%w: %v", ErrMalformedHash, err)
	}
	return h, nil
}
