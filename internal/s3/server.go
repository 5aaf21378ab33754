package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/gateway/ingest"
	"github.com/deoss/deoss/internal/gateway/pack"
	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/gateway/read"
	"github.com/deoss/deoss/internal/gateway/upload"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/s3/sigv4"
	"github.com/deoss/deoss/internal/ttlcache"
	"github.com/deoss/deoss/internal/types"
)

// Chain is what the endpoint asks of the chain.
type Chain interface {
	Authorized(ctx context.Context, user types.Address) (bool, error)
	// Submit sends a message signed by the gateway and waits for its block.
	Submit(ctx context.Context, m ledger.Msg) error
	Bucket(ctx context.Context, owner types.Address, name string) (*ledger.Bucket, error)
	Buckets(ctx context.Context, owner types.Address) ([]ledger.Bucket, error)
	Object(ctx context.Context, owner types.Address, bucket, key string) (*ledger.Object, error)
	Objects(ctx context.Context, owner types.Address, bucket, prefix, delim, start string, max int) (*ledger.ObjectList, error)
	Territory(ctx context.Context, owner types.Address, name string) (*ledger.Territory, error)
	Owner(ctx context.Context, fid types.FID, a types.Address) (*ledger.Owner, error)
}

// Reader reads files (the gateway's read path).
type Reader interface {
	Resolve(ctx context.Context, fid types.FID) (*read.File, error)
	Read(ctx context.Context, w io.Writer, f *read.File, off, n int64, key *codec.Key) error
}

// Deps are the parts the endpoint works over.
type Deps struct {
	Chain  Chain
	Ingest *ingest.Ingest
	Reader Reader
	Queue  *pipeline.Queue
	// Sessions is the ingest session store multipart uploads live in.
	Sessions *upload.Sessions
	Keys     *Keys
	// Region is the region clients sign for ("us-east-1" when empty).
	Region string
	Log    *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Packing, when set, takes small objects into shared packs.
	Packing Packing
}

// Packing takes small objects into shared packs (pack.Packer).
type Packing interface {
	Takes(size int64) bool
	Put(o pack.Object, r io.Reader) (pack.Object, error)
}

// Server is the S3 endpoint. Build it with New; it starts nothing (the
// Publisher sends its journal to the chain).
type Server struct {
	Deps
	verifier *sigv4.Verifier
	// buckets keeps found buckets a few seconds: every request names one,
	// and a chain query each would double a small object's cost. This
	// gateway's own creates and deletes update it; another gateway's
	// delete is seen within bucketTTL.
	buckets *ttlcache.Cache[bucketRef, *ledger.Bucket]
}

type bucketRef struct {
	owner types.Address
	name  string
}

const bucketTTL = 5 * time.Second

// DefaultRegion is what clients sign for unless the gateway says else.
const DefaultRegion = "us-east-1"

// New assembles the endpoint.
func New(d Deps) *Server {
	if d.Region == "" {
		d.Region = DefaultRegion
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Server{Deps: d, verifier: &sigv4.Verifier{Region: d.Region, Secrets: d.Keys, Now: d.Now},
		buckets: ttlcache.New[bucketRef, *ledger.Bucket](bucketTTL, 100_000).WithClock(d.Now)}
}

// request is one authenticated S3 request, routed.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	vr     *sigv4.Verified
	owner  types.Address
	cred   *Credential
	bucket string
	key    string
	query  url.Values
	id     string
}

// rawPath is the request's path as sent (before any decoding or cleaning).
func rawPath(r *http.Request) string {
	p, _, _ := strings.Cut(r.RequestURI, "?")
	if p == "" || p[0] != '/' {
		// An absolute-form request-target (http://host/path).
		if u, err := url.Parse(r.RequestURI); err == nil {
			return u.EscapedPath()
		}
	}
	return p
}

// route splits the raw path into bucket and key: keys keep every slash,
// empty segment and escaped character they were sent with.
func route(r *http.Request) (bucket, key string, err error) {
	p := strings.TrimPrefix(rawPath(r), "/")
	rawBucket, rawKey, _ := strings.Cut(p, "/")
	if bucket, err = unescapePath(rawBucket); err != nil {
		return "", "", s3err("InvalidURI", "bucket: %v", err)
	}
	if key, err = unescapePath(rawKey); err != nil {
		return "", "", s3err("InvalidURI", "key: %v", err)
	}
	return bucket, key, nil
}

// unescapePath decodes %XX escapes only ('+' is a plus in a path).
func unescapePath(s string) (string, error) { return url.PathUnescape(s) }

// ServeHTTP answers S3 requests (path-style: /bucket/key).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength == 0 && strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		// An empty body is never read, so Go sends no 100 Continue; S3
		// does, and botocore, answered without one, keeps a stale status
		// on the connection and misreads its next response (a minute's
		// read timeout in aws s3 sync).
		w.WriteHeader(http.StatusContinue)
	}
	var rid [8]byte
	_, _ = rand.Read(rid[:])
	req := &request{w: w, r: r, id: strings.ToUpper(hex.EncodeToString(rid[:])), query: r.URL.Query()}
	w.Header().Set("x-amz-request-id", req.id)
	w.Header().Set("Server", "deoss")
	if err := s.serve(req); err != nil {
		s.fail(req, err)
	}
}

func (s *Server) fail(req *request, err error) {
	if errors.Is(err, context.Canceled) && req.r.Context().Err() != nil {
		return // the client went away
	}
	e := toS3(err)
	if e == nil {
		s.Log.Error("s3 request failed", "method", req.r.Method, "path", rawPath(req.r), "err", err)
		e = s3err("InternalError", "internal error (request %s)", req.id)
	}
	writeError(req.w, req.r, e, req.id)
}

func (s *Server) serve(req *request) error {
	r := req.r
	vr, err := s.verifier.Verify(r)
	if err != nil {
		return err
	}
	cred, err := s.Keys.Lookup(vr.AccessKey)
	if err != nil {
		return s3err("InvalidAccessKeyId", "access key %s: %v", vr.AccessKey, err)
	}
	ok, err := s.Chain.Authorized(r.Context(), cred.Owner)
	if err != nil {
		return err
	}
	if !ok {
		return s3err("AccessDenied", "%s has not authorized this gateway (deoss gateway authorize)", cred.Owner)
	}
	req.vr, req.cred, req.owner = vr, cred, cred.Owner
	if req.bucket, req.key, err = route(r); err != nil {
		return err
	}
	if req.bucket == "" {
		if r.Method == http.MethodGet {
			return s.listBuckets(req)
		}
		return s3err("MethodNotAllowed", "%s / is not an S3 operation", r.Method)
	}
	if req.key == "" {
		return s.bucketOp(req)
	}
	return s.objectOp(req)
}

// unsupported are the subresources answered NotImplemented, never a wrong
// success.
var unsupported = []string{"acl", "cors", "encryption", "intelligent-tiering", "inventory", "lifecycle", "logging", "metrics",
	"notification", "object-lock", "ownershipControls", "policyStatus", "publicAccessBlock", "replication", "requestPayment",
	"tagging", "website", "accelerate", "analytics", "legal-hold", "retention", "restore", "select", "torrent", "versions", "attributes"}

func (req *request) has(q string) bool {
	_, ok := req.query[q]
	return ok
}

func (req *request) unsupported() error {
	for _, q := range unsupported {
		if req.has(q) {
			return s3err("NotImplemented", "the %s subresource is not supported by deoss (docs/s3.md)", q)
		}
	}
	return nil
}

func (s *Server) bucketOp(req *request) error {
	if err := req.unsupported(); err != nil {
		return err
	}
	switch req.r.Method {
	case http.MethodPut:
		if req.has("versioning") || req.has("policy") {
			return s3err("NotImplemented", "bucket versioning and policies are not supported by deoss")
		}
		return s.createBucket(req)
	case http.MethodHead:
		_, err := s.bucket(req)
		return err
	case http.MethodDelete:
		if req.has("policy") {
			return s3err("NotImplemented", "bucket policies are not supported by deoss")
		}
		return s.deleteBucket(req)
	case http.MethodPost:
		if req.has("delete") {
			return s.deleteObjects(req)
		}
	case http.MethodGet:
		switch {
		case req.has("location"):
			return s.bucketLocation(req)
		case req.has("versioning"):
			return s.bucketVersioning(req)
		case req.has("policy"):
			if _, err := s.bucket(req); err != nil {
				return err
			}
			return s3err("NoSuchBucketPolicy", "the bucket has no policy")
		case req.has("uploads"):
			return s.listUploads(req)
		case req.query.Get("list-type") == "2":
			return s.listObjects(req, true)
		}
		return s.listObjects(req, false)
	}
	return s3err("MethodNotAllowed", "%s on a bucket is not an S3 operation deoss knows", req.r.Method)
}

func (s *Server) objectOp(req *request) error {
	if err := req.unsupported(); err != nil {
		return err
	}
	if err := ledger.ValidKey(req.key); err != nil {
		if len(req.key) > ledger.MaxKeyLen {
			return s3err("KeyTooLongError", "keys are at most %d bytes", ledger.MaxKeyLen)
		}
		return s3err("InvalidArgument", "key: %v", err)
	}
	switch m := req.r.Method; {
	case m == http.MethodPost && req.has("uploads"):
		return s.createUpload(req)
	case m == http.MethodPost && req.has("uploadId"):
		return s.completeUpload(req)
	case m == http.MethodPut && req.has("uploadId"):
		return s.uploadPart(req)
	case m == http.MethodGet && req.has("uploadId"):
		return s.listParts(req)
	case m == http.MethodDelete && req.has("uploadId"):
		return s.abortUpload(req)
	}
	switch req.r.Method {
	case http.MethodPut:
		if req.r.Header.Get("x-amz-copy-source") != "" {
			return s.copyObject(req)
		}
		return s.putObject(req)
	case http.MethodGet, http.MethodHead:
		return s.getObject(req)
	case http.MethodDelete:
		return s.deleteObject(req)
	}
	return s3err("MethodNotAllowed", "%s on an object is not an S3 operation deoss knows", req.r.Method)
}

// bucket finds the request's bucket of the account.
func (s *Server) bucket(req *request) (*ledger.Bucket, error) {
	if err := ledger.ValidBucket(req.bucket); err != nil {
		return nil, s3err("NoSuchBucket", "no bucket %q", req.bucket) // no name that cannot exist does
	}
	ref := bucketRef{req.owner, req.bucket}
	if b, ok := s.buckets.Get(ref); ok {
		return b, nil
	}
	b, err := s.Chain.Bucket(req.r.Context(), req.owner, req.bucket)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, s3err("NoSuchBucket", "no bucket %q", req.bucket)
	}
	if err != nil {
		return nil, err
	}
	s.buckets.Put(ref, b)
	return b, nil
}
