package s3

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/deoss/deoss/internal/gateway/ingest"
	"github.com/deoss/deoss/internal/gateway/pack"
	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/gateway/read"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// MaxUserMeta bounds the x-amz-meta-* headers of an object, as S3.
const MaxUserMeta = 2048

// keptHeaders are the standard headers stored with an object and sent
// back with it.
var keptHeaders = []string{"cache-control", "content-disposition", "content-encoding", "content-language", "content-type", "expires"}

// refusedHeaders ask for what deoss does not do; ignoring them would be a
// wrong success.
var refusedHeaders = []string{"x-amz-server-side-encryption", "x-amz-server-side-encryption-customer-algorithm",
	"x-amz-object-lock-mode", "x-amz-object-lock-legal-hold", "x-amz-tagging", "x-amz-website-redirect-location"}

// storedHeaders picks the headers an object keeps, sorted by name.
func storedHeaders(h http.Header) ([]ledger.Header, error) {
	for _, name := range refusedHeaders {
		if h.Get(name) != "" {
			return nil, s3err("NotImplemented", "%s is not supported by deoss (docs/s3.md)", name)
		}
	}
	var out []ledger.Header
	meta := 0
	for name, vs := range h {
		lower := strings.ToLower(name)
		v := strings.Join(vs, ",")
		switch {
		case strings.HasPrefix(lower, "x-amz-meta-"):
			meta += len(lower) - len("x-amz-meta-") + len(v)
		case lower == "content-encoding":
			v = dropToken(v, "aws-chunked") // a transfer detail, not the object's
			if v == "" {
				continue
			}
		case !contains(keptHeaders, lower):
			continue
		}
		out = append(out, ledger.Header{Name: lower, Value: v})
	}
	if meta > MaxUserMeta {
		return nil, s3err("MetadataTooLarge", "user metadata takes %d bytes, at most %d", meta, MaxUserMeta)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func dropToken(v, tok string) string {
	var keep []string
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(t); t != "" && !strings.EqualFold(t, tok) {
			keep = append(keep, t)
		}
	}
	return strings.Join(keep, ",")
}

// fileName is the name a key's file is declared under (file names have no
// slashes): its last segment, or "object".
func fileName(key string) string {
	name := path.Base(strings.TrimRight(key, "/"))
	if len(name) > 255 {
		name = name[len(name)-255:]
	}
	if ledger.ValidName(name) != nil {
		return "object"
	}
	return name
}

// bodySize is the object's length: x-amz-decoded-content-length for an
// aws-chunked body, else Content-Length. Known before the body is read, so
// a refusal (too large, no space) costs the client no upload.
func bodySize(req *request) (int64, error) {
	if req.vr.Streaming() {
		v := req.r.Header.Get("x-amz-decoded-content-length")
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, s3err("MissingContentLength", "an aws-chunked body needs x-amz-decoded-content-length")
		}
		return n, nil
	}
	if req.r.ContentLength < 0 {
		return 0, s3err("MissingContentLength", "send Content-Length")
	}
	return req.r.ContentLength, nil
}

func (s *Server) putObject(req *request) error {
	b, err := s.bucket(req)
	if err != nil {
		return err
	}
	size, err := bodySize(req)
	if err != nil {
		return err
	}
	if size > s.Ingest.MaxSize() {
		return s3err("EntityTooLarge", "objects are at most %d bytes here", s.Ingest.MaxSize())
	}
	headers, err := storedHeaders(req.r.Header)
	if err != nil {
		return err
	}
	trailer := http.Header{}
	d, err := newDigests(req.r, req.vr.Payload(req.r.Body, trailer), size, trailer)
	if err != nil {
		return err
	}
	op := &pipeline.KeyOp{Owner: req.owner, Bucket: req.bucket, Key: req.key, Headers: headers, Time: s.Now().UTC()}
	d.ended = func(etag string) { op.ETag = etag }
	ctx := req.r.Context()
	body, hold, err := s.Ingest.HoldStream(ctx, req.owner, b.Territory, size, types.EncryptionNone, d)
	if err != nil {
		return err
	}
	defer hold.Release()
	if s.Packing != nil && s.Packing.Takes(size) {
		// A small object: buffered for a pack (durable when Put returns,
		// the body's digests checked), then its key journalled.
		o, err := s.Packing.Put(pack.Object{Owner: req.owner, Name: fileName(req.key), Territory: b.Territory, Length: uint64(size)}, body)
		if err != nil {
			return err
		}
		op.FID, op.Size = o.OID, o.Length
		if err := s.Queue.JournalKeys(op); err != nil {
			return err
		}
	} else if _, err := s.Ingest.Accept(ctx, body, ingest.File{Owner: req.owner, Name: fileName(req.key), Territory: b.Territory, Size: size,
		Held: hold, KeyOp: op}); err != nil {
		return err
	}
	h := req.w.Header()
	h.Set("ETag", `"`+op.ETag+`"`)
	d.echo(h)
	req.w.WriteHeader(http.StatusOK)
	return nil
}

// lookup finds a key: this gateway's journal first (its own writes, not
// yet on chain), then the chain's index.
func (s *Server) lookup(req *request, bucket, key string) (*ledger.Object, error) {
	op, ok, err := s.Queue.LatestKey(req.owner, bucket, key)
	if err != nil {
		return nil, err
	}
	if ok {
		if op.Delete {
			return nil, s3err("NoSuchKey", "no key %q in bucket %q", key, bucket)
		}
		o := op.Object()
		return &o, nil
	}
	o, err := s.Chain.Object(req.r.Context(), req.owner, bucket, key)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, s3err("NoSuchKey", "no key %q in bucket %q", key, bucket)
	}
	return o, err
}

// etagMatches reports whether a list of entity tags (If-Match and the
// like) names etag or is "*".
func etagMatches(list, etag string) bool {
	for _, t := range strings.Split(list, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || strings.Trim(t, `"`) == etag {
			return true
		}
	}
	return false
}

// preconditions answers If-Match, If-Unmodified-Since (412), If-None-Match
// and If-Modified-Since (304), in RFC 9110's order.
func preconditions(h http.Header, etag string, mod time.Time) (int, bool) {
	if v := h.Get("If-Match"); v != "" {
		if !etagMatches(v, etag) {
			return http.StatusPreconditionFailed, false
		}
	} else if t, err := http.ParseTime(h.Get("If-Unmodified-Since")); err == nil && mod.After(t) {
		return http.StatusPreconditionFailed, false
	}
	if v := h.Get("If-None-Match"); v != "" {
		if etagMatches(v, etag) {
			return http.StatusNotModified, false
		}
	} else if t, err := http.ParseTime(h.Get("If-Modified-Since")); err == nil && !mod.After(t) {
		return http.StatusNotModified, false
	}
	return 0, true
}

// parseRange reads a single "bytes=" range; ok false for none (or one S3
// ignores: malformed, or several ranges).
func parseRange(v string, size int64) (off, n int64, ok bool, err error) {
	spec, found := strings.CutPrefix(v, "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	a, b, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, size, false, nil
	}
	if a == "" { // the last b bytes
		k, perr := strconv.ParseInt(b, 10, 64)
		if perr != nil || k < 0 {
			return 0, size, false, nil
		}
		if k == 0 || size == 0 {
			return 0, 0, true, s3err("InvalidRange", "the range is not satisfiable")
		}
		k = min(k, size)
		return size - k, k, true, nil
	}
	first, perr := strconv.ParseInt(a, 10, 64)
	if perr != nil || first < 0 {
		return 0, size, false, nil
	}
	last := size - 1
	if b != "" {
		if last, perr = strconv.ParseInt(b, 10, 64); perr != nil || last < first {
			return 0, size, false, nil
		}
		last = min(last, size-1)
	}
	if first >= size {
		return 0, 0, true, s3err("InvalidRange", "the range starts at %d; the object has %d bytes", first, size)
	}
	return first, last - first + 1, true, nil
}

// responseOverrides are the query parameters a signed GET may set headers
// of its answer with.
var responseOverrides = map[string]string{
	"response-cache-control": "Cache-Control", "response-content-disposition": "Content-Disposition",
	"response-content-encoding": "Content-Encoding", "response-content-language": "Content-Language",
	"response-content-type": "Content-Type", "response-expires": "Expires",
}

func objectHeaders(h http.Header, o *ledger.Object) {
	h.Set("Content-Type", "binary/octet-stream") // S3's default when none was sent
	for _, kv := range o.Headers {
		h.Set(kv.Name, kv.Value)
	}
	h.Set("ETag", `"`+o.ETag+`"`)
	h.Set("Last-Modified", time.Unix(o.Modified, 0).UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
}

func (s *Server) getObject(req *request) error {
	if _, err := s.bucket(req); err != nil {
		return err
	}
	o, err := s.lookup(req, req.bucket, req.key)
	if err != nil {
		return err
	}
	h := req.w.Header()
	size := int64(o.Size)
	if pn := req.query.Get("partNumber"); pn != "" {
		// Objects are stored whole: part 1 of a one-part object is all of it.
		if pn != "1" || strings.Contains(o.ETag, "-") {
			return s3err("InvalidPartNumber", "part %s: the object is stored whole; only part 1 of a single-part object is served", pn)
		}
	}
	if status, ok := preconditions(req.r.Header, o.ETag, time.Unix(o.Modified, 0)); !ok {
		if status == http.StatusPreconditionFailed {
			return s3err("PreconditionFailed", "a precondition does not hold")
		}
		h.Set("ETag", `"`+o.ETag+`"`)
		h.Set("Last-Modified", time.Unix(o.Modified, 0).UTC().Format(http.TimeFormat))
		req.w.WriteHeader(status)
		return nil
	}
	off, n, partial, err := parseRange(req.r.Header.Get("Range"), size)
	if err != nil {
		h.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
		return err
	}
	objectHeaders(h, o)
	for q, name := range responseOverrides {
		if v := req.query.Get(q); v != "" {
			h.Set(name, v)
		}
	}
	h.Set("Content-Length", strconv.FormatInt(n, 10))
	status := http.StatusOK
	if partial {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+n-1, size))
	}
	if req.r.Method == http.MethodHead || n == 0 {
		req.w.WriteHeader(status)
		return nil
	}
	f, err := s.Reader.Resolve(req.r.Context(), o.FID)
	if errors.Is(err, read.ErrNoFile) {
		return s3err("ServiceUnavailable", "the file of key %q (%s) is on no node or gateway that answers", req.key, o.FID)
	}
	if err != nil {
		return err
	}
	if f.Layout.Encryption != types.EncryptionNone {
		return s3err("NotImplemented", "the key names a file encrypted at the gateway; read it through the native API with its cipher")
	}
	lw := &lazyWriter{w: req.w, status: status}
	err = s.Reader.Read(req.r.Context(), lw, f, off, n, nil)
	switch {
	case err == nil && lw.n == n:
		return nil
	case err == nil:
		s.Log.Error("s3 get wrote the wrong length", "fid", o.FID, "wrote", lw.n, "want", n)
		panic(http.ErrAbortHandler)
	case lw.started:
		s.Log.Warn("s3 get cut short", "fid", o.FID, "after", lw.n, "err", err)
		panic(http.ErrAbortHandler) // the client sees a short body
	}
	for _, k := range []string{"Content-Length", "Content-Range", "ETag", "Last-Modified"} {
		h.Del(k)
	}
	return s3err("ServiceUnavailable", "reading %s: %v", o.FID, err)
}

// lazyWriter sends the status with the first verified bytes, so that a
// read failing before any is answered with an error instead.
type lazyWriter struct {
	w       http.ResponseWriter
	status  int
	started bool
	n       int64
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.w.WriteHeader(l.status)
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}

func (s *Server) deleteObject(req *request) error {
	if _, err := s.bucket(req); err != nil {
		return err
	}
	if err := s.Queue.JournalKeys(&pipeline.KeyOp{Owner: req.owner, Bucket: req.bucket, Key: req.key, Delete: true, Time: s.Now().UTC()}); err != nil {
		return err
	}
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}

// maxDeleteBody bounds a DeleteObjects request (1,000 keys of 1,024 bytes
// with their XML).
const maxDeleteBody = 2 << 20

func (s *Server) deleteObjects(req *request) error {
	if _, err := s.bucket(req); err != nil {
		return err
	}
	if req.r.Header.Get("Content-MD5") == "" && !hasChecksumHeader(req.r.Header) {
		return s3err("InvalidRequest", "DeleteObjects needs Content-MD5 or an x-amz-checksum-* header")
	}
	size, err := bodySize(req)
	if err != nil {
		return err
	}
	if size > maxDeleteBody {
		return s3err("MalformedXML", "the request is larger than %d bytes", maxDeleteBody)
	}
	trailer := http.Header{}
	d, err := newDigests(req.r, req.vr.Payload(req.r.Body, trailer), size, trailer)
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(d)
	if err != nil {
		return err
	}
	var in struct {
		Quiet   bool `xml:"Quiet"`
		Objects []struct {
			Key string `xml:"Key"`
		} `xml:"Object"`
	}
	if err := xml.Unmarshal(raw, &in); err != nil {
		return s3err("MalformedXML", "%v", err)
	}
	if len(in.Objects) == 0 || len(in.Objects) > ledger.MaxDeleteKeys {
		return s3err("MalformedXML", "1 to %d keys per request", ledger.MaxDeleteKeys)
	}
	type deleted struct {
		Key string `xml:"Key"`
	}
	type failed struct {
		Key     string `xml:"Key"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	out := struct {
		XMLName xml.Name  `xml:"DeleteResult"`
		NS      string    `xml:"xmlns,attr"`
		Deleted []deleted `xml:"Deleted"`
		Errors  []failed  `xml:"Error"`
	}{NS: s3NS}
	var ops []*pipeline.KeyOp
	now := s.Now().UTC()
	for _, o := range in.Objects {
		if err := ledger.ValidKey(o.Key); err != nil {
			out.Errors = append(out.Errors, failed{Key: o.Key, Code: "InvalidArgument", Message: err.Error()})
			continue
		}
		ops = append(ops, &pipeline.KeyOp{Owner: req.owner, Bucket: req.bucket, Key: o.Key, Delete: true, Time: now})
		if !in.Quiet {
			out.Deleted = append(out.Deleted, deleted{Key: o.Key})
		}
	}
	if err := s.Queue.JournalKeys(ops...); err != nil {
		return err
	}
	writeXML(req.w, http.StatusOK, out)
	return nil
}

// copySourceObject finds the object x-amz-copy-source names, among the
// account's own buckets.
func (s *Server) copySourceObject(req *request) (bucket, key string, o *ledger.Object, err error) {
	if bucket, key, err = copySource(req.r.Header.Get("x-amz-copy-source")); err != nil {
		return "", "", nil, err
	}
	src := *req
	src.bucket = bucket
	if _, err := s.bucket(&src); err != nil {
		return "", "", nil, err
	}
	o, err = s.lookup(req, bucket, key)
	return bucket, key, o, err
}

func hasChecksumHeader(h http.Header) bool {
	for name := range checksums {
		if h.Get("x-amz-checksum-"+name) != "" {
			return true
		}
	}
	return false
}

// copyObject writes a key naming the source's file: a metadata operation,
// whatever the size. The content stays charged where it first was.
func (s *Server) copyObject(req *request) error {
	if _, err := s.bucket(req); err != nil {
		return err
	}
	srcBucket, srcKey, o, err := s.copySourceObject(req)
	if err != nil {
		return err
	}
	hd := req.r.Header
	if v := hd.Get("x-amz-copy-source-if-match"); v != "" && !etagMatches(v, o.ETag) {
		return s3err("PreconditionFailed", "x-amz-copy-source-if-match does not hold")
	}
	if v := hd.Get("x-amz-copy-source-if-none-match"); v != "" && etagMatches(v, o.ETag) {
		return s3err("PreconditionFailed", "x-amz-copy-source-if-none-match does not hold")
	}
	headers := o.Headers
	switch dir := hd.Get("x-amz-metadata-directive"); dir {
	case "", "COPY":
		if srcBucket == req.bucket && srcKey == req.key {
			return s3err("InvalidRequest", "this copy request is illegal because it is trying to copy an object to itself without changing the object's metadata")
		}
	case "REPLACE":
		if headers, err = storedHeaders(hd); err != nil {
			return err
		}
	default:
		return s3err("InvalidArgument", "x-amz-metadata-directive %q: COPY or REPLACE", dir)
	}
	now := s.Now().UTC()
	op := &pipeline.KeyOp{Owner: req.owner, Bucket: req.bucket, Key: req.key, FID: o.FID, Size: o.Size, ETag: o.ETag, Headers: headers, Time: now}
	if err := s.Queue.JournalKeys(op); err != nil {
		return err
	}
	writeXML(req.w, http.StatusOK, struct {
		XMLName      xml.Name `xml:"CopyObjectResult"`
		NS           string   `xml:"xmlns,attr"`
		ETag         string   `xml:"ETag"`
		LastModified string   `xml:"LastModified"`
	}{NS: s3NS, ETag: `"` + o.ETag + `"`, LastModified: now.Format("2006-01-02T15:04:05.000Z")})
	return nil
}
