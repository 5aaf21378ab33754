package s3

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/deoss/deoss/internal/gateway/ingest"
	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/gateway/upload"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// Multipart uploads are parts sessions of the ingest session store (the
// one native chunked uploads use), their bucket, key and headers kept with
// the session; Complete streams the listed parts, in order, into the codec.
const (
	MinPartSize = 5 << 20 // every part but the last, as S3
	MaxPartSize = 5 << 30
)

// upload is what a multipart session keeps of its S3 request.
type uploadMeta struct {
	Bucket  string          `json:"bucket"`
	Key     string          `json:"key"`
	Headers []ledger.Header `json:"headers,omitempty"`
}

func (s *Server) createUpload(req *request) error {
	b, err := s.bucket(req)
	if err != nil {
		return err
	}
	headers, err := storedHeaders(req.r.Header)
	if err != nil {
		return err
	}
	extra, _ := json.Marshal(uploadMeta{Bucket: req.bucket, Key: req.key, Headers: headers})
	sess, err := s.Sessions.CreateWith(upload.Spec{Owner: req.owner, Name: fileName(req.key), Territory: b.Territory, Parts: true}, nil, extra)
	if err != nil {
		return err
	}
	writeXML(req.w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
		NS       string   `xml:"xmlns,attr"`
		Bucket   string   `xml:"Bucket"`
		Key      string   `xml:"Key"`
		UploadID string   `xml:"UploadId"`
	}{NS: s3NS, Bucket: req.bucket, Key: req.key, UploadID: sess.ID})
	return nil
}

// session finds the request's upload: the account's, for this key.
func (s *Server) session(req *request) (*upload.Session, []upload.Part, *uploadMeta, error) {
	sess, parts, err := s.Sessions.Parts(req.query.Get("uploadId"), req.owner)
	if errors.Is(err, upload.ErrNotFound) || errors.Is(err, upload.ErrForbidden) {
		return nil, nil, nil, s3err("NoSuchUpload", "no upload %q of yours", req.query.Get("uploadId"))
	}
	if err != nil {
		return nil, nil, nil, err
	}
	var m uploadMeta
	if err := json.Unmarshal(sess.Extra, &m); err != nil || !sess.Spec.Parts || m.Bucket != req.bucket || m.Key != req.key {
		return nil, nil, nil, s3err("NoSuchUpload", "upload %q is not one of %s/%s", sess.ID, req.bucket, req.key)
	}
	return sess, parts, &m, nil
}

func partNumber(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > upload.MaxPartNumber {
		return 0, s3err("InvalidArgument", "part number %q: 1 to %d", v, upload.MaxPartNumber)
	}
	return n, nil
}

func (s *Server) uploadPart(req *request) error {
	number, err := partNumber(req.query.Get("partNumber"))
	if err != nil {
		return err
	}
	sess, _, _, err := s.session(req)
	if err != nil {
		return err
	}
	if req.r.Header.Get("x-amz-copy-source") != "" {
		return s.uploadPartCopy(req, sess, number)
	}
	size, err := bodySize(req)
	if err != nil {
		return err
	}
	if size > MaxPartSize {
		return s3err("EntityTooLarge", "parts are at most %d bytes", MaxPartSize)
	}
	if sess.PartBytes+size > s.Ingest.MaxSize() {
		return s3err("EntityTooLarge", "the upload's parts would pass the %d bytes an object may have", s.Ingest.MaxSize())
	}
	// The parts held count against the territory; one more must fit.
	if err := s.Ingest.CheckSpace(req.r.Context(), req.owner, sess.Spec.Territory, size, types.EncryptionNone); err != nil {
		return err
	}
	trailer := http.Header{}
	d, err := newDigests(req.r, req.vr.Payload(req.r.Body, trailer), size, trailer)
	if err != nil {
		return err
	}
	p, err := s.Sessions.PutPart(req.r.Context(), sess.ID, req.owner, number, size, d)
	if err != nil {
		return err
	}
	req.w.Header().Set("ETag", `"`+p.MD5+`"`)
	d.echo(req.w.Header())
	req.w.WriteHeader(http.StatusOK)
	return nil
}

// uploadPartCopy takes a part from (a range of) an existing object.
func (s *Server) uploadPartCopy(req *request, sess *upload.Session, number int) error {
	_, _, o, err := s.copySourceObject(req)
	if err != nil {
		return err
	}
	off, n := int64(0), int64(o.Size)
	if v := req.r.Header.Get("x-amz-copy-source-range"); v != "" {
		var ok bool
		if off, n, ok, err = parseRange(v, int64(o.Size)); err != nil || !ok {
			return s3err("InvalidArgument", "x-amz-copy-source-range %q", v)
		}
	}
	if n > MaxPartSize {
		return s3err("EntityTooLarge", "parts are at most %d bytes", MaxPartSize)
	}
	f, err := s.Reader.Resolve(req.r.Context(), o.FID)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(s.Reader.Read(req.r.Context(), pw, f, off, n, nil)) }()
	p, err := s.Sessions.PutPart(req.r.Context(), sess.ID, req.owner, number, n, pr)
	pr.CloseWithError(errors.New("part stored"))
	if err != nil {
		return err
	}
	writeXML(req.w, http.StatusOK, struct {
		XMLName      xml.Name `xml:"CopyPartResult"`
		NS           string   `xml:"xmlns,attr"`
		ETag         string   `xml:"ETag"`
		LastModified string   `xml:"LastModified"`
	}{NS: s3NS, ETag: `"` + p.MD5 + `"`, LastModified: p.Modified.Format("2006-01-02T15:04:05.000Z")})
	return nil
}

func copySource(v string) (bucket, key string, err error) {
	src, version, _ := strings.Cut(v, "?")
	if version != "" && version != "versionId=null" {
		return "", "", s3err("NotImplemented", "deoss keeps no versions")
	}
	if src, err = unescapePath(src); err != nil {
		return "", "", s3err("InvalidArgument", "x-amz-copy-source: %v", err)
	}
	bucket, key, ok := strings.Cut(strings.TrimPrefix(src, "/"), "/")
	if !ok || key == "" {
		return "", "", s3err("InvalidArgument", "x-amz-copy-source must be bucket/key")
	}
	return bucket, key, nil
}

// completeETag is S3's multipart ETag: the MD5 of the parts' MD5s, "-N".
func completeETag(parts []upload.Part) string {
	h := md5.New()
	for _, p := range parts {
		b, _ := hex.DecodeString(p.MD5)
		h.Write(b)
	}
	return fmt.Sprintf("%s-%d", hex.EncodeToString(h.Sum(nil)), len(parts))
}

// keepAlive is how often Complete sends a space while it encodes: S3 does
// the same, so that clients and proxies do not time out a long encode.
const keepAlive = 10 * time.Second

func (s *Server) completeUpload(req *request) error {
	sess, stored, meta, err := s.session(req)
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(req.vr.Payload(io.LimitReader(req.r.Body, 4<<20), nil))
	if err != nil {
		return err
	}
	var in struct {
		Parts []struct {
			Number int    `xml:"PartNumber"`
			ETag   string `xml:"ETag"`
		} `xml:"Part"`
	}
	if err := xml.Unmarshal(raw, &in); err != nil {
		return s3err("MalformedXML", "%v", err)
	}
	if len(in.Parts) == 0 || len(in.Parts) > upload.MaxPartNumber {
		return s3err("MalformedXML", "1 to %d parts", upload.MaxPartNumber)
	}
	byNumber := map[int]upload.Part{}
	for _, p := range stored {
		byNumber[p.Number] = p
	}
	var parts []upload.Part
	var numbers []int
	var total int64
	for i := 1; i < len(in.Parts); i++ {
		if in.Parts[i].Number <= in.Parts[i-1].Number {
			return s3err("InvalidPartOrder", "parts must be listed in ascending order, each once")
		}
	}
	for i, lp := range in.Parts {
		p, ok := byNumber[lp.Number]
		if !ok || strings.Trim(lp.ETag, `"`) != p.MD5 {
			return s3err("InvalidPart", "part %d was not uploaded, or its ETag is not %s", lp.Number, lp.ETag)
		}
		if i < len(in.Parts)-1 && p.Size < MinPartSize {
			return s3err("EntityTooSmall", "part %d has %d bytes; every part but the last needs %d", lp.Number, p.Size, MinPartSize)
		}
		parts, numbers, total = append(parts, p), append(numbers, p.Number), total+p.Size
	}
	etag := completeETag(parts)
	ctx := req.r.Context()
	if err := s.Ingest.CheckSpaceOwn(ctx, req.owner, sess.Spec.Territory, total, types.EncryptionNone, sess.Bytes()); err != nil {
		return err
	}
	body, err := s.Sessions.PartsReader(sess.ID, req.owner, numbers)
	if err != nil {
		return err
	}
	defer body.Close()
	// From here the answer is 200 whatever happens: spaces keep the
	// connection alive while the parts are encoded, and an error is an
	// Error document in the body, as S3 sends it.
	req.w.Header().Set("Content-Type", "application/xml")
	req.w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(req.w, xml.Header)
	flush(req.w)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(keepAlive)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_, _ = io.WriteString(req.w, " ")
				flush(req.w)
			}
		}
	}()
	op := &pipeline.KeyOp{Owner: req.owner, Bucket: req.bucket, Key: req.key, ETag: etag, Headers: meta.Headers, Time: s.Now().UTC()}
	_, err = s.Ingest.Accept(ctx, body, ingest.File{Owner: req.owner, Name: sess.Spec.Name, Territory: sess.Spec.Territory, Size: total, Held: sess, KeyOp: op})
	close(done)
	<-stopped
	if err != nil {
		e := toS3(err)
		if e == nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			s.Log.Error("s3 complete failed", "upload", sess.ID, "err", err)
			e = s3err("InternalError", "internal error (request %s)", req.id)
		}
		_ = xml.NewEncoder(req.w).Encode(errorBody{Code: e.Code, Message: e.Msg, Resource: rawPath(req.r), RequestID: req.id})
		return nil
	}
	if err := s.Sessions.Remove(sess.ID, req.owner); err != nil {
		s.Log.Warn("remove a completed upload", "upload", sess.ID, "err", err)
	}
	_ = xml.NewEncoder(req.w).Encode(struct {
		XMLName xml.Name `xml:"CompleteMultipartUploadResult"`
		NS      string   `xml:"xmlns,attr"`
		Bucket  string   `xml:"Bucket"`
		Key     string   `xml:"Key"`
		ETag    string   `xml:"ETag"`
	}{NS: s3NS, Bucket: req.bucket, Key: req.key, ETag: `"` + etag + `"`})
	return nil
}

func flush(w http.ResponseWriter) { _ = http.NewResponseController(w).Flush() }

func (s *Server) abortUpload(req *request) error {
	sess, _, _, err := s.session(req)
	if err != nil {
		return err
	}
	if err := s.Sessions.Remove(sess.ID, req.owner); err != nil {
		return err
	}
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listParts(req *request) error {
	sess, parts, _, err := s.session(req)
	if err != nil {
		return err
	}
	marker := 0
	if v := req.query.Get("part-number-marker"); v != "" {
		if marker, err = strconv.Atoi(v); err != nil || marker < 0 {
			return s3err("InvalidArgument", "part-number-marker %q", v)
		}
	}
	max := 1000
	if v := req.query.Get("max-parts"); v != "" {
		if max, err = strconv.Atoi(v); err != nil || max < 0 {
			return s3err("InvalidArgument", "max-parts %q", v)
		}
		max = min(max, 1000)
	}
	type part struct {
		PartNumber   int    `xml:"PartNumber"`
		LastModified string `xml:"LastModified"`
		ETag         string `xml:"ETag"`
		Size         int64  `xml:"Size"`
	}
	out := struct {
		XMLName     xml.Name `xml:"ListPartsResult"`
		NS          string   `xml:"xmlns,attr"`
		Bucket      string   `xml:"Bucket"`
		Key         string   `xml:"Key"`
		UploadID    string   `xml:"UploadId"`
		Marker      int      `xml:"PartNumberMarker"`
		NextMarker  int      `xml:"NextPartNumberMarker"`
		MaxParts    int      `xml:"MaxParts"`
		IsTruncated bool     `xml:"IsTruncated"`
		Parts       []part   `xml:"Part"`
	}{NS: s3NS, Bucket: req.bucket, Key: req.key, UploadID: sess.ID, Marker: marker, MaxParts: max}
	for _, p := range parts {
		if p.Number <= marker {
			continue
		}
		if len(out.Parts) == max {
			out.IsTruncated = true
			break
		}
		out.Parts = append(out.Parts, part{PartNumber: p.Number, LastModified: p.Modified.Format("2006-01-02T15:04:05.000Z"), ETag: `"` + p.MD5 + `"`, Size: p.Size})
		out.NextMarker = p.Number
	}
	writeXML(req.w, http.StatusOK, out)
	return nil
}

func (s *Server) listUploads(req *request) error {
	if _, err := s.bucket(req); err != nil {
		return err
	}
	sessions, err := s.Sessions.PartsSessions(req.owner)
	if err != nil {
		return err
	}
	prefix := req.query.Get("prefix")
	type up struct {
		Key       string `xml:"Key"`
		UploadID  string `xml:"UploadId"`
		Initiated string `xml:"Initiated"`
	}
	out := struct {
		XMLName     xml.Name `xml:"ListMultipartUploadsResult"`
		NS          string   `xml:"xmlns,attr"`
		Bucket      string   `xml:"Bucket"`
		Prefix      string   `xml:"Prefix"`
		MaxUploads  int      `xml:"MaxUploads"`
		IsTruncated bool     `xml:"IsTruncated"`
		Uploads     []up     `xml:"Upload"`
	}{NS: s3NS, Bucket: req.bucket, Prefix: prefix, MaxUploads: 1000}
	for _, sess := range sessions {
		var m uploadMeta
		if json.Unmarshal(sess.Extra, &m) != nil || m.Bucket != req.bucket || !strings.HasPrefix(m.Key, prefix) {
			continue
		}
		if len(out.Uploads) == 1000 {
			out.IsTruncated = true
			break
		}
		out.Uploads = append(out.Uploads, up{Key: m.Key, UploadID: sess.ID, Initiated: sess.Created.UTC().Format("2006-01-02T15:04:05.000Z")})
	}
	writeXML(req.w, http.StatusOK, out)
	return nil
}
