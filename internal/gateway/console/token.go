package console

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/types"
)

// A sign-in token is base64url("v1 <account> <gateway> <expiry> <nonce>")
// "." hex(ed25519(tokenDomain + that text)): for one gateway, until the
// expiry (Unix seconds), once.
const tokenDomain = "deoss/console/v1\n"

// MaxLinkLifetime bounds how far ahead a sign-in link may expire.
const MaxLinkLifetime = 15 * time.Minute

// Errors of sign-in tokens.
var (
	ErrBadToken     = errors.New("not a sign-in link of deoss")
	ErrTokenExpired = errors.New("the sign-in link expired; ask for a new one (deoss console)")
	ErrOtherGateway = errors.New("the sign-in link is for another gateway")
)

// Token makes a sign-in token of k for gateway, good for lifetime.
func Token(k *auth.Key, gateway types.Address, lifetime time.Duration, now time.Time) string {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	text := strings.Join([]string{"v1", k.Address().String(), gateway.String(), strconv.FormatInt(now.Add(lifetime).Unix(), 10), hex.EncodeToString(nonce)}, " ")
	return base64.RawURLEncoding.EncodeToString([]byte(text)) + "." + hex.EncodeToString(k.Sign([]byte(tokenDomain+text)))
}

// Link is the URL that signs k in at the gateway at base (its address).
func Link(base string, k *auth.Key, gateway types.Address, lifetime time.Duration, now time.Time) string {
	return strings.TrimRight(base, "/") + "/console/signin?t=" + Token(k, gateway, lifetime, now)
}

// Claim is what a valid token says.
type Claim struct {
	Account types.Address
	Nonce   string
	Expires time.Time
}

// Check verifies a token for gateway self at now (its nonce is the
// caller's to spend).
func Check(token string, self types.Address, now time.Time) (Claim, error) {
	var c Claim
	enc, sigHex, ok := strings.Cut(token, ".")
	if !ok || len(token) > 1024 {
		return c, ErrBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return c, ErrBadToken
	}
	sig, err := hex.DecodeString(sigHex)
	if err != nil {
		return c, ErrBadToken
	}
	parts := strings.Split(string(raw), " ")
	if len(parts) != 5 || parts[0] != "v1" || len(parts[4]) != 32 {
		return c, ErrBadToken
	}
	if c.Account, err = types.ParseAddress(parts[1]); err != nil {
		return c, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if err := auth.Verify(c.Account, []byte(tokenDomain+string(raw)), sig); err != nil {
		return c, fmt.Errorf("%w: %v", ErrBadToken, err)
	}
	if parts[2] != self.String() {
		return c, ErrOtherGateway
	}
	exp, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return c, ErrBadToken
	}
	c.Expires, c.Nonce = time.Unix(exp, 0), parts[4]
	if !now.Before(c.Expires) {
		return c, ErrTokenExpired
	}
	if c.Expires.After(now.Add(MaxLinkLifetime + time.Minute)) {
		return c, fmt.Errorf("%w: it is good for more than %s", ErrBadToken, MaxLinkLifetime)
	}
	return c, nil
}
