package codec

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"testing"

	"github.com/deoss/deoss/internal/types"
)

func testKEK(t *testing.T, b byte) cipher.AEAD {
	t.Helper()
	block, err := aes.NewCipher(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	return aead
}

func TestWrapKey(t *testing.T) {
	k, err := DeriveKey([]byte("pw"), bytes.Repeat([]byte{3}, types.SaltSize))
	if err != nil {
		t.Fatal(err)
	}
	w, err := k.Wrap(testKEK(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(w, k.raw) {
		t.Fatal("wrapped key holds the key in plaintext")
	}
	u, err := UnwrapKey(testKEK(t, 1), w)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(u.raw, k.raw) || !bytes.Equal(u.Salt(), k.Salt()) {
		t.Fatal("unwrapped key differs")
	}
	if _, err := UnwrapKey(testKEK(t, 2), w); err == nil {
		t.Fatal("unwrapped with the wrong key-encryption key")
	}
	w[len(w)-1] ^= 1
	if _, err := UnwrapKey(testKEK(t, 1), w); err == nil {
		t.Fatal("unwrapped an altered key")
	}
	if s := fmt.Sprintf("%v %+v %#v", k, k, k); bytes.Contains([]byte(s), []byte(fmt.Sprintf("%x", k.raw))) {
		t.Fatal("key printed its secret")
	}
}
