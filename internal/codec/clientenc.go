package codec

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/deoss/deoss/internal/types"
)

// Client-side encryption (docs/format.md, "Client-side encryption"): the
// client seals a file before it leaves, so a gateway stores ciphertext
// whose key it never sees. The sealed stream is a header, then the file in
// blocks of ClientBlock bytes, each sealed with AES-256-GCM into 64 KiB like
// format v2's cipher blocks:
//
//	header:  "DEOSSCE1" || salt (16 bytes)       (24 bytes, the AAD of every block)
//	block i: AES-256-GCM(key, nonce_i, plaintext_i, header)   (plaintext + 16 bytes)
//	nonce_i: 0xCE || i (u64 big-endian) || 0x00 0x00 || last (0 or 1)
//
// The key is Argon2id of the user's passphrase and the salt (the same
// derivation as DeriveKey). Every block but the last holds ClientBlock bytes;
// the last is marked in its nonce, so a stream cut at a block boundary does
// not open, and an empty file is one empty last block. Ranges open block by
// block: a client reads only the blocks a range touches.
const (
	ClientBlock      = types.CipherBlock - types.GCMOverhead
	ClientHeaderSize = 8 + types.SaltSize
	clientSealed     = types.CipherBlock
)

var clientMagic = []byte("DEOSSCE1")

// ErrNotClientSealed means a stream does not start with a client-side
// encryption header.
var ErrNotClientSealed = errors.New("not a client-side encrypted file (no DEOSSCE1 header)")

func clientBlocks(plain int64) int64 { return max(1, (plain+ClientBlock-1)/ClientBlock) }

// ClientSealedSize is the sealed size of a plain size.
func ClientSealedSize(plain int64) int64 {
	return ClientHeaderSize + plain + clientBlocks(plain)*types.GCMOverhead
}

// ClientPlainSize is the plain size of a sealed size, or an error when no
// plain size seals to it.
func ClientPlainSize(sealed int64) (int64, error) {
	body := sealed - ClientHeaderSize
	if body < types.GCMOverhead {
		return 0, fmt.Errorf("%w: %d bytes", ErrNotClientSealed, sealed)
	}
	n := (body + clientSealed - 1) / clientSealed
	plain := body - n*types.GCMOverhead
	if ClientSealedSize(plain) != sealed {
		return 0, fmt.Errorf("%w: %d bytes is no sealed size", ErrNotClientSealed, sealed)
	}
	return plain, nil
}

// NewClientHeader makes the header of a new sealed file (a fresh salt).
func NewClientHeader() ([]byte, error) {
	salt := make([]byte, types.SaltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	return append(bytes.Clone(clientMagic), salt...), nil
}

// ClientSalt returns the salt of a header.
func ClientSalt(header []byte) ([]byte, error) {
	if len(header) < ClientHeaderSize || !bytes.Equal(header[:8], clientMagic) {
		return nil, ErrNotClientSealed
	}
	return bytes.Clone(header[8:ClientHeaderSize]), nil
}

func clientNonce(i uint64, last bool) []byte {
	n := make([]byte, 12)
	n[0] = 0xCE
	binary.BigEndian.PutUint64(n[1:9], i)
	if last {
		n[11] = 1
	}
	return n
}

// ClientSealer seals a plain file read through an io.ReaderAt into the
// sealed stream, itself an io.ReaderAt: any range of it, any number of
// times, the same bytes (so an interrupted upload resumes). It is safe for
// concurrent use.
type ClientSealer struct {
	r      io.ReaderAt
	plain  int64
	key    *Key
	header []byte

	mu    sync.Mutex
	cache map[int64][]byte // sealed blocks lately read
	order []int64
}

// NewClientSealer seals size bytes of r under key with header (whose salt
// key was derived with).
func NewClientSealer(r io.ReaderAt, size int64, key *Key, header []byte) *ClientSealer {
	return &ClientSealer{r: r, plain: size, key: key, header: header, cache: map[int64][]byte{}}
}

// Size is the sealed size.
func (s *ClientSealer) Size() int64 { return ClientSealedSize(s.plain) }

// ReadAt reads the sealed stream.
func (s *ClientSealer) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for len(p) > 0 {
		if off >= s.Size() {
			return n, io.EOF
		}
		var src []byte
		var at int64
		if off < ClientHeaderSize {
			src, at = s.header, off
		} else {
			i := (off - ClientHeaderSize) / clientSealed
			b, err := s.block(i)
			if err != nil {
				return n, err
			}
			src, at = b, (off-ClientHeaderSize)-i*clientSealed
		}
		c := copy(p, src[at:])
		p, off, n = p[c:], off+int64(c), n+c
	}
	return n, nil
}

func (s *ClientSealer) block(i int64) ([]byte, error) {
	s.mu.Lock()
	b, ok := s.cache[i]
	s.mu.Unlock()
	if ok {
		return b, nil
	}
	last := i == clientBlocks(s.plain)-1
	n := min(ClientBlock, s.plain-i*ClientBlock)
	plain := make([]byte, n, n+types.GCMOverhead)
	if _, err := s.r.ReadAt(plain, i*ClientBlock); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return nil, err
	}
	b = s.key.aead.Seal(plain[:0], clientNonce(uint64(i), last), plain, s.header)
	s.mu.Lock()
	if len(s.order) >= 16 { // chunks in flight read a few blocks each
		delete(s.cache, s.order[0])
		s.order = s.order[1:]
	}
	s.cache[i], s.order = b, append(s.order, i)
	s.mu.Unlock()
	return b, nil
}

// ClientRange is the sealed range that holds plain bytes [off, off+n) of a
// file of plain size bytes: whole blocks.
func ClientRange(off, n, size int64) (sealedOff, sealedLen int64) {
	first, last := off/ClientBlock, (off+n-1)/ClientBlock
	if n == 0 {
		last = first
	}
	end := min(ClientHeaderSize+(last+1)*clientSealed, ClientSealedSize(size))
	sealedOff = ClientHeaderSize + first*clientSealed
	return sealedOff, end - sealedOff
}

// OpenClientRange reads from r the sealed range ClientRange gives and writes
// plain bytes [off, off+n) of a file of plain size bytes to w, each block
// opened (authenticated) before any of its bytes is written.
func OpenClientRange(w io.Writer, r io.Reader, key *Key, header []byte, off, n, size int64) error {
	if off < 0 || n < 0 || off+n > size {
		return fmt.Errorf("range %d+%d outside a %d-byte file", off, n, size)
	}
	nblocks := clientBlocks(size)
	buf := make([]byte, clientSealed)
	for i := off / ClientBlock; n > 0 || (size == 0 && i == 0); i++ {
		last := i == nblocks-1
		sl := clientSealed
		if last {
			sl = int(size-i*ClientBlock) + types.GCMOverhead
		}
		if _, err := io.ReadFull(r, buf[:sl]); err != nil {
			return fmt.Errorf("sealed block %d: %w", i, err)
		}
		plain, err := key.aead.Open(buf[:0], clientNonce(uint64(i), last), buf[:sl], header)
		if err != nil {
			return fmt.Errorf("%w (block %d)", ErrAuthentication, i)
		}
		from := max(0, off-i*ClientBlock)
		take := min(int64(len(plain))-from, n)
		if _, err := w.Write(plain[from : from+take]); err != nil {
			return err
		}
		off, n = off+take, n-take
		if size == 0 {
			break
		}
	}
	return nil
}
