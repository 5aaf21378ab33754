package codec

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

func sealAll(t *testing.T, plain []byte, k *Key, header []byte) []byte {
	t.Helper()
	s := NewClientSealer(bytes.NewReader(plain), int64(len(plain)), k, header)
	out := make([]byte, s.Size())
	if _, err := s.ReadAt(out, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return out
}

// Client-side sealing round-trips whole files and any range, reads the same
// bytes at any offset, and refuses altered, cut and mis-keyed streams.
func TestClientSealedRanges(t *testing.T) {
	header, err := NewClientHeader()
	if err != nil {
		t.Fatal(err)
	}
	salt, _ := ClientSalt(header)
	k, err := DeriveKey([]byte("client passphrase"), salt)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int64{0, 1, ClientBlock - 1, ClientBlock, ClientBlock + 1, 3*ClientBlock + 77} {
		plain := make([]byte, size)
		for i := range plain {
			plain[i] = byte(rng.Uint32())
		}
		sealed := sealAll(t, plain, k, header)
		if int64(len(sealed)) != ClientSealedSize(size) {
			t.Fatalf("size %d: sealed %d, want %d", size, len(sealed), ClientSealedSize(size))
		}
		if p, err := ClientPlainSize(int64(len(sealed))); err != nil || p != size {
			t.Fatalf("size %d: plain size %d %v", size, p, err)
		}
		if bytes.Contains(sealed, plain[:min(size, 64)]) && size >= 16 {
			t.Fatalf("size %d: plaintext in the sealed stream", size)
		}
		// The same bytes read in odd pieces at odd offsets.
		s := NewClientSealer(bytes.NewReader(plain), size, k, header)
		var again bytes.Buffer
		io.Copy(&again, io.NewSectionReader(s, 0, s.Size()))
		if !bytes.Equal(again.Bytes(), sealed) {
			t.Fatalf("size %d: sealed bytes differ between reads", size)
		}
		ranges := [][2]int64{{0, size}}
		for range 20 {
			if size > 0 {
				off := rng.Int64N(size)
				ranges = append(ranges, [2]int64{off, 1 + rng.Int64N(size-off)})
			}
		}
		for _, r := range ranges {
			so, sl := ClientRange(r[0], r[1], size)
			var out bytes.Buffer
			if err := OpenClientRange(&out, bytes.NewReader(sealed[so:so+sl]), k, header, r[0], r[1], size); err != nil {
				t.Fatalf("size %d range %v: %v", size, r, err)
			}
			if !bytes.Equal(out.Bytes(), plain[r[0]:r[0]+r[1]]) {
				t.Fatalf("size %d range %v: wrong bytes", size, r)
			}
		}
	}
	plain := bytes.Repeat([]byte("client "), 30_000)
	size := int64(len(plain))
	sealed := sealAll(t, plain, k, header)
	open := func(s []byte, key *Key, hdr []byte) error {
		so, sl := ClientRange(0, size, size)
		return OpenClientRange(io.Discard, bytes.NewReader(s[so:min(so+sl, int64(len(s)))]), key, hdr, 0, size, size)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)/2] ^= 1
	if err := open(flipped, k, header); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("altered: %v", err)
	}
	other, _ := DeriveKey([]byte("wrong"), salt)
	if err := open(sealed, other, header); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	// Cut after whole blocks: the block now last is not marked last.
	cutPlain := int64(2 * ClientBlock)
	cut := sealed[:ClientHeaderSize+2*clientSealed]
	if err := OpenClientRange(io.Discard, bytes.NewReader(cut[ClientHeaderSize:]), k, header, 0, cutPlain, cutPlain); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("cut at a block boundary: %v", err)
	}
	if _, err := ClientSalt([]byte("not a sealed file at all")); !errors.Is(err, ErrNotClientSealed) {
		t.Fatalf("no header: %v", err)
	}
	if _, err := ClientPlainSize(ClientHeaderSize + 3); err == nil {
		t.Fatal("an impossible sealed size")
	}
}
