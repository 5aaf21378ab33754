package types

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/btcutil/bech32"
)

// AddressPrefix is the human-readable part of every deoss address.
const AddressPrefix = "deoss"

// ErrMalformedAddress is returned (wrapped) for text that is not a deoss address.
var ErrMalformedAddress = errors.New("malformed address")

// Address names an account: it is the account's ed25519 public key, so a
// signature can be checked against the address alone (as in the reference's
// Substrate accounts). Its text form is bech32 (BIP 173) with the prefix
// "deoss": a typo in any character fails the checksum instead of naming
// another account.
type Address [ed25519.PublicKeySize]byte

// String returns the bech32 form, "deoss1" and 58 more characters.
func (a Address) String() string {
	conv, err := bech32.ConvertBits(a[:], 8, 5, true)
	if err != nil {
		panic(err) // 32 bytes always convert
	}
	s, err := bech32.Encode(AddressPrefix, conv)
	if err != nil {
		panic(err)
	}
	return s
}

// IsZero reports whether a is unset.
func (a Address) IsZero() bool { return a == Address{} }

// PublicKey returns the ed25519 public key the address is.
func (a Address) PublicKey() ed25519.PublicKey { return ed25519.PublicKey(a[:]) }

// MarshalText implements encoding.TextMarshaler.
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseAddress's rules.
func (a *Address) UnmarshalText(b []byte) error {
	v, err := ParseAddress(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// ParseAddress parses the bech32 form. Only lowercase is accepted, so one
// address has one spelling.
func ParseAddress(s string) (Address, error) {
	var a Address
	if len(s) > 90 {
		return a, fmt.Errorf("%w: %d characters", ErrMalformedAddress, len(s))
	}
	hrp, data, err := bech32.Decode(s)
	if err != nil {
		return a, fmt.Errorf("%w: %v", ErrMalformedAddress, err)
	}
	if hrp != AddressPrefix {
		return a, fmt.Errorf("%w: prefix %q, want %q", ErrMalformedAddress, hrp, AddressPrefix)
	}
	raw, err := bech32.ConvertBits(data, 5, 8, false)
	if err != nil {
		return a, fmt.Errorf("%w: %v", ErrMalformedAddress, err)
	}
	if len(raw) != len(a) {
		return a, fmt.Errorf("%w: %d bytes, want %d", ErrMalformedAddress, len(raw), len(a))
	}
	copy(a[:], raw)
	if a.String() != s {
		return a, fmt.Errorf("%w: not in canonical lowercase form", ErrMalformedAddress)
	}
	return a, nil
}
