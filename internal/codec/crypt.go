package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"

	"github.com/deoss/deoss/internal/types"
)

// Argon2id parameters of FormatV1 (RFC 9106's second recommended option). They
// are part of the format: changing them needs a new format version.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024 // KiB
	argonThreads = 4
	keySize      = 32
)

// ErrAuthentication means a segment did not decrypt: the cipher is wrong (or the
// stored ciphertext was altered after its hashes were computed). No byte of such
// a segment is ever returned.
var ErrAuthentication = errors.New("decryption failed: wrong cipher or altered data")

// ErrEmptyCipher is returned when encryption is asked for with an empty cipher.
var ErrEmptyCipher = errors.New("empty cipher")

// Key is a file's AES-256-GCM key with the salt it was derived with. Deriving
// costs about 64 MiB and a fraction of a second (that is the point of Argon2id),
// so callers that read one file many times keep the Key.
//
// A Key never prints its secret: String and the fmt verbs show only the salt.
type Key struct {
	salt []byte
	raw  []byte // kept only so Wrap can seal it for a later use
	aead cipher.AEAD
}

// NewKey derives a key from the user's cipher and a fresh random salt, for a new
// file.
func NewKey(userCipher []byte) (*Key, error) {
	salt := make([]byte, types.SaltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("salt: %w", err)
	}
	return DeriveKey(userCipher, salt)
}

// DeriveKey derives the key of an existing file from the user's cipher and the
// file's salt.
func DeriveKey(userCipher, salt []byte) (*Key, error) {
	if len(userCipher) == 0 {
		return nil, ErrEmptyCipher
	}
	if len(salt) != types.SaltSize {
		return nil, fmt.Errorf("salt is %d bytes, want %d", len(salt), types.SaltSize)
	}
	return keyFrom(argon2.IDKey(userCipher, salt, argonTime, argonMemory, argonThreads, keySize), salt)
}

func keyFrom(raw, salt []byte) (*Key, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Key{salt: append([]byte(nil), salt...), raw: raw, aead: aead}, nil
}

// Wrap seals the key and its salt with kek (a key-encryption key), so a
// service that must use the key later (a gateway between an upload's start
// and its end) keeps it on disk without ever writing it in plaintext.
func (k *Key) Wrap(kek cipher.AEAD) ([]byte, error) {
	n := make([]byte, kek.NonceSize())
	if _, err := rand.Read(n); err != nil {
		return nil, err
	}
	return kek.Seal(n, n, append(append([]byte(nil), k.raw...), k.salt...), []byte("deoss/codec/key/v1")), nil
}

// UnwrapKey opens what Wrap sealed.
func UnwrapKey(kek cipher.AEAD, wrapped []byte) (*Key, error) {
	ns := kek.NonceSize()
	if len(wrapped) < ns {
		return nil, errors.New("wrapped key: too short")
	}
	b, err := kek.Open(nil, wrapped[:ns], wrapped[ns:], []byte("deoss/codec/key/v1"))
	if err != nil || len(b) != keySize+types.SaltSize {
		return nil, errors.New("wrapped key: does not open with this key-encryption key")
	}
	return keyFrom(b[:keySize], b[keySize:])
}

// Subkey derives a 32-byte key for another use of the file's secret (the
// gateway's at-rest encryption of a session's chunks, say), named by label:
// HMAC-SHA256(key, label). It reveals nothing of the file key.
func (k *Key) Subkey(label string) []byte {
	m := hmac.New(sha256.New, k.raw)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Salt returns the salt the key was derived with (file metadata, not secret).
func (k *Key) Salt() []byte { return append([]byte(nil), k.salt...) }

// String shows the salt only.
func (k *Key) String() string { return fmt.Sprintf("codec.Key{salt:%x}", k.salt) }

// GoString shows the salt only.
func (k *Key) GoString() string { return k.String() }

func (k *Key) matches(salt []byte) bool { return subtle.ConstantTimeCompare(k.salt, salt) == 1 }

// nonce is the segment index (8 bytes, big endian) followed by 1 for the last
// segment of the file and 0 otherwise (4 bytes, big endian). The key is unique
// to the file (random salt), so each nonce seals exactly one segment; the
// last-segment flag makes a file cut short at a segment boundary fail to
// decrypt instead of reading as a shorter file.
func nonce(index uint64, last bool) []byte {
	var n [12]byte
	binary.BigEndian.PutUint64(n[:8], index)
	if last {
		n[11] = 1
	}
	return n[:]
}

// seal encrypts seg[:SegmentSize-GCMOverhead] in place; seg becomes ciphertext
// and tag, exactly SegmentSize bytes.
func (k *Key) seal(seg []byte, index uint64, last bool) {
	k.aead.Seal(seg[:0], nonce(index, last), seg[:len(seg)-types.GCMOverhead], nil)
}

// open decrypts a whole sealed segment in place and returns the plaintext, a
// prefix of seg.
func (k *Key) open(seg []byte, index uint64, last bool) ([]byte, error) {
	pt, err := k.aead.Open(seg[:0], nonce(index, last), seg, nil)
	if err != nil {
		return nil, fmt.Errorf("segment %d: %w", index, ErrAuthentication)
	}
	return pt, nil
}

// nonceV2 is the nonce of cipher block b of segment seg in format v2: the
// segment index (4 bytes, big endian), the block index (4 bytes), three zero
// bytes and 1 for the file's last block, 0 otherwise. The key is unique to
// the file, so each nonce seals one block; the flag makes a file cut short at
// a block boundary fail to decrypt instead of reading as a shorter file.
func nonceV2(seg uint64, b int, last bool) []byte {
	var n [12]byte
	binary.BigEndian.PutUint32(n[:4], uint32(seg))
	binary.BigEndian.PutUint32(n[4:8], uint32(b))
	if last {
		n[11] = 1
	}
	return n[:]
}

// plainPerBlock is the plaintext a v2 cipher block carries.
const plainPerBlock = types.CipherBlock - types.GCMOverhead

// sealBlocks encrypts the first plain bytes of buf (zero-padded to whole
// blocks by the caller) in place as v2 cipher blocks and returns the
// ciphertext length. Blocks are sealed last first, so moving each block to
// its wider place never overwrites plaintext not yet sealed.
func (k *Key) sealBlocks(buf []byte, plain int, seg uint64, lastSeg bool) int {
	blocks := (plain + plainPerBlock - 1) / plainPerBlock
	for b := blocks - 1; b >= 0; b-- {
		dst := buf[b*types.CipherBlock : b*types.CipherBlock+plainPerBlock]
		copy(dst, buf[b*plainPerBlock:(b+1)*plainPerBlock])
		k.aead.Seal(dst[:0], nonceV2(seg, b, lastSeg && b == blocks-1), dst, nil)
	}
	return blocks * types.CipherBlock
}

// openBlocks decrypts whole cipher blocks first.. of segment seg held in buf
// (len(buf) a multiple of CipherBlock) in place and returns their plaintext,
// a prefix of buf. last is the index of the file's last block in this
// segment, or -1.
func (k *Key) openBlocks(buf []byte, seg uint64, first, last int) ([]byte, error) {
	n := len(buf) / types.CipherBlock
	for i := range n {
		ct := buf[i*types.CipherBlock : (i+1)*types.CipherBlock]
		pt, err := k.aead.Open(ct[:0], nonceV2(seg, first+i, first+i == last), ct, nil)
		if err != nil {
			return nil, fmt.Errorf("segment %d block %d: %w", seg, first+i, ErrAuthentication)
		}
		copy(buf[i*plainPerBlock:], pt)
	}
	return buf[:n*plainPerBlock], nil
}
