package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deoss/deoss/internal/types"
)

// Signed HTTP requests carry three headers:
//
//	Account:   the signer's address (deoss1...)
//	Message:   v2 <expiry> <nonce> <target> <METHOD> <path?query> <body> <cipher>
//	Signature: hex of ed25519("deoss/http/v2\n" + Message)
//
// The message names everything the request does: the server it is for
// (target: the gateway's or node's account address, so a look-alike server
// cannot pass it on), the method, path and query, and what it carries: body
// is the hex SHA-256 of the body (for a chunk, its Chunk-Sha256) or
// UNSIGNED-PAYLOAD for a streamed body the signer did not hash; cipher is the
// hex SHA-256 of the Cipher header, or "-" without one, so the header cannot
// be stripped or swapped. The expiry bounds how long it is good and the nonce
// makes it good once.
const (
	HeaderAccount   = "Account"
	HeaderMessage   = "Message"
	HeaderSignature = "Signature"
	// HeaderContentSHA256 tells SignRequest the body's hash when it cannot
	// read the body itself (a stream); the server checks the body against
	// the signed value, never against this header.
	HeaderContentSHA256 = "Content-Sha256"
	// HeaderCipher is the user's cipher for gateway-side encryption.
	HeaderCipher = "Cipher"
	// UnsignedPayload in the body field says the signer did not hash the
	// body; servers accept it only where the transport protects it (TLS)
	// or the content is verified otherwise.
	UnsignedPayload = "UNSIGNED-PAYLOAD"
	httpDomain      = "deoss/http/v2\n"
	noCipher        = "-"
)

// Errors of signed requests.
var (
	ErrUnsigned      = errors.New("request is not signed (Account, Message and Signature headers)")
	ErrMalformedAuth = errors.New("malformed request signature headers")
	ErrWrongRequest  = errors.New("signed message is for another request")
	ErrWrongTarget   = errors.New("signed message is for another server")
	ErrWrongCipher   = errors.New("the Cipher header is not the one signed")
	ErrStale         = errors.New("signed message expired or too far in the future")
	ErrReplayed      = errors.New("signed message was already used")
	ErrReplayFull    = errors.New("too many signed requests in flight; retry later")
	ErrTooMany       = errors.New("too many signed requests in flight from this account or address; retry later")
	ErrBodyMismatch  = errors.New("the body is not the one signed")
)

// BodyHash is the body field of a body held in memory.
func BodyHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// cipherField is the cipher field of a Cipher header value.
func cipherField(c string) string {
	if c == "" {
		return noCipher
	}
	return BodyHash([]byte(c))
}

// SignRequest signs req with k for the server whose account is target, good
// for lifetime from now. Set every header first: the Cipher header is
// signed. The body field is, in order: the Content-Sha256 or Chunk-Sha256
// header when set, the hash of a body that req.GetBody can read again (bytes
// and strings readers), the empty body's hash without a body, else
// UNSIGNED-PAYLOAD.
func SignRequest(req *http.Request, k *Key, target types.Address, lifetime time.Duration) error {
	body, err := bodyField(req)
	if err != nil {
		return err
	}
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	msg := strings.Join([]string{"v2", strconv.FormatInt(time.Now().Add(lifetime).Unix(), 10), hex.EncodeToString(nonce),
		target.String(), req.Method, req.URL.RequestURI(), body, cipherField(req.Header.Get(HeaderCipher))}, " ")
	req.Header.Set(HeaderAccount, k.Address().String())
	req.Header.Set(HeaderMessage, msg)
	req.Header.Set(HeaderSignature, hex.EncodeToString(k.Sign([]byte(httpDomain+msg))))
	return nil
}

func bodyField(req *http.Request) (string, error) {
	for _, h := range []string{HeaderContentSHA256, "Chunk-Sha256"} {
		if v := req.Header.Get(h); v == UnsignedPayload || lowerHex(v, 64) {
			return v, nil
		}
	}
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		return BodyHash(nil), nil
	case req.GetBody != nil:
		rc, err := req.GetBody()
		if err != nil {
			return "", err
		}
		defer rc.Close()
		h := sha256.New()
		if _, err := io.Copy(h, rc); err != nil {
			return "", err
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	return UnsignedPayload, nil
}

// Signed is a request whose signature checked out: who signed it and what
// it declares of its body. Its nonce is spent by Verifier.Spend.
type Signed struct {
	Account types.Address
	// Body is the signed body field: a hex SHA-256 or UnsignedPayload.
	Body   string
	nonce  string
	expiry time.Time
}

// Unsigned reports whether the signer left the body unhashed.
func (s *Signed) Unsigned() bool { return s.Body == UnsignedPayload }

// parseMessage parses a Message header strictly.
func parseMessage(s string) (m struct {
	expiry                           int64
	nonce, target, method, uri, body string
	cipher                           string
}, err error) {
	if len(s) > 4096 {
		return m, fmt.Errorf("%w: message of %d bytes", ErrMalformedAuth, len(s))
	}
	parts := strings.Split(s, " ")
	if len(parts) != 8 || parts[0] != "v2" {
		return m, fmt.Errorf("%w: want \"v2 <expiry> <nonce> <target> <method> <path> <body> <cipher>\"", ErrMalformedAuth)
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || exp <= 0 || strconv.FormatInt(exp, 10) != parts[1] {
		return m, fmt.Errorf("%w: expiry %q", ErrMalformedAuth, parts[1])
	}
	if !lowerHex(parts[2], 32) {
		return m, fmt.Errorf("%w: nonce must be 32 lowercase hex characters", ErrMalformedAuth)
	}
	if parts[4] == "" || !strings.HasPrefix(parts[5], "/") {
		return m, fmt.Errorf("%w: method and path", ErrMalformedAuth)
	}
	if parts[6] != UnsignedPayload && !lowerHex(parts[6], 64) {
		return m, fmt.Errorf("%w: body must be a SHA-256 in lowercase hex or %s", ErrMalformedAuth, UnsignedPayload)
	}
	if parts[7] != noCipher && !lowerHex(parts[7], 64) {
		return m, fmt.Errorf("%w: cipher must be a SHA-256 in lowercase hex or -", ErrMalformedAuth)
	}
	m.expiry, m.nonce, m.target, m.method, m.uri, m.body, m.cipher = exp, parts[2], parts[3], parts[4], parts[5], parts[6], parts[7]
	return m, nil
}

func lowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Verifier checks signed requests for one server. It is safe for
// concurrent use.
type Verifier struct {
	// Self is the server's account: the target every message must name.
	Self types.Address
	// MaxLifetime bounds how far in the future an expiry may be; Skew is the
	// clock difference tolerated between signer and verifier.
	MaxLifetime, Skew time.Duration
	// Now is the clock (time.Now if nil).
	Now    func() time.Time
	replay *ReplayCache
}

// NewVerifier returns a verifier for the server self that spends nonces in
// replay.
func NewVerifier(self types.Address, maxLifetime, skew time.Duration, replay *ReplayCache) *Verifier {
	return &Verifier{Self: self, MaxLifetime: maxLifetime, Skew: skew, replay: replay}
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

// Check verifies r's signature and that the message is for this server and
// this request (method, path and query, Cipher header) and not stale. It
// spends nothing: call Spend once the signer is known to be allowed, so that
// strangers cannot fill the replay cache.
func (v *Verifier) Check(r *http.Request) (*Signed, error) {
	acc, msg, sig := r.Header.Get(HeaderAccount), r.Header.Get(HeaderMessage), r.Header.Get(HeaderSignature)
	if acc == "" && msg == "" && sig == "" {
		return nil, ErrUnsigned
	}
	addr, err := types.ParseAddress(acc)
	if err != nil {
		return nil, fmt.Errorf("%w: account: %v", ErrMalformedAuth, err)
	}
	m, err := parseMessage(msg)
	if err != nil {
		return nil, err
	}
	rawSig, err := hex.DecodeString(sig)
	if err != nil {
		return nil, fmt.Errorf("%w: signature is not hex", ErrMalformedAuth)
	}
	if err := Verify(addr, []byte(httpDomain+msg), rawSig); err != nil {
		return nil, err
	}
	if m.target != v.Self.String() {
		return nil, fmt.Errorf("%w: signed for %s, this is %s", ErrWrongTarget, m.target, v.Self)
	}
	if m.method != r.Method || m.uri != r.URL.RequestURI() {
		return nil, fmt.Errorf("%w: signed %s %s, got %s %s", ErrWrongRequest, m.method, m.uri, r.Method, r.URL.RequestURI())
	}
	if m.cipher != cipherField(r.Header.Get(HeaderCipher)) {
		return nil, ErrWrongCipher
	}
	now, exp := v.now(), time.Unix(m.expiry, 0)
	if now.After(exp.Add(v.Skew)) || exp.After(now.Add(v.MaxLifetime+v.Skew)) {
		return nil, fmt.Errorf("%w: expires %s", ErrStale, exp.UTC().Format(time.RFC3339))
	}
	return &Signed{Account: addr, Body: m.body, nonce: m.nonce, expiry: exp}, nil
}

// Spend spends s's nonce for a request from client (its IP address). The
// nonce is remembered until the message could no longer pass the expiry
// check anyway: that bounds the cache.
func (v *Verifier) Spend(s *Signed, client string) error {
	return v.replay.Add(s.Account, client, s.nonce, s.expiry.Add(v.Skew), v.now())
}

// Verify is Check then Spend, for servers that authorize every signer the
// same way.
func (v *Verifier) Verify(r *http.Request, client string) (*Signed, error) {
	s, err := v.Check(r)
	if err != nil {
		return nil, err
	}
	return s, v.Spend(s, client)
}

// CheckBody returns rc checked against the signed body hash: the read that
// reaches n bytes (n < 0: unknown) or the end fails with ErrBodyMismatch
// when the bytes are not the signed ones, before the caller sees success. An
// unsigned payload is returned as it is.
func (s *Signed) CheckBody(rc io.ReadCloser, n int64) io.ReadCloser {
	if s.Unsigned() {
		return rc
	}
	return &checkedBody{rc: rc, want: s.Body, left: n, h: sha256.New()}
}

type checkedBody struct {
	rc   io.ReadCloser
	want string
	left int64 // bytes still to come; < 0 when unknown
	h    hash.Hash
	err  error
}

func (c *checkedBody) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.left >= 0 && int64(len(p)) > c.left+1 {
		p = p[:c.left+1] // see the end as soon as it comes
	}
	n, err := c.rc.Read(p)
	c.h.Write(p[:n])
	if c.left >= 0 {
		c.left -= int64(n)
		if c.left < 0 {
			c.err = fmt.Errorf("%w: longer than its length", ErrBodyMismatch)
			return 0, c.err
		}
	}
	if c.left == 0 || errors.Is(err, io.EOF) {
		if hex.EncodeToString(c.h.Sum(nil)) != c.want {
			c.err = ErrBodyMismatch
			return 0, c.err
		}
		if c.left == 0 {
			c.err = io.EOF
			return n, nil
		}
	}
	return n, err
}

func (c *checkedBody) Close() error { return c.rc.Close() }

// ReadBody reads a small body whole (at most max bytes) and checks it
// against the signature.
func (s *Signed) ReadBody(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("body over %d bytes", max)
	}
	if !s.Unsigned() && BodyHash(b) != s.Body {
		return nil, ErrBodyMismatch
	}
	return b, nil
}

// ClientAddr is the client's IP address as the server sees it (proxies'
// forwarding headers are not trusted).
func ClientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
