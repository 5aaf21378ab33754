package auth

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deoss/deoss/internal/types"
)

func TestSignVerify(t *testing.T) {
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("store fragment 3")
	sig := k.Sign(msg)
	if err := Verify(k.Address(), msg, sig); err != nil {
		t.Fatal(err)
	}
	other, _ := Generate()
	bad := bytes.Clone(sig)
	bad[0] ^= 1
	for name, err := range map[string]error{
		"other key":   Verify(other.Address(), msg, sig),
		"other msg":   Verify(k.Address(), []byte("store fragment 4"), sig),
		"flipped":     Verify(k.Address(), msg, bad),
		"short":       Verify(k.Address(), msg, sig[:10]),
		"empty":       Verify(k.Address(), msg, nil),
		"zero signer": Verify(types.Address{}, msg, sig),
	} {
		if !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, s := range []string{k.String(), k.GoString(), fmt.Sprintf("%v %+v %#v", k, k, k)} {
		if strings.Contains(s, fmt.Sprintf("%x", k.Seed())[:16]) || !strings.Contains(s, k.Address().String()) {
			t.Fatalf("key prints %q", s)
		}
	}
}

func TestAddressText(t *testing.T) {
	k, _ := FromSeed(bytes.Repeat([]byte{1}, 32))
	s := k.Address().String()
	if !strings.HasPrefix(s, "deoss1") {
		t.Fatalf("address %s", s)
	}
	a, err := types.ParseAddress(s)
	if err != nil || a != k.Address() {
		t.Fatalf("parse: %v", err)
	}
	// Any single-character typo fails the checksum.
	for i := len("deoss1"); i < len(s); i++ {
		c := byte('q')
		if s[i] == 'q' {
			c = 'p'
		}
		typo := s[:i] + string(c) + s[i+1:]
		if _, err := types.ParseAddress(typo); !errors.Is(err, types.ErrMalformedAddress) {
			t.Fatalf("typo at %d accepted", i)
		}
	}
	for _, bad := range []string{"", strings.ToUpper(s), "cosmos1" + s[6:], s[:20], s + "q"} {
		if _, err := types.ParseAddress(bad); !errors.Is(err, types.ErrMalformedAddress) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	k, _ := Generate()
	plain := filepath.Join(dir, "plain.json")
	if err := Save(plain, k, nil); err != nil {
		t.Fatal(err)
	}
	sealed := filepath.Join(dir, "sealed.json")
	if err := Save(sealed, k, []byte("open sesame")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{plain, sealed} {
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v %v", p, st.Mode(), err)
		}
	}
	if got, err := Load(plain, nil); err != nil || got.Address() != k.Address() {
		t.Fatalf("plain: %v", err)
	}
	if got, err := Load(sealed, []byte("open sesame")); err != nil || got.Address() != k.Address() {
		t.Fatalf("sealed: %v", err)
	}
	if _, err := Load(sealed, nil); !errors.Is(err, ErrPassphraseRequired) {
		t.Fatalf("no passphrase: %v", err)
	}
	if _, err := Load(sealed, []byte("wrong")); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	// A key file others may read is refused with a clear error, sealed
	// or not; back to 0600 it loads again.
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		os.Chmod(plain, mode)
		if _, err := Load(plain, nil); !errors.Is(err, ErrLoosePermissions) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: %v", mode, err)
		}
	}
	os.Chmod(plain, 0o600)
	if _, err := Load(plain, nil); err != nil {
		t.Fatalf("back to 0600: %v", err)
	}
	// The sealed file holds no plaintext seed.
	raw, _ := os.ReadFile(sealed)
	if bytes.Contains(raw, []byte(fmt.Sprintf("%x", k.Seed()))) {
		t.Fatal("seed in plaintext in a sealed file")
	}
	// A seed that is not the named address's key is refused.
	other, _ := Generate()
	raw, _ = os.ReadFile(plain)
	swapped := strings.Replace(string(raw), k.Address().String(), other.Address().String(), 1)
	os.WriteFile(plain, []byte(swapped), 0o600)
	if _, err := Load(plain, nil); err == nil {
		t.Fatal("mismatched address accepted")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("temporary files left: %v", entries)
	}
}
