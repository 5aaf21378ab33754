package s3

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"strings"
)

// The additional checksums S3 clients send (x-amz-checksum-<name>, in a
// header or a trailer), base64 of the big-endian digest.
var checksums = map[string]func() hash.Hash{
	"crc32":     func() hash.Hash { return crc32.NewIEEE() },
	"crc32c":    func() hash.Hash { return crc32.New(crc32.MakeTable(crc32.Castagnoli)) },
	"crc64nvme": func() hash.Hash { return crc64.New(crc64NVME) },
	"sha1":      sha1.New,
	"sha256":    sha256.New,
}

// CRC-64/NVME, reflected: hash/crc64's tables take the reversed polynomial.
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

type checksum struct {
	name string
	h    hash.Hash
	want string // from the header; "" when it comes in the trailer
}

// digests is a body checked as it ends: its length against the size
// declared, Content-MD5 and every x-amz-checksum-* the client sent (in
// headers, or in the trailer, which the aws-chunked decoder fills before it
// reports EOF). Its ETag is the body's MD5. Every refusal comes from the
// Read that would have been EOF, so the upload commits nothing.
type digests struct {
	r       io.Reader
	size    int64
	n       int64
	md5     hash.Hash
	wantMD5 []byte
	sums    []checksum
	trailer http.Header
	// ended, when set, is called once the body checked out, before EOF
	// is returned (the key's ETag goes into its journal entry).
	ended func(etag string)
}

// newDigests reads the request's digest headers; a malformed one is an
// error before any byte is read.
func newDigests(r *http.Request, body io.Reader, size int64, trailer http.Header) (*digests, error) {
	d := &digests{r: body, size: size, md5: md5.New(), trailer: trailer}
	if v := r.Header.Get("Content-MD5"); v != "" {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) != md5.Size {
			return nil, s3err("InvalidDigest", "Content-MD5 %q is not the base64 of 16 bytes", v)
		}
		d.wantMD5 = b
	}
	trailed := map[string]bool{}
	for _, t := range strings.Split(r.Header.Get("x-amz-trailer"), ",") {
		if t = strings.ToLower(strings.TrimSpace(t)); t != "" {
			name, ok := strings.CutPrefix(t, "x-amz-checksum-")
			if !ok || checksums[name] == nil {
				return nil, s3err("InvalidRequest", "trailer %q is not a checksum deoss knows", t)
			}
			trailed[name] = true
		}
	}
	for name, mk := range checksums {
		v := r.Header.Get("x-amz-checksum-" + name)
		if v == "" && !trailed[name] {
			continue
		}
		if v != "" {
			want, err := base64.StdEncoding.DecodeString(v)
			if err != nil || len(want) != mk().Size() {
				return nil, s3err("InvalidRequest", "x-amz-checksum-%s %q is not the base64 of a %s", name, v, name)
			}
		}
		d.sums = append(d.sums, checksum{name: name, h: mk(), want: v})
	}
	return d, nil
}

func (d *digests) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.n += int64(n)
	d.md5.Write(p[:n])
	for _, c := range d.sums {
		c.h.Write(p[:n])
	}
	if d.n > d.size {
		return n, s3err("IncompleteBody", "the body is longer than the %d bytes declared", d.size)
	}
	if err == io.EOF {
		if cerr := d.check(); cerr != nil {
			return n, cerr
		}
	}
	return n, err
}

func (d *digests) check() error {
	if d.n != d.size {
		return s3err("IncompleteBody", "the body has %d bytes, %d were declared", d.n, d.size)
	}
	if d.wantMD5 != nil && string(d.md5.Sum(nil)) != string(d.wantMD5) {
		return s3err("BadDigest", "the body's MD5 is not its Content-MD5")
	}
	for _, c := range d.sums {
		want := c.want
		if want == "" && d.trailer != nil {
			want = d.trailer.Get("x-amz-checksum-" + c.name)
		}
		if want == "" {
			return s3err("InvalidRequest", "the trailer promised x-amz-checksum-%s and did not send it", c.name)
		}
		if got := base64.StdEncoding.EncodeToString(c.h.Sum(nil)); got != want {
			return s3err("BadDigest", "the body's %s is %s, not %s", c.name, got, want)
		}
	}
	if d.ended != nil {
		d.ended(d.etag())
	}
	return nil
}

// etag is the body's MD5 in hex (once read to its end).
func (d *digests) etag() string { return hex.EncodeToString(d.md5.Sum(nil)) }

// echo sets the checksums the client sent on the response.
func (d *digests) echo(h http.Header) {
	for _, c := range d.sums {
		h.Set("x-amz-checksum-"+c.name, base64.StdEncoding.EncodeToString(c.h.Sum(nil)))
	}
}
