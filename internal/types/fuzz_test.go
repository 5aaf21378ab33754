package types

import (
	"errors"
	"testing"
)

func FuzzParseHash(f *testing.F) {
	f.Add("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	f.Add("")
	f.Add("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHash(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedHash) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// One hash has exactly one spelling.
		if h.String() != s {
			t.Fatalf("%q parsed to %s", s, h)
		}
	})
}
