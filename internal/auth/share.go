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
const (
	shareDomain = "deoss/share/v1\n"
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
	return url.Values{"expires": {exp}, "by": {k.Address().String()}, "sig": {hex.EncodeToString(k.Sign([]byte(shareDomain + fid.String() + "\n" + exp)))}}
}

// IsShare reports whether a query carries a share link.
func IsShare(q url.Values) bool { return q.Has("sig") || q.Has("by") || q.Has("expires") }

// VerifyShare checks a share link's query for fid at now and returns who
// made it (the caller checks that it is the file's owner).
func VerifyShare(q url.Values, fid types.FID, now time.Time) (types.Address, error) {
	by, err := types.ParseAddress(q.Get("by"))
	if err != nil {
		return by, fmt.Errorf("%w: by: %v", ErrShareMalformed, err)
	}
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil || strconv.FormatInt(exp, 10) != q.Get("expires") {
		return by, fmt.Errorf("%w: expires", ErrShareMalformed)
	}
	sig, err := hex.DecodeString(q.Get("sig"))
	if err != nil {
		return by, fmt.Errorf("%w: sig", ErrShareMalformed)
	}
	if err := Verify(by, []byte(shareDomain+fid.String()+"\n"+q.Get("expires")), sig); err != nil {
		return by, err
	}
	if at := time.Unix(exp, 0); !now.Before(at) || at.After(now.Add(MaxShareLifetime)) {
		return by, fmt.Errorf("%w: expires %s", ErrShareExpired, at.UTC().Format(time.RFC3339))
	}
	return by, nil
}
