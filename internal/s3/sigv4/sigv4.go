package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Algorithm is the only signing algorithm accepted.
const Algorithm = "AWS4-HMAC-SHA256"

// Payload hash values other than a hex SHA-256.
const (
	UnsignedPayload          = "UNSIGNED-PAYLOAD"
	StreamingPayload         = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingPayloadTrailer  = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	StreamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

const (
	timeFormat   = "20060102T150405Z"
	dateFormat   = "20060102"
	maxPresign   = 7 * 24 * time.Hour
	defaultSkew  = 15 * time.Minute
	scopeTrailer = "aws4_request"
)

// Error is a refusal, with its S3 error code.
type Error struct {
	Code string // an S3 error code: SignatureDoesNotMatch, InvalidAccessKeyId, ...
	Msg  string
}

func (e *Error) Error() string { return e.Code + ": " + e.Msg }

// S3 error codes of signature checks.
const (
	CodeAccessDenied      = "AccessDenied"
	CodeMalformed         = "AuthorizationHeaderMalformed"
	CodeInvalidAccessKey  = "InvalidAccessKeyId"
	CodeSignatureMismatch = "SignatureDoesNotMatch"
	CodeTimeSkewed        = "RequestTimeTooSkewed"
	CodeContentSHA256     = "XAmzContentSHA256Mismatch"
	CodeMissingAuth       = "MissingSecurityHeader"
	CodeIncomplete        = "IncompleteBody"
)

func fail(code, format string, a ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, a...)}
}

// ErrUnknownKey is what a Secrets lookup returns for an access key it does
// not know (or that was revoked).
var ErrUnknownKey = errors.New("unknown access key")

// Secrets finds the secret of an access key.
type Secrets interface {
	Secret(accessKey string) (string, error)
}

// Verifier checks signatures for one region and service.
type Verifier struct {
	Region  string
	Service string // "s3" when empty
	Secrets Secrets
	Now     func() time.Time // time.Now when nil
	Skew    time.Duration    // 15 minutes when zero
}

// Verified is a request whose signature holds.
type Verified struct {
	AccessKey string
	// PayloadHash is the x-amz-content-sha256 the signature covers (a hex
	// SHA-256, UnsignedPayload or a streaming mode).
	PayloadHash string
	// Seed is the request's signature: the first link of a streaming
	// body's chunk-signature chain. Time and Scope go with it.
	Seed  string
	Time  time.Time
	Scope string
	key   []byte
}

// Verify checks r's Authorization header or presigned query.
func (v *Verifier) Verify(r *http.Request) (*Verified, error) {
	q := r.URL.Query()
	switch {
	case r.Header.Get("Authorization") != "":
		return v.header(r)
	case q.Get("X-Amz-Algorithm") != "":
		return v.presigned(r, q)
	}
	return nil, fail(CodeAccessDenied, "the request is not signed")
}

type credential struct {
	key, date, region, service string
}

func parseCredential(s string) (credential, error) {
	p := strings.Split(s, "/")
	if len(p) != 5 || p[4] != scopeTrailer || p[0] == "" {
		return credential{}, fail(CodeMalformed, "credential %q is not KEY/DATE/REGION/SERVICE/aws4_request", s)
	}
	return credential{key: p[0], date: p[1], region: p[2], service: p[3]}, nil
}

func (c credential) scope() string {
	return c.date + "/" + c.region + "/" + c.service + "/" + scopeTrailer
}

func (v *Verifier) header(r *http.Request) (*Verified, error) {
	auth := r.Header.Get("Authorization")
	alg, rest, ok := strings.Cut(auth, " ")
	if !ok || alg != Algorithm {
		return nil, fail(CodeMalformed, "the algorithm must be %s", Algorithm)
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, val, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return nil, fail(CodeMalformed, "authorization field %q", f)
		}
		fields[k] = val
	}
	cred, err := parseCredential(fields["Credential"])
	if err != nil {
		return nil, err
	}
	signed, sig := fields["SignedHeaders"], fields["Signature"]
	if signed == "" || sig == "" {
		return nil, fail(CodeMalformed, "SignedHeaders and Signature are required")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		return nil, fail(CodeMissingAuth, "X-Amz-Date is required")
	}
	t, err := v.checkTime(cred, amzDate)
	if err != nil {
		return nil, err
	}
	if d := v.now().Sub(t); d > v.skew() || d < -v.skew() {
		return nil, fail(CodeTimeSkewed, "the request time %s is %s from the server's", amzDate, d.Round(time.Second))
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		return nil, fail(CodeMissingAuth, "x-amz-content-sha256 is required")
	}
	if !validPayload(payload) {
		return nil, fail(CodeMalformed, "x-amz-content-sha256 %q", payload)
	}
	return v.check(r, cred, t, amzDate, signed, sig, payload, nil)
}

func (v *Verifier) presigned(r *http.Request, q url.Values) (*Verified, error) {
	if q.Get("X-Amz-Algorithm") != Algorithm {
		return nil, fail(CodeMalformed, "the algorithm must be %s", Algorithm)
	}
	cred, err := parseCredential(q.Get("X-Amz-Credential"))
	if err != nil {
		return nil, err
	}
	amzDate, signed, sig := q.Get("X-Amz-Date"), q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Signature")
	if amzDate == "" || signed == "" || sig == "" {
		return nil, fail(CodeMalformed, "X-Amz-Date, X-Amz-SignedHeaders and X-Amz-Signature are required")
	}
	t, err := v.checkTime(cred, amzDate)
	if err != nil {
		return nil, err
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > maxPresign {
		return nil, fail(CodeMalformed, "X-Amz-Expires must be 1 to %d seconds", int(maxPresign.Seconds()))
	}
	now := v.now()
	if now.Before(t.Add(-v.skew())) {
		return nil, fail(CodeAccessDenied, "the presigned URL is not valid yet")
	}
	if now.After(t.Add(time.Duration(secs) * time.Second)) {
		return nil, fail(CodeAccessDenied, "the presigned URL expired at %s", t.Add(time.Duration(secs)*time.Second).Format(time.RFC3339))
	}
	payload := UnsignedPayload
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && strings.Contains(";"+signed+";", ";x-amz-content-sha256;") {
		payload = h
	}
	return v.check(r, cred, t, amzDate, signed, sig, payload, map[string]bool{"X-Amz-Signature": true})
}

func (v *Verifier) checkTime(cred credential, amzDate string) (time.Time, error) {
	t, err := time.Parse(timeFormat, amzDate)
	if err != nil {
		return t, fail(CodeMalformed, "X-Amz-Date %q is not %s", amzDate, timeFormat)
	}
	if cred.date != t.Format(dateFormat) {
		return t, fail(CodeMalformed, "the credential's date %s is not the request's %s", cred.date, t.Format(dateFormat))
	}
	if cred.region != v.Region {
		return t, fail(CodeMalformed, "the region %q is wrong; expecting %q", cred.region, v.Region)
	}
	if cred.service != v.service() {
		return t, fail(CodeMalformed, "the service %q is wrong; expecting %q", cred.service, v.service())
	}
	return t, nil
}

func (v *Verifier) check(r *http.Request, cred credential, t time.Time, amzDate, signed, sig, payload string, skip map[string]bool) (*Verified, error) {
	secret, err := v.Secrets.Secret(cred.key)
	if errors.Is(err, ErrUnknownKey) {
		return nil, fail(CodeInvalidAccessKey, "the access key %q does not exist", cred.key)
	}
	if err != nil {
		return nil, err
	}
	cr, err := canonicalRequest(r, signed, payload, skip)
	if err != nil {
		return nil, err
	}
	scope := cred.scope()
	sts := Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hexSHA256([]byte(cr))
	key := signingKey(secret, cred.date, cred.region, cred.service)
	want := hex.EncodeToString(hmacSHA256(key, []byte(sts)))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(sig))) {
		return nil, fail(CodeSignatureMismatch, "the signature does not match: check the secret key and the signing method")
	}
	return &Verified{AccessKey: cred.key, PayloadHash: payload, Seed: want, Time: t, Scope: scope, key: key}, nil
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) skew() time.Duration {
	if v.Skew > 0 {
		return v.Skew
	}
	return defaultSkew
}

func (v *Verifier) service() string {
	if v.Service != "" {
		return v.Service
	}
	return "s3"
}

func validPayload(p string) bool {
	switch p {
	case UnsignedPayload, StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedTrailer:
		return true
	}
	if len(p) != 64 {
		return false
	}
	_, err := hex.DecodeString(p)
	return err == nil
}

// canonicalRequest rebuilds the request the client signed: the raw path
// split at its slashes, each segment decoded and encoded again the AWS way
// (so lower-case escapes match, and an encoded slash inside a key stays
// encoded), the query sorted, and the headers the client listed.
func canonicalRequest(r *http.Request, signed, payload string, skip map[string]bool) (string, error) {
	raw := r.RequestURI
	if raw == "" {
		raw = r.URL.RequestURI()
	}
	path, rawQuery, _ := strings.Cut(raw, "?")
	if path == "" || path[0] != '/' {
		return "", fail(CodeMalformed, "request path %q", path)
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		d, err := url.PathUnescape(s)
		if err != nil {
			return "", fail(CodeMalformed, "request path %q: %v", path, err)
		}
		segs[i] = encode(d)
	}
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	b.WriteString(strings.Join(segs, "/"))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(rawQuery, skip))
	b.WriteByte('\n')
	names := strings.Split(signed, ";")
	for i, n := range names {
		if n == "" || n != strings.ToLower(n) || (i > 0 && names[i-1] >= n) {
			return "", fail(CodeMalformed, "SignedHeaders %q: lower-case names in order", signed)
		}
	}
	if !contains(names, "host") {
		return "", fail(CodeMalformed, "SignedHeaders must include host")
	}
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte(':')
		b.WriteString(headerValue(r, n))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(signed)
	b.WriteByte('\n')
	b.WriteString(payload)
	return b.String(), nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func headerValue(r *http.Request, name string) string {
	switch name {
	case "host":
		return r.Host
	case "content-length":
		if v := r.Header.Get("Content-Length"); v != "" {
			return v
		}
		if r.ContentLength >= 0 {
			return strconv.FormatInt(r.ContentLength, 10)
		}
	case "transfer-encoding":
		if len(r.TransferEncoding) > 0 {
			return strings.Join(r.TransferEncoding, ",")
		}
	}
	vals := r.Header.Values(name)
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

func canonicalQuery(raw string, skip map[string]bool) string {
	if raw == "" {
		return ""
	}
	type kv struct{ k, v string }
	var pairs []kv
	for _, p := range strings.Split(raw, "&") {
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		dk, err1 := url.PathUnescape(k)
		dv, err2 := url.PathUnescape(v)
		if err1 != nil || err2 != nil {
			dk, dv = k, v
		}
		if skip[dk] {
			continue
		}
		pairs = append(pairs, kv{encode(dk), encode(dv)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// encode is AWS's URI encoding: unreserved bytes as they are, every other
// byte (a "/" inside a path segment too) %XX in upper case.
func encode(s string) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexd[c>>4])
			b.WriteByte(hexd[c&15])
		}
	}
	return b.String()
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte(scopeTrailer))
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Body returns r's body checked against a hex SHA-256 payload hash: its
// last Read fails with XAmzContentSHA256Mismatch if the bytes differ, so a
// caller that commits only after EOF commits nothing wrong. Other payload
// modes are returned as they are (streaming ones need their own decoder).
func (vr *Verified) Body(body io.Reader) io.Reader {
	if len(vr.PayloadHash) != 64 {
		return body
	}
	return &hashedBody{r: body, h: sha256.New(), want: vr.PayloadHash}
}

type hashedBody struct {
	r    io.Reader
	h    hash.Hash
	want string
}

func (b *hashedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	if err == io.EOF && hex.EncodeToString(b.h.Sum(nil)) != b.want {
		return n, fail(CodeContentSHA256, "the body's SHA-256 is not x-amz-content-sha256")
	}
	return n, err
}
