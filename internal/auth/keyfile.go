package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/argon2"

	"github.com/deoss/deoss/internal/fsutil"
	"github.com/deoss/deoss/internal/types"
)

// Errors of key files.
var (
	ErrPassphraseRequired = errors.New("key file is sealed: a passphrase is required")
	ErrWrongPassphrase    = errors.New("wrong passphrase (or the key file was altered)")
	ErrLoosePermissions   = errors.New("key file is readable by others")
)

// keyFile is the JSON form of a key file. Seed holds the seed in hex when the
// file is not sealed; Sealed holds it encrypted otherwise.
type keyFile struct {
	Address types.Address `json:"address"`
	Seed    string        `json:"seed,omitempty"`
	Sealed  *sealedSeed   `json:"sealed,omitempty"`
}

type sealedSeed struct {
	KDF        string `json:"kdf"` // "argon2id-t3-m65536-p4"
	Salt       string `json:"salt"`
	Nonce      string `json:"nonce"`
	Ciphertext string `json:"ciphertext"`
}

const kdfName = "argon2id-t3-m65536-p4"

// Save writes k to path with mode 0600, atomically (a crash leaves the old
// file or the new one, never half of one). With a non-empty passphrase the seed
// is sealed with AES-256-GCM under an Argon2id key.
func Save(path string, k *Key, passphrase []byte) error {
	kf := keyFile{Address: k.addr}
	if len(passphrase) == 0 {
		kf.Seed = hex.EncodeToString(k.Seed())
	} else {
		s, err := seal(k.Seed(), passphrase, k.addr)
		if err != nil {
			return err
		}
		kf.Sealed = s
	}
	b, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, append(b, '\n'), 0o600)
}

// Load reads a key file. A sealed file needs its passphrase. A file that
// group or others may read or write is refused: its secret may be out
// already (chmod 600 it, or better make a new key).
func Load(path string, passphrase []byte) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; run chmod 600 %s", ErrLoosePermissions, path, m, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return nil, err
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	var seed []byte
	switch {
	case kf.Sealed != nil:
		if len(passphrase) == 0 {
			return nil, ErrPassphraseRequired
		}
		if seed, err = open(kf.Sealed, passphrase, kf.Address); err != nil {
			return nil, err
		}
	default:
		if seed, err = hex.DecodeString(kf.Seed); err != nil {
			return nil, fmt.Errorf("key file %s: seed: %w", path, err)
		}
	}
	k, err := FromSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if k.addr != kf.Address {
		return nil, fmt.Errorf("key file %s: the seed is not the key of %s", path, kf.Address)
	}
	return k, nil
}

func passphraseAEAD(passphrase, salt []byte) (cipher.AEAD, error) {
	key := argon2.IDKey(passphrase, salt, 3, 64*1024, 4, 32)
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// The address is the additional data: a sealed seed moved into another
// account's file does not open.
func seal(seed, passphrase []byte, addr types.Address) (*sealedSeed, error) {
	salt := make([]byte, 16)
	nonce := make([]byte, 12)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	aead, err := passphraseAEAD(passphrase, salt)
	if err != nil {
		return nil, err
	}
	ct := aead.Seal(nil, nonce, seed, addr[:])
	return &sealedSeed{KDF: kdfName, Salt: hex.EncodeToString(salt), Nonce: hex.EncodeToString(nonce), Ciphertext: hex.EncodeToString(ct)}, nil
}

func open(s *sealedSeed, passphrase []byte, addr types.Address) ([]byte, error) {
	if s.KDF != kdfName {
		return nil, fmt.Errorf("key file: unknown kdf %q", s.KDF)
	}
	salt, err1 := hex.DecodeString(s.Salt)
	nonce, err2 := hex.DecodeString(s.Nonce)
	ct, err3 := hex.DecodeString(s.Ciphertext)
	if err := errors.Join(err1, err2, err3); err != nil || len(nonce) != 12 {
		return nil, fmt.Errorf("key file: malformed sealed seed: %v", err)
	}
	aead, err := passphraseAEAD(passphrase, salt)
	if err != nil {
		return nil, err
	}
	seed, err := aead.Open(nil, nonce, ct, addr[:])
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	return seed, nil
}
