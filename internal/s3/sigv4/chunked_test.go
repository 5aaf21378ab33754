package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"hash"
	"io"
	"net/http"
	"strings"
	"testing"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/minio/minio-go/v7/pkg/signer"
)

// sha256Hasher is what minio-go's streaming signer hashes with.
type sha256Hasher struct{ hash.Hash }

func (sha256Hasher) Close() {}

// streamed makes an aws-chunked request with minio-go's signer: signed
// chunks (with a signed trailer when trailer is set), or unsigned chunks
// with a trailer.
func streamed(t *testing.T, body []byte, trailer http.Header, unsigned bool) *http.Request {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://deoss.test:9000/bucket/key", bytes.NewReader(body))
	req.Trailer = trailer
	if unsigned {
		req = signer.StreamingUnsignedV4(req, "", int64(len(body)), signTime)
		// The headers are still signed, by SigV4 over the unsigned mode.
		req.Header.Set("X-Amz-Content-Sha256", StreamingUnsignedTrailer)
		req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, StreamingUnsignedTrailer, "s3", "deoss", signTime); err != nil {
			t.Fatal(err)
		}
		return req
	}
	return signer.StreamingSignV4(req, creds.AccessKeyID, creds.SecretAccessKey, "", "deoss", int64(len(body)), signTime, sha256Hasher{sha256.New()})
}

func decode(t *testing.T, r *http.Request) ([]byte, http.Header, error) {
	t.Helper()
	vr, err := verifier().Verify(r)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	tr := http.Header{}
	b, err := io.ReadAll(vr.Payload(r.Body, tr))
	return b, tr, err
}

func TestStreamingBodies(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 150_000) // 2.4 MB: several 64 KiB chunks
	// Signed chunks.
	got, _, err := decode(t, serverSide(t, streamed(t, body, nil, false)))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("signed chunks: %v (%d bytes)", err, len(got))
	}
	// Signed chunks and a signed trailer.
	got, tr, err := decode(t, serverSide(t, streamed(t, body, http.Header{"X-Amz-Checksum-Crc32": {"AAAAAA=="}}, false)))
	if err != nil || !bytes.Equal(got, body) || tr.Get("x-amz-checksum-crc32") != "AAAAAA==" {
		t.Fatalf("signed trailer: %v %v", err, tr)
	}
	// Unsigned chunks with a trailer.
	got, tr, err = decode(t, serverSide(t, streamed(t, body, http.Header{"X-Amz-Checksum-Crc32": {"AAAAAA=="}}, true)))
	if err != nil || !bytes.Equal(got, body) || tr.Get("x-amz-checksum-crc32") != "AAAAAA==" {
		t.Fatalf("unsigned trailer: %v %v", err, tr)
	}
	// An empty body.
	if got, _, err := decode(t, serverSide(t, streamed(t, nil, nil, false))); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %q", err, got)
	}
}

// tamper rewrites the raw aws-chunked body a server received.
func tamper(t *testing.T, r *http.Request, edit func([]byte) []byte) *http.Request {
	t.Helper()
	raw, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(edit(raw)))
	return r
}

func TestStreamingRefusals(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 200_000)
	cases := []struct {
		name    string
		trailer http.Header
		edit    func([]byte) []byte
		want    string
	}{
		{"altered chunk", nil, func(b []byte) []byte { i := bytes.Index(b, []byte("xxxx")); b[i] = 'y'; return b }, CodeSignatureMismatch},
		{"chunk dropped", nil, func(b []byte) []byte {
			i := bytes.Index(b, []byte("\r\n10000;"))
			j := bytes.Index(b[i+2:], []byte("\r\n10000;"))
			return append(b[:i], b[i+2+j:]...)
		}, CodeSignatureMismatch},
		{"cut short", nil, func(b []byte) []byte { return b[:len(b)/2] }, CodeIncomplete},
		{"bad size", nil, func(b []byte) []byte { return append([]byte("zz"), b[5:]...) }, CodeIncomplete},
		{"altered trailer", http.Header{"X-Amz-Checksum-Crc32": {"AAAAAA=="}}, func(b []byte) []byte {
			return bytes.Replace(b, []byte("AAAAAA=="), []byte("BBBBBB=="), 1)
		}, CodeSignatureMismatch},
		{"trailer signature missing", http.Header{"X-Amz-Checksum-Crc32": {"AAAAAA=="}}, func(b []byte) []byte {
			i := bytes.Index(b, []byte("x-amz-trailer-signature"))
			return append(b[:i], '\r', '\n')
		}, CodeSignatureMismatch},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := tamper(t, serverSide(t, streamed(t, body, c.trailer, false)), c.edit)
			_, _, err := decode(t, r)
			if code(err) != c.want {
				t.Fatalf("got %v, want %s", err, c.want)
			}
		})
	}
}

// FuzzChunked: whatever the body, the decoder ends in EOF or an *Error,
// and never returns more bytes than it was given.
func FuzzChunked(f *testing.F) {
	f.Add([]byte("5;chunk-signature=" + strings.Repeat("0", 64) + "\r\nhello\r\n0;chunk-signature=" + strings.Repeat("0", 64) + "\r\n\r\n"))
	f.Add([]byte("3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, mode := range []string{StreamingPayload, StreamingUnsignedTrailer, StreamingPayloadTrailer} {
			vr := &Verified{PayloadHash: mode, Seed: strings.Repeat("0", 64), Time: signTime, Scope: "20261202/deoss/s3/aws4_request", key: []byte("k")}
			b, err := io.ReadAll(vr.Payload(bytes.NewReader(raw), http.Header{}))
			if len(b) > len(raw) {
				t.Fatalf("%d bytes out of %d", len(b), len(raw))
			}
			var e *Error
			if err != nil && !asError(err, &e) {
				t.Fatalf("error of another kind: %v", err)
			}
		}
	})
}

func asError(err error, e **Error) bool {
	x, ok := err.(*Error)
	*e = x
	return ok
}
