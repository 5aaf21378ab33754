package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/deoss/deoss/internal/types"
)

// ErrBadSignature is returned when a signature does not verify.
var ErrBadSignature = errors.New("bad signature")

// SignatureSize is the length of an ed25519 signature.
const SignatureSize = ed25519.SignatureSize

// Key is a private key. Its String shows only the address.
type Key struct {
	priv ed25519.PrivateKey
	addr types.Address
}

// Generate makes a new random key.
func Generate() (*Key, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return fromPrivate(priv), nil
}

// FromSeed makes the key of a 32-byte seed (deterministic keys for tests and
// for dev networks).
func FromSeed(seed []byte) (*Key, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return fromPrivate(ed25519.NewKeyFromSeed(seed)), nil
}

func fromPrivate(priv ed25519.PrivateKey) *Key {
	k := &Key{priv: priv}
	copy(k.addr[:], priv.Public().(ed25519.PublicKey))
	return k
}

// Address returns the key's account address.
func (k *Key) Address() types.Address { return k.addr }

// Sign signs msg.
func (k *Key) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// Seed returns the 32-byte seed the key is made from. Handle with care: it is
// the secret.
func (k *Key) Seed() []byte { return k.priv.Seed() }

// String shows the address only, never the secret.
func (k *Key) String() string { return "auth.Key{" + k.addr.String() + "}" }

// GoString shows the address only.
func (k *Key) GoString() string { return k.String() }

// Verify checks sig as addr's signature of msg.
func Verify(addr types.Address, msg, sig []byte) error {
	if len(sig) != SignatureSize || !ed25519.Verify(addr.PublicKey(), msg, sig) {
		return ErrBadSignature
	}
	return nil
}
