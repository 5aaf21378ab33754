package auth

import (
	"errors"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/types"
)

func TestShareLinks(t *testing.T) {
	k, _ := Generate()
	fid := types.FID{1, 2, 3}
	now := time.Unix(1_800_000_000, 0)
	q := ShareQuery(k, fid, now.Add(time.Hour))
	if by, err := VerifyShare(q, fid, now); err != nil || by != k.Address() {
		t.Fatalf("good link: %v", err)
	}
	if _, err := VerifyShare(q, types.FID{9}, now); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("another file: %v", err)
	}
	if _, err := VerifyShare(q, fid, now.Add(2*time.Hour)); !errors.Is(err, ErrShareExpired) {
		t.Fatalf("expired: %v", err)
	}
	long := ShareQuery(k, fid, now.Add(MaxShareLifetime+time.Hour))
	if _, err := VerifyShare(long, fid, now); !errors.Is(err, ErrShareExpired) {
		t.Fatalf("too long: %v", err)
	}
	moved := ShareQuery(k, fid, now.Add(time.Hour))
	moved.Set("expires", "1900000000")
	if _, err := VerifyShare(moved, fid, now); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("expiry pushed out: %v", err)
	}
	other, _ := Generate()
	forged := ShareQuery(k, fid, now.Add(time.Hour))
	forged.Set("by", other.Address().String())
	if _, err := VerifyShare(forged, fid, now); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("claimed by another: %v", err)
	}
	for _, bad := range []string{"", "x", "01"} {
		q := ShareQuery(k, fid, now.Add(time.Hour))
		q.Set("expires", bad)
		if _, err := VerifyShare(q, fid, now); !errors.Is(err, ErrShareMalformed) {
			t.Errorf("expires %q: %v", bad, err)
		}
	}
}
