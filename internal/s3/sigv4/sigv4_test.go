package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The vectors are made by aws-sdk-go-v2's signer, the client most tools
// sign like; the verifier shares no code with it.

type secrets map[string]string

func (s secrets) Secret(k string) (string, error) {
	if v, ok := s[k]; ok {
		return v, nil
	}
	return "", ErrUnknownKey
}

var (
	signTime = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	creds    = aws.Credentials{AccessKeyID: "AKDEOSSTEST", SecretAccessKey: "s3cr3t/KEY+value"}
)

func verifier() *Verifier {
	return &Verifier{Region: "deoss", Secrets: secrets{"AKDEOSSTEST": "s3cr3t/KEY+value"}, Now: func() time.Time { return signTime.Add(time.Minute) }}
}

// serverSide turns a client request into what a server's handler sees.
func serverSide(t *testing.T, req *http.Request) *http.Request {
	t.Helper()
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		// A copy with its own body: the server goes on using r.
		got = r.Clone(context.Background())
		got.Body = io.NopCloser(bytes.NewReader(body))
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	// Sent to the test server, with the Host the client signed.
	req.Host = req.URL.Host
	req.URL.Host, req.URL.Scheme = u.Host, "http"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return got
}

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// signed makes a request to the test server's host, signed in region.
func signed(t *testing.T, method, rawPath string, body []byte, region string, edit func(*http.Request)) *http.Request {
	t.Helper()
	req, _ := http.NewRequest(method, "http://deoss.test:9000"+rawPath, bytes.NewReader(body))
	req.URL.RawPath = strings.SplitN(rawPath, "?", 2)[0]
	req.Header.Set("X-Amz-Content-Sha256", hexSum(body))
	req.Header.Set("X-Amz-Meta-Color", "  deep   blue ")
	if edit != nil {
		edit(req)
	}
	err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
		SignHTTP(context.Background(), creds, req, req.Header.Get("X-Amz-Content-Sha256"), "s3", region, signTime)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return "other: " + err.Error()
}

func TestHeaderSignatures(t *testing.T) {
	body := []byte("hello, deoss")
	for _, path := range []string{"/bucket/key", "/bucket/a%2Fb/c%20d", "/bucket/a//b/", "/bucket/%E2%82%AC?uploads=&x=1%2B2", "/bucket?list-type=2&prefix=a%2F"} {
		r := serverSide(t, signed(t, "PUT", path, body, "deoss", nil))
		vr, err := verifier().Verify(r)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if vr.AccessKey != "AKDEOSSTEST" || vr.PayloadHash != hexSum(body) {
			t.Fatalf("%s: %+v", path, vr)
		}
		got, err := io.ReadAll(vr.Body(r.Body))
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("%s: body %q %v", path, got, err)
		}
	}
}

func TestHeaderSignatureRefusals(t *testing.T) {
	body := []byte("hello")
	cases := []struct {
		name string
		req  func() *http.Request
		v    func(*Verifier)
		want string
	}{
		{"other secret", func() *http.Request { return signed(t, "PUT", "/b/k", body, "deoss", nil) },
			func(v *Verifier) { v.Secrets = secrets{"AKDEOSSTEST": "another"} }, CodeSignatureMismatch},
		{"unknown key", func() *http.Request { return signed(t, "PUT", "/b/k", body, "deoss", nil) },
			func(v *Verifier) { v.Secrets = secrets{} }, CodeInvalidAccessKey},
		{"other region", func() *http.Request { return signed(t, "PUT", "/b/k", body, "us-east-1", nil) }, nil, CodeMalformed},
		{"other date", func() *http.Request { return signed(t, "PUT", "/b/k", body, "deoss", nil) },
			func(v *Verifier) { v.Now = func() time.Time { return signTime.Add(time.Hour) } }, CodeTimeSkewed},
		{"altered header", func() *http.Request {
			r := signed(t, "PUT", "/b/k", body, "deoss", nil)
			r.Header.Set("X-Amz-Meta-Color", "red")
			return r
		}, nil, CodeSignatureMismatch},
		{"altered path", func() *http.Request {
			r := signed(t, "PUT", "/b/k", body, "deoss", nil)
			r.URL.Path, r.URL.RawPath = "/b/other", ""
			return r
		}, nil, CodeSignatureMismatch},
		{"altered query", func() *http.Request {
			r := signed(t, "GET", "/b?prefix=a", nil, "deoss", nil)
			r.URL.RawQuery = "prefix=b"
			return r
		}, nil, CodeSignatureMismatch},
		{"unsigned", func() *http.Request {
			r, _ := http.NewRequest("GET", "http://x/b/k", nil)
			return r
		}, nil, CodeAccessDenied},
		{"other algorithm", func() *http.Request {
			r := signed(t, "PUT", "/b/k", body, "deoss", nil)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), Algorithm, "AWS4-HMAC-SHA1", 1))
			return r
		}, nil, CodeMalformed},
	}
	for _, c := range cases {
		v := verifier()
		if c.v != nil {
			c.v(v)
		}
		_, err := v.Verify(serverSide(t, c.req()))
		if got := code(err); got != c.want {
			t.Errorf("%s: %q (%v), want %s", c.name, got, err, c.want)
		}
	}
	// A body other than the signed hash fails at its end.
	r := serverSide(t, signed(t, "PUT", "/b/k", body, "deoss", nil))
	vr, err := verifier().Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(vr.Body(strings.NewReader("hellO"))); code(err) != CodeContentSHA256 {
		t.Fatalf("a swapped body: %v", err)
	}
}

func presign(t *testing.T, method, path string, expires time.Duration) *http.Request {
	t.Helper()
	req, _ := http.NewRequest(method, "http://deoss.test"+path, nil)
	q := req.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(int(expires.Seconds())))
	req.URL.RawQuery = q.Encode()
	u, _, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
		PresignHTTP(context.Background(), creds, req, UnsignedPayload, "s3", "deoss", signTime)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := http.NewRequest(method, u, nil)
	return serverSide(t, out)
}

func TestPresigned(t *testing.T) {
	r := presign(t, "GET", "/bucket/dir/file.bin", time.Hour)
	vr, err := verifier().Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	if vr.PayloadHash != UnsignedPayload {
		t.Fatalf("%+v", vr)
	}
	v := verifier()
	v.Now = func() time.Time { return signTime.Add(2 * time.Hour) }
	if _, err := v.Verify(presign(t, "GET", "/bucket/dir/file.bin", time.Hour)); code(err) != CodeAccessDenied {
		t.Fatalf("an expired presign: %v", err)
	}
	tampered := presign(t, "GET", "/bucket/dir/file.bin", time.Hour)
	tampered.URL.RawQuery = strings.Replace(tampered.URL.RawQuery, "X-Amz-Expires=3600", "X-Amz-Expires=7200", 1)
	tampered.RequestURI = tampered.URL.RequestURI()
	if _, err := verifier().Verify(tampered); code(err) != CodeSignatureMismatch {
		t.Fatalf("a presign with its expiry raised: %v", err)
	}
}

// FuzzVerify: no Authorization header, query or path makes the verifier
// panic or accept.
func FuzzVerify(f *testing.F) {
	good := signed(&testing.T{}, "PUT", "/b/k", []byte("x"), "deoss", nil)
	f.Add(good.Header.Get("Authorization"), "/b/k", "")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e,SignedHeaders=,Signature=", "/", "X-Amz-Algorithm=AWS4-HMAC-SHA256")
	f.Fuzz(func(t *testing.T, authz, path, query string) {
		r := httptest.NewRequest("PUT", "http://deoss.test/", nil)
		r.RequestURI = path
		if query != "" {
			r.RequestURI += "?" + query
		}
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
			r.URL = u
		}
		r.Header = good.Header.Clone()
		r.Header.Set("Authorization", authz)
		if _, err := verifier().Verify(r); err == nil && authz != good.Header.Get("Authorization") {
			t.Fatalf("accepted %q %q", authz, r.RequestURI)
		}
	})
}
