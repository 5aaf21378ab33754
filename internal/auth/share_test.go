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
	if sh, err := VerifyShare(q, fid, now); err != nil || sh != (Share{k.Address(), k.Address()}) || sh.Delegated() {
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

// TestSharedForOwner checks the links a gateway makes for an owner: bound
// to the owner as well as the file and expiry, and never taken for the
// owner's own link.
func TestSharedForOwner(t *testing.T) {
	gw, _ := Generate()
	owner, _ := Generate()
	other, _ := Generate()
	fid := types.FID{4, 5, 6}
	now := time.Unix(1_800_000_000, 0)
	q := ShareForQuery(gw, owner.Address(), fid, now.Add(time.Hour))
	sh, err := VerifyShare(q, fid, now)
	if err != nil || sh != (Share{gw.Address(), owner.Address()}) || !sh.Delegated() {
		t.Fatalf("good link: %+v %v", sh, err)
	}
	swapped := ShareForQuery(gw, owner.Address(), fid, now.Add(time.Hour))
	swapped.Set("for", other.Address().String())
	if _, err := VerifyShare(swapped, fid, now); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("for another owner: %v", err)
	}
	// Without for, the gateway's signature is not a link of its own.
	dropped := ShareForQuery(gw, owner.Address(), fid, now.Add(time.Hour))
	dropped.Del("for")
	if _, err := VerifyShare(dropped, fid, now); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("for dropped: %v", err)
	}
	// Nor is an owner's own link one made for somebody else.
	added := ShareQuery(owner, fid, now.Add(time.Hour))
	added.Set("for", other.Address().String())
	if _, err := VerifyShare(added, fid, now); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("for added: %v", err)
	}
	bad := ShareForQuery(gw, owner.Address(), fid, now.Add(time.Hour))
	bad.Set("for", "nobody")
	if _, err := VerifyShare(bad, fid, now); !errors.Is(err, ErrShareMalformed) {
		t.Fatalf("malformed for: %v", err)
	}
	if _, err := VerifyShare(q, fid, now.Add(time.Hour)); !errors.Is(err, ErrShareExpired) {
		t.Fatalf("expired: %v", err)
	}
}
