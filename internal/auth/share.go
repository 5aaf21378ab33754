package auth

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/deoss/deoss/internal/types"
)

// Share links let whoever holds them read one private file until they
// expire, without a key: the owner signs the FID and an expiry,
//
//	?expires=<Unix seconds>&by=<owner address>&sig=<hex ed25519("deoss/share/v1\n" + FID + "\n" + expires)>
//
// A link is good for its file only, until its expiry (at most
// MaxShareLifetime ahead when made), any number of times: that is what a
// link is for; a leaked one is revoked by waiting it out (or by deleting the
// file).
//
// A gateway may make a link for an owner who signed in to its console (the
// owner's key is not there to sign): it adds for=<owner> and signs
//
//	"deoss/share-for/v1\n" + FID + "\n" + expires + "\n" + owner
//
// with its own key. Such a link reads only while the owner authorizes that
// gateway (the reader checks the chain), so deauthorizing the gateway
// revokes every link it made. It gives nothing the owner did not give
// already: an authorized gateway stores the owner's files and can read them.
const (
	shareDomain    = "deoss/share/v1\n"
	shareForDomain = "deoss/share-for/v1\n"
	// MaxShareLifetime bounds how long a share link may be good for.
	MaxShareLifetime = 7 * 24 * time.Hour
)

// Errors of share links.
var (
	ErrShareMalformed = errors.New("malformed share link (expires, by, sig)")
	ErrShareExpired   = errors.New("share link expired, or good for longer than allowed")
)

// ShareQuery is the query of a link to fid made by k, good until expires.
func ShareQuery(k *Key, fid types.FID, expires time.Time) url.Values {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return url.Values{"expires": {exp}, "by": {k.Address().String()}, "sig": {hex.EncodeToString(k.Sign(shareMessage(fid, exp, nil)))}}
}

// shareMessage is what a link's sig signs: owner is nil for an owner's
// own link, the owner a gateway made it for otherwise.
func shareMessage(fid types.FID, expires string, owner *types.Address) []byte {
	if owner == nil {
		return []byte(shareDomain + fid.String() + "\n" + expires)
	}
	return []byte(shareForDomain + fid.String() + "\n" + expires + "\n" + owner.String())
}

// ShareForQuery is the query of a link to owner's file fid made by the
// gateway key gw, good until expires.
func ShareForQuery(gw *Key, owner types.Address, fid types.FID, expires time.Time) url.Values {
	exp := strconv.FormatInt(expires.Unix(), 10)
	return url.Values{"expires": {exp}, "by": {gw.Address().String()}, "for": {owner.String()},
		"sig": {hex.EncodeToString(gw.Sign(shareMessage(fid, exp, &owner)))}}
}

// Share is who a verified link speaks for: By signed it for the owner For
// (the same account, unless a gateway made it; see Delegated).
type Share struct{ By, For types.Address }

// Delegated reports whether a gateway made the link for For: it reads only
// while For authorizes By.
func (s Share) Delegated() bool { return s.By != s.For }

// IsShare reports whether a query carries a share link.
func IsShare(q url.Values) bool {
	return q.Has("sig") || q.Has("by") || q.Has("expires") || q.Has("for")
}

// VerifyShare checks a share link's query for fid at now and returns who
// made it and for whom (the caller checks that For owns the file and, when
// the link is delegated, that For authorizes By).
func VerifyShare(q url.Values, fid types.FID, now time.Time) (Share, error) {
	var sh Share
	by, err := types.ParseAddress(q.Get("by"))
	if err != nil {
		return sh, fmt.Errorf("%w: by: %v", ErrShareMalformed, err)
	}
	sh = Share{By: by, For: by}
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil || strconv.FormatInt(exp, 10) != q.Get("expires") {
		return sh, fmt.Errorf("%w: expires", ErrShareMalformed)
	}
	sig, err := hex.DecodeString(q.Get("sig"))
	if err != nil {
		return sh, fmt.Errorf("%w: sig", ErrShareMalformed)
	}
	var owner *types.Address
	if q.Has("for") {
		if sh.For, err = types.ParseAddress(q.Get("for")); err != nil {
			return sh, fmt.Errorf("%w: for: %v", ErrShareMalformed, err)
		}
		owner = &sh.For
	}
	if err := Verify(by, shareMessage(fid, q.Get("expires"), owner), sig); err != nil {
		return sh, err
	}
	if at := time.Unix(exp, 0); !now.Before(at) || at.After(now.Add(MaxShareLifetime)) {
		return sh, fmt.Errorf("%w: expires %s", ErrShareExpired, at.UTC().Format(time.RFC3339))
	}
	return sh, nil
}
