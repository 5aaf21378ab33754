package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/minio/minio-go/v7"
	mcreds "github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/devnet"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
	"github.com/deoss/deoss/sdk"
)

// s3Env is a network with an S3 credential of its user at each gateway.
type s3Env struct {
	n              *Network
	access, secret string
	clients        []*s3.Client // one per gateway
}

func startS3(t *testing.T, gateways int) *s3Env {
	t.Helper()
	return startS3With(t, Options{Nodes: 12, Gateways: gateways})
}

func startS3With(t testing.TB, o Options) *s3Env {
	t.Helper()
	n := Start(t, o)
	e := &s3Env{n: n}
	// A credential is issued by one gateway and kept there: each gateway
	// gets its own, all for the same account.
	for i, g := range n.Gateways {
		key, err := sdk.NewWithKey(g.URL, n.User).CreateS3Key(context.Background(), "home")
		if err != nil {
			t.Fatalf("gateway %d: create an S3 key: %v", i, err)
		}
		if i == 0 {
			e.access, e.secret = key.AccessKey, key.SecretKey
		}
		e.clients = append(e.clients, s3Client(g.S3URL, key.AccessKey, key.SecretKey))
	}
	return e
}

func s3Client(endpoint, access, secret string) *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(access, secret, "")})
}

func s3Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err == nil {
		return ""
	}
	return "other: " + err.Error()
}

// must(v, err)(t) is v, or t fails with err.
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func getBytes(t *testing.T, c *s3.Client, in *s3.GetObjectInput) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := c.GetObject(context.Background(), in)
	if err != nil {
		t.Fatalf("get %s: %v", aws.ToString(in.Key), err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b, out
}

func md5hex(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

func TestS3WithTheAWSSDK(t *testing.T) {
	e := startS3(t, 2)
	ctx := context.Background()
	c := e.clients[0]
	b := aws.String("photos")

	// Buckets.
	must(c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}))(t)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: b}); s3Code(err) != "BucketAlreadyOwnedByYou" {
		t.Fatalf("second create: %v", err)
	}
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("elsewhere"),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: "nowhere"}}); s3Code(err) != "InvalidLocationConstraint" {
		t.Fatalf("create in a territory that is not: %v", err)
	}
	must(c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: b}))(t)
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("nope-bucket")}); err == nil {
		t.Fatal("head of a missing bucket succeeded")
	}
	lb := must(c.ListBuckets(ctx, &s3.ListBucketsInput{}))(t)
	if len(lb.Buckets) != 1 || aws.ToString(lb.Buckets[0].Name) != "photos" {
		t.Fatalf("buckets: %+v", lb.Buckets)
	}
	if v := must(c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: b}))(t); v.Status != "" {
		t.Fatalf("versioning: %+v", v.Status)
	}
	if _, err := c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: b}); s3Code(err) != "NoSuchBucketPolicy" {
		t.Fatalf("policy: %v", err)
	}
	if _, err := c.GetBucketAcl(ctx, &s3.GetBucketAclInput{Bucket: b}); s3Code(err) != "NotImplemented" {
		t.Fatalf("acl: %v", err)
	}

	// Put and get, with metadata and the standard headers.
	body := bytes.Repeat([]byte("deoss s3 "), 200_000) // 1.8 MB
	put := must(c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("a/b c+d.txt"), Body: bytes.NewReader(body),
		ContentType: aws.String("text/plain"), CacheControl: aws.String("max-age=60"), Metadata: map[string]string{"color": "blue"}}))(t)
	if aws.ToString(put.ETag) != `"`+md5hex(body)+`"` {
		t.Fatalf("etag %s, want the body's MD5", aws.ToString(put.ETag))
	}
	got, out := getBytes(t, c, &s3.GetObjectInput{Bucket: b, Key: aws.String("a/b c+d.txt")})
	if !bytes.Equal(got, body) || aws.ToString(out.ContentType) != "text/plain" || out.Metadata["color"] != "blue" || aws.ToString(out.CacheControl) != "max-age=60" {
		t.Fatalf("get: %d bytes, type %q, meta %v", len(got), aws.ToString(out.ContentType), out.Metadata)
	}
	// Ranges, conditions, response overrides.
	got, out = getBytes(t, c, &s3.GetObjectInput{Bucket: b, Key: aws.String("a/b c+d.txt"), Range: aws.String("bytes=1000-1999")})
	if !bytes.Equal(got, body[1000:2000]) || aws.ToString(out.ContentRange) != fmt.Sprintf("bytes 1000-1999/%d", len(body)) {
		t.Fatalf("range: %d bytes, %s", len(got), aws.ToString(out.ContentRange))
	}
	got, _ = getBytes(t, c, &s3.GetObjectInput{Bucket: b, Key: aws.String("a/b c+d.txt"), Range: aws.String("bytes=-10")})
	if !bytes.Equal(got, body[len(body)-10:]) {
		t.Fatalf("suffix range: %q", got)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("a/b c+d.txt"), Range: aws.String("bytes=99999999-")}); s3Code(err) != "InvalidRange" {
		t.Fatalf("range past the end: %v", err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("a/b c+d.txt"), IfMatch: aws.String(`"0000"`)}); s3Code(err) != "PreconditionFailed" {
		t.Fatalf("if-match: %v", err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("a/b c+d.txt"), IfNoneMatch: put.ETag}); s3Code(err) != "NotModified" {
		t.Fatalf("if-none-match: %v", err)
	}
	_, out = getBytes(t, c, &s3.GetObjectInput{Bucket: b, Key: aws.String("a/b c+d.txt"), ResponseContentType: aws.String("application/x-test")})
	if aws.ToString(out.ContentType) != "application/x-test" {
		t.Fatalf("response-content-type: %q", aws.ToString(out.ContentType))
	}
	head := must(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("a/b c+d.txt")}))(t)
	if aws.ToInt64(head.ContentLength) != int64(len(body)) || aws.ToString(head.ETag) != aws.ToString(put.ETag) {
		t.Fatalf("head: %+v", head)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("missing")}); s3Code(err) != "NotFound" {
		t.Fatalf("head of a missing key: %v", err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("missing")}); s3Code(err) != "NoSuchKey" {
		t.Fatalf("get of a missing key: %v", err)
	}
	// Keys S3 allows: slashes, empty segments, a trailing slash, an empty object.
	for _, k := range []string{"x//y", "dir/", "sp ace/é/%41"} {
		must(c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String(k), Body: strings.NewReader(k)}))(t)
		if got, _ := getBytes(t, c, &s3.GetObjectInput{Bucket: b, Key: aws.String(k)}); string(got) != k {
			t.Fatalf("key %q read back %q", k, got)
		}
	}
	must(c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("empty"), Body: bytes.NewReader(nil)}))(t)
	if got, _ := getBytes(t, c, &s3.GetObjectInput{Bucket: b, Key: aws.String("empty")}); len(got) != 0 {
		t.Fatalf("empty object: %q", got)
	}

	// Checksums: a right one is kept, a wrong one stores nothing.
	must(c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("summed"), Body: bytes.NewReader(body), ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32}))(t)
	must(c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("summed-c"), Body: bytes.NewReader(body), ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32c}))(t)
	must(c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("summed-s"), Body: bytes.NewReader(body), ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256}))(t)
	wrongMD5 := md5.Sum([]byte("something else"))
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("bad-md5"), Body: bytes.NewReader(body),
		ContentMD5: aws.String(base64.StdEncoding.EncodeToString(wrongMD5[:]))}); s3Code(err) != "BadDigest" {
		t.Fatalf("wrong Content-MD5: %v", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("bad-md5")}); s3Code(err) != "NotFound" {
		t.Fatalf("a body that failed its digest was stored: %v", err)
	}

	// Copies are metadata: same ETag, COPY keeps the headers, REPLACE sets new ones.
	cp := must(c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copy"), CopySource: aws.String("photos/a/b%20c%2Bd.txt")}))(t)
	if aws.ToString(cp.CopyObjectResult.ETag) != aws.ToString(put.ETag) {
		t.Fatalf("copy etag: %s", aws.ToString(cp.CopyObjectResult.ETag))
	}
	if got, out := getBytes(t, c, &s3.GetObjectInput{Bucket: b, Key: aws.String("copy")}); !bytes.Equal(got, body) || out.Metadata["color"] != "blue" {
		t.Fatalf("copy: %d bytes, meta %v", len(got), out.Metadata)
	}
	must(c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copy"), CopySource: aws.String("photos/copy"),
		MetadataDirective: s3types.MetadataDirectiveReplace, ContentType: aws.String("image/png"), Metadata: map[string]string{"color": "red"}}))(t)
	if h := must(c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("copy")}))(t); aws.ToString(h.ContentType) != "image/png" || h.Metadata["color"] != "red" {
		t.Fatalf("replaced copy: %q %v", aws.ToString(h.ContentType), h.Metadata)
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String("copy"), CopySource: aws.String("photos/copy")}); s3Code(err) != "InvalidRequest" {
		t.Fatalf("copy onto itself unchanged: %v", err)
	}

	// Multipart: parts out of order, one re-sent with other bytes.
	p1a, p1, p2 := bytes.Repeat([]byte{1}, 5<<20), bytes.Repeat([]byte{7}, 5<<20), []byte("the last part")
	mp := must(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("multi"), ContentType: aws.String("application/x-multi")}))(t)
	up := func(n int32, data []byte) *s3.UploadPartOutput {
		return must(c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("multi"), UploadId: mp.UploadId, PartNumber: aws.Int32(n), Body: bytes.NewReader(data)}))(t)
	}
	u2 := up(2, p2)
	up(1, p1a)
	u1 := up(1, p1) // replaces the first part 1
	parts := must(c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("multi"), UploadId: mp.UploadId}))(t)
	if len(parts.Parts) != 2 || aws.ToString(parts.Parts[0].ETag) != `"`+md5hex(p1)+`"` {
		t.Fatalf("parts: %+v", parts.Parts)
	}
	ups := must(c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: b}))(t)
	if len(ups.Uploads) != 1 || aws.ToString(ups.Uploads[0].UploadId) != aws.ToString(mp.UploadId) {
		t.Fatalf("uploads: %+v", ups.Uploads)
	}
	complete := func(parts ...s3types.CompletedPart) error {
		_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("multi"), UploadId: mp.UploadId,
			MultipartUpload: &s3types.CompletedMultipartUpload{Parts: parts}})
		return err
	}
	if err := complete(s3types.CompletedPart{PartNumber: aws.Int32(1), ETag: u1.ETag}, s3types.CompletedPart{PartNumber: aws.Int32(3), ETag: u2.ETag}); s3Code(err) != "InvalidPart" {
		t.Fatalf("complete with a part never sent: %v", err)
	}
	if err := complete(s3types.CompletedPart{PartNumber: aws.Int32(2), ETag: u2.ETag}, s3types.CompletedPart{PartNumber: aws.Int32(1), ETag: u1.ETag}); s3Code(err) != "InvalidPartOrder" {
		t.Fatalf("complete out of order: %v", err)
	}
	if err := complete(s3types.CompletedPart{PartNumber: aws.Int32(1), ETag: aws.String(`"` + md5hex(p1a) + `"`)}, s3types.CompletedPart{PartNumber: aws.Int32(2), ETag: u2.ETag}); s3Code(err) != "InvalidPart" {
		t.Fatalf("complete naming the replaced part: %v", err)
	}
	if err := complete(s3types.CompletedPart{PartNumber: aws.Int32(1), ETag: u1.ETag}, s3types.CompletedPart{PartNumber: aws.Int32(2), ETag: u2.ETag}); err != nil {
		t.Fatalf("complete: %v", err)
	}
	whole := append(append([]byte(nil), p1...), p2...)
	got, out = getBytes(t, c, &s3.GetObjectInput{Bucket: b, Key: aws.String("multi")})
	sum := md5.New()
	sum.Write(md5Bytes(p1))
	sum.Write(md5Bytes(p2))
	if !bytes.Equal(got, whole) || aws.ToString(out.ETag) != `"`+hex.EncodeToString(sum.Sum(nil))+`-2"` || aws.ToString(out.ContentType) != "application/x-multi" {
		t.Fatalf("multipart object: %d bytes, etag %s, type %s", len(got), aws.ToString(out.ETag), aws.ToString(out.ContentType))
	}
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("multi"), UploadId: mp.UploadId, PartNumber: aws.Int32(3), Body: bytes.NewReader(p2)}); s3Code(err) != "NoSuchUpload" {
		t.Fatalf("a part after complete: %v", err)
	}
	// A part copied from an object (a range of it, then the rest).
	pcu := must(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("pcopy")}))(t)
	pc1 := must(c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: b, Key: aws.String("pcopy"), UploadId: pcu.UploadId, PartNumber: aws.Int32(1),
		CopySource: aws.String("photos/multi"), CopySourceRange: aws.String("bytes=0-5242879")}))(t)
	pc2 := must(c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: b, Key: aws.String("pcopy"), UploadId: pcu.UploadId, PartNumber: aws.Int32(2),
		CopySource: aws.String("photos/multi"), CopySourceRange: aws.String(fmt.Sprintf("bytes=5242880-%d", len(whole)-1))}))(t)
	must(c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("pcopy"), UploadId: pcu.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{
			{PartNumber: aws.Int32(1), ETag: pc1.CopyPartResult.ETag}, {PartNumber: aws.Int32(2), ETag: pc2.CopyPartResult.ETag}}}}))(t)
	if got, _ := getBytes(t, c, &s3.GetObjectInput{Bucket: b, Key: aws.String("pcopy")}); !bytes.Equal(got, whole) {
		t.Fatalf("part copies: %d bytes", len(got))
	}
	// Parts under 5 MiB but the last are refused; an aborted upload is gone.
	small := must(c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: b, Key: aws.String("small")}))(t)
	s1 := must(c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("small"), UploadId: small.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("tiny")}))(t)
	s2 := must(c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("small"), UploadId: small.UploadId, PartNumber: aws.Int32(2), Body: strings.NewReader("tiny")}))(t)
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: b, Key: aws.String("small"), UploadId: small.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{PartNumber: aws.Int32(1), ETag: s1.ETag}, {PartNumber: aws.Int32(2), ETag: s2.ETag}}}}); s3Code(err) != "EntityTooSmall" {
		t.Fatalf("small parts: %v", err)
	}
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: b, Key: aws.String("small"), UploadId: small.UploadId, PartNumber: aws.Int32(10_001), Body: strings.NewReader("x")}); s3Code(err) != "InvalidArgument" {
		t.Fatalf("part 10,001: %v", err)
	}
	must(c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: b, Key: aws.String("small"), UploadId: small.UploadId}))(t)
	if _, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: b, Key: aws.String("small"), UploadId: small.UploadId}); s3Code(err) != "NoSuchUpload" {
		t.Fatalf("parts of an aborted upload: %v", err)
	}

	// Presigned GET and PUT.
	pc := s3.NewPresignClient(c)
	pput := must(pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: b, Key: aws.String("presigned")}, s3.WithPresignExpires(time.Minute)))(t)
	req, _ := http.NewRequest(http.MethodPut, pput.URL, strings.NewReader("by a presigned URL"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("presigned put: %v %v", err, resp)
	}
	pget := must(pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: b, Key: aws.String("presigned")}, s3.WithPresignExpires(time.Minute)))(t)
	resp, err := http.Get(pget.URL)
	if err != nil {
		t.Fatal(err)
	}
	pb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(pb) != "by a presigned URL" {
		t.Fatalf("presigned get: %d %q", resp.StatusCode, pb)
	}
	if resp, _ := http.Get(strings.Replace(pget.URL, "presigned", "presigneX", 1)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a presigned URL for another key: %d", resp.StatusCode)
	}

	// Listings: a few thousand keys (copies: metadata only), delimiters,
	// pages, start-after, url encoding.
	var keys []string
	for i := range 2500 {
		keys = append(keys, fmt.Sprintf("many/%02d/%04d", i%25, i))
	}
	sort.Strings(keys)
	errs := make(chan error, len(keys))
	sem := make(chan struct{}, 32)
	for _, k := range keys {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: b, Key: aws.String(k), CopySource: aws.String("photos/empty")})
			errs <- err
		}()
	}
	for range keys {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	listAll := func(c *s3.Client, prefix, delim string, max int32) (objs, prefixes []string) {
		p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String(prefix), Delimiter: aws.String(delim), MaxKeys: aws.Int32(max)})
		for p.HasMorePages() {
			page := must(p.NextPage(ctx))(t)
			for _, o := range page.Contents {
				objs = append(objs, aws.ToString(o.Key))
			}
			for _, cp := range page.CommonPrefixes {
				prefixes = append(prefixes, aws.ToString(cp.Prefix))
			}
		}
		return objs, prefixes
	}
	objs, _ := listAll(c, "many/", "", 1000)
	if strings.Join(objs, ",") != strings.Join(keys, ",") {
		t.Fatalf("listed %d keys, want %d in order", len(objs), len(keys))
	}
	objs, prefixes := listAll(c, "many/", "/", 7)
	if len(objs) != 0 || len(prefixes) != 25 || prefixes[0] != "many/00/" || prefixes[24] != "many/24/" {
		t.Fatalf("delimited: %v %v", objs, prefixes)
	}
	objs, prefixes = listAll(c, "", "/", 1000)
	if strings.Join(prefixes, ",") != "a/,dir/,many/,sp ace/,x/" || !contains(objs, "empty") {
		t.Fatalf("top level: %v %v", objs, prefixes)
	}
	sa := must(c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: b, Prefix: aws.String("many/24/"), StartAfter: aws.String("many/24/2474"), EncodingType: s3types.EncodingTypeUrl}))(t)
	if len(sa.Contents) != 1 || aws.ToString(sa.Contents[0].Key) != "many/24/2499" {
		t.Fatalf("start-after: %+v", sa.Contents)
	}
	v1 := must(c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: b, Prefix: aws.String("sp ace/"), EncodingType: s3types.EncodingTypeUrl}))(t)
	// The Go SDK hands back the keys as sent, encoded.
	if len(v1.Contents) != 1 || aws.ToString(v1.Contents[0].Key) != "sp%20ace/%C3%A9/%2541" {
		t.Fatalf("v1 with url encoding: %d keys, the first %q", len(v1.Contents), aws.ToString(v1.Contents[0].Key))
	}

	// The other gateway sees the keys once the chain has them.
	c2 := e.clients[1]
	eventually(t, 60*time.Second, func() error {
		objs, _ := listAll(c2, "many/", "", 1000)
		if len(objs) != len(keys) {
			return fmt.Errorf("gateway 1 lists %d of %d keys", len(objs), len(keys))
		}
		return nil
	})
	if got, _ := getBytes(t, c2, &s3.GetObjectInput{Bucket: b, Key: aws.String("multi")}); !bytes.Equal(got, whole) {
		t.Fatal("gateway 1 read the multipart object wrong")
	}

	// Deletes: one (a missing one is 204 too), many; a bucket with keys stays.
	must(c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("copy")}))(t)
	must(c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: aws.String("never-was")}))(t)
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: b, Key: aws.String("copy")}); s3Code(err) != "NotFound" {
		t.Fatalf("deleted key still answers (read-after-delete at the writing gateway): %v", err)
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: b}); s3Code(err) != "BucketNotEmpty" {
		t.Fatalf("delete of a bucket with keys: %v", err)
	}
	all, _ := listAll(c, "", "", 1000)
	for i := 0; i < len(all); i += 1000 {
		var ids []s3types.ObjectIdentifier
		for _, k := range all[i:min(i+1000, len(all))] {
			ids = append(ids, s3types.ObjectIdentifier{Key: aws.String(k)})
		}
		d := must(c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: b, Delete: &s3types.Delete{Objects: ids}}))(t)
		if len(d.Deleted) != len(ids) || len(d.Errors) != 0 {
			t.Fatalf("delete objects: %d deleted, errors %+v", len(d.Deleted), d.Errors)
		}
	}
	if left, _ := listAll(c, "", "", 1000); len(left) != 0 {
		t.Fatalf("keys left: %v", left[:min(5, len(left))])
	}
	eventually(t, 60*time.Second, func() error {
		_, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: b})
		return err
	})
	// With its last key each file's ownership ended: the user owns no file.
	eventually(t, 60*time.Second, func() error {
		fs, err := e.n.Chain.UserFiles(ctx, e.n.User.Address())
		if err != nil || len(fs) != 0 {
			return fmt.Errorf("the user still owns %d files (%v)", len(fs), err)
		}
		return nil
	})
}

func md5Bytes(b []byte) []byte { s := md5.Sum(b); return s[:] }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestS3WithMinio: minio-go signs bodies in aws-chunked streams over HTTP.
func TestS3WithMinio(t *testing.T) {
	e := startS3(t, 1)
	ctx := context.Background()
	host := strings.TrimPrefix(e.n.Gateways[0].S3URL, "http://")
	mc, err := minio.New(host, &minio.Options{Creds: mcreds.NewStaticV4(e.access, e.secret, ""), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := mc.MakeBucket(ctx, "mbucket", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("minio "), 400_000) // 2.4 MB, many signed chunks
	info, err := mc.PutObject(ctx, "mbucket", "k/v", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{ContentType: "text/x-minio",
		UserMetadata: map[string]string{"who": "minio"}})
	if err != nil || info.ETag != md5hex(body) {
		t.Fatalf("put: %v %+v", err, info)
	}
	// A multipart upload (parts of 5 MiB, the smallest minio-go sends).
	big := bytes.Repeat([]byte("0123456789abcdef"), 12<<16) // 12 MiB
	if _, err := mc.PutObject(ctx, "mbucket", "big", bytes.NewReader(big), int64(len(big)), minio.PutObjectOptions{PartSize: 5 << 20}); err != nil {
		t.Fatalf("multipart put: %v", err)
	}
	for key, want := range map[string][]byte{"k/v": body, "big": big} {
		o, err := mc.GetObject(ctx, "mbucket", key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(o)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("get %s: %v, %d bytes", key, err, len(got))
		}
	}
	st, err := mc.StatObject(ctx, "mbucket", "k/v", minio.StatObjectOptions{})
	if err != nil || st.ContentType != "text/x-minio" || st.UserMetadata["Who"] != "minio" {
		t.Fatalf("stat: %v %+v", err, st)
	}
	var listed []string
	for o := range mc.ListObjects(ctx, "mbucket", minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		listed = append(listed, o.Key)
	}
	if strings.Join(listed, ",") != "big,k/v" {
		t.Fatalf("listed %v", listed)
	}
	if err := mc.RemoveObject(ctx, "mbucket", "k/v", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := mc.StatObject(ctx, "mbucket", "k/v", minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
		t.Fatalf("removed key: %v", err)
	}
}

// TestS3Hostile: what an S3 endpoint must refuse.
func TestS3Hostile(t *testing.T) {
	e := startS3(t, 1)
	ctx := context.Background()
	c := e.clients[0]
	s3url := e.n.Gateways[0].S3URL
	must(c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("mine")}))(t)
	must(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("mine"), Key: aws.String("secret"), Body: strings.NewReader("mine only")}))(t)

	xmlCode := func(resp *http.Response) string {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		s := string(b)
		i, j := strings.Index(s, "<Code>"), strings.Index(s, "</Code>")
		if i < 0 || j < i {
			return fmt.Sprintf("status %d, no code", resp.StatusCode)
		}
		return s[i+6 : j]
	}
	// Unsigned.
	resp, err := http.Get(s3url + "/mine/secret")
	if err != nil {
		t.Fatal(err)
	}
	if code := xmlCode(resp); resp.StatusCode != 403 || code != "AccessDenied" {
		t.Fatalf("unsigned: %d %s", resp.StatusCode, code)
	}
	// Wrongly signed: another secret, an unknown key.
	if _, err := s3Client(s3url, e.access, "not-the-secret").GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("mine"), Key: aws.String("secret")}); s3Code(err) != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := s3Client(s3url, "DOUNKNOWNKEY0000000", "x").ListBuckets(ctx, &s3.ListBucketsInput{}); s3Code(err) != "InvalidAccessKeyId" {
		t.Fatalf("unknown key: %v", err)
	}
	// Another account sees none of this account's buckets.
	other := devAccount(t, e.n, "s3-other")
	okey, err := sdk.NewWithKey(e.n.Gateways[0].URL, other).CreateS3Key(ctx, "home")
	if err != nil {
		t.Fatal(err)
	}
	oc := s3Client(s3url, okey.AccessKey, okey.SecretKey)
	if _, err := oc.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("mine"), Key: aws.String("secret")}); s3Code(err) != "NoSuchBucket" {
		t.Fatalf("other account's bucket: %v", err)
	}
	if _, err := oc.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String("mine"), Key: aws.String("stolen"), CopySource: aws.String("mine/secret")}); s3Code(err) != "NoSuchBucket" {
		t.Fatalf("copy out of another account's bucket: %v", err)
	}
	if lb := must(oc.ListBuckets(ctx, &s3.ListBucketsInput{}))(t); len(lb.Buckets) != 0 {
		t.Fatalf("other account lists %v", lb.Buckets)
	}
	// Path tricks: the key is what was sent, never a path resolved.
	for _, k := range []string{"../secret", "./secret", "a/../secret"} {
		if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("mine"), Key: aws.String(k)}); s3Code(err) != "NoSuchKey" {
			t.Fatalf("key %q: %v", k, err)
		}
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("mine"), Key: aws.String(strings.Repeat("k", ledger.MaxKeyLen+1)), Body: strings.NewReader("x")}); s3Code(err) != "KeyTooLongError" {
		t.Fatalf("long key: %v", err)
	}
	// Oversized headers and metadata.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("mine"), Key: aws.String("meta"), Body: strings.NewReader("x"),
		Metadata: map[string]string{"big": strings.Repeat("m", 3000)}}); s3Code(err) != "MetadataTooLarge" {
		t.Fatalf("large metadata: %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, s3url+"/mine/secret", nil)
	req.Header.Set("X-Junk", strings.Repeat("j", 100<<10))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("100 KiB of headers: %v %v", err, resp)
	}
	// A body larger than the territory: refused before it is sent (the
	// client waits for 100 Continue, which never comes).
	body := &countingZeros{left: 5 << 30}
	req, _ = http.NewRequest(http.MethodPut, s3url+"/mine/huge", body)
	req.ContentLength = 5 << 30
	req.Header.Set("Expect", "100-continue")
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: e.access, SecretAccessKey: e.secret}, req, "UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: 30 * time.Second}}
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if code := xmlCode(resp); code != "QuotaExceeded" || body.sent > 1<<20 {
		t.Fatalf("past the territory: %s after %d bytes sent", code, body.sent)
	}
	// Unsupported operations say so.
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: aws.String("mine"), Key: aws.String("secret"), Tagging: &s3types.Tagging{TagSet: []s3types.Tag{}}}); s3Code(err) != "NotImplemented" {
		t.Fatalf("tagging: %v", err)
	}
	// A revoked key stops at once.
	if err := sdk.NewWithKey(e.n.Gateways[0].URL, other).RevokeS3Key(ctx, okey.AccessKey); err != nil {
		t.Fatal(err)
	}
	if _, err := oc.ListBuckets(ctx, &s3.ListBucketsInput{}); s3Code(err) != "InvalidAccessKeyId" {
		t.Fatalf("revoked key: %v", err)
	}
	// The original reads what it wrote.
	if got, _ := getBytes(t, c, &s3.GetObjectInput{Bucket: aws.String("mine"), Key: aws.String("secret")}); string(got) != "mine only" {
		t.Fatalf("secret: %q", got)
	}
}

// countingZeros is left zero bytes, counting what was read.
type countingZeros struct{ left, sent int64 }

func (z *countingZeros) Read(p []byte) (int, error) {
	if z.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), z.left))
	clear(p[:n])
	z.left -= int64(n)
	z.sent += int64(n)
	return n, nil
}

// eventually waits for cond to return nil, failing with its last error.
func eventually(t *testing.T, within time.Duration, cond func() error) {
	t.Helper()
	eventuallyTB(t, within, cond)
}

// devAccount is another funded user with a territory "home" who authorized
// every gateway of the network.
func devAccount(t *testing.T, n *Network, name string) *auth.Key {
	t.Helper()
	k := chain.DevAccount(name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var gws []types.Address
	for _, g := range n.Gateways {
		gws = append(gws, g.Address)
	}
	if err := devnet.SetupUser(ctx, n.Chain, k, "home", 1, 1, gws...); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestS3OverTLS: over https the AWS SDK sends bodies aws-chunked with an
// unsigned trailing checksum; the endpoint checks it, and one altered in
// flight stores nothing.
func TestS3OverTLS(t *testing.T) {
	n := Start(t, Options{Nodes: 12, TLS: true})
	ctx := context.Background()
	sc := sdk.NewWithKey(n.Gateways[0].URL, n.User)
	if err := sc.UseCA(n.CA); err != nil {
		t.Fatal(err)
	}
	key, err := sc.CreateS3Key(ctx, "home")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(n.Gateways[0].S3URL, "https://") {
		t.Fatalf("S3 endpoint %s is not https", n.Gateways[0].S3URL)
	}
	var seen []string
	hc := &recordingClient{c: n.HTTP, seen: &seen}
	c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(n.Gateways[0].S3URL), UsePathStyle: true, HTTPClient: hc,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported, Credentials: credentials.NewStaticCredentialsProvider(key.AccessKey, key.SecretKey, "")})
	must(c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("tls")}))(t)
	body := bytes.Repeat([]byte("over tls "), 300_000)
	// A body the SDK cannot seek: it streams it with a trailing checksum.
	stream := func() io.Reader { return struct{ io.Reader }{bytes.NewReader(body)} }
	must(c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tls"), Key: aws.String("k"), Body: stream(), ContentLength: aws.Int64(int64(len(body))),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32c}))(t)
	if !contains(seen, "STREAMING-UNSIGNED-PAYLOAD-TRAILER") {
		t.Fatalf("the SDK sent payload modes %v, not a trailer (the test would prove nothing)", seen)
	}
	if got, _ := getBytes(t, c, &s3.GetObjectInput{Bucket: aws.String("tls"), Key: aws.String("k")}); !bytes.Equal(got, body) {
		t.Fatal("read back different bytes")
	}
	// A trailer that does not match the body: nothing is stored.
	hc.corrupt = true
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("tls"), Key: aws.String("bad"), Body: stream(), ContentLength: aws.Int64(int64(len(body))),
		ChecksumAlgorithm: s3types.ChecksumAlgorithmCrc32c},
		func(o *s3.Options) { o.RetryMaxAttempts = 1 }); s3Code(err) != "BadDigest" {
		t.Fatalf("altered trailer: %v", err)
	}
	hc.corrupt = false
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("tls"), Key: aws.String("bad")}); s3Code(err) != "NotFound" {
		t.Fatalf("a body whose trailer failed was stored: %v", err)
	}
}

// recordingClient notes each request's payload mode and, when corrupt is
// set, flips a byte of the body after it was checksummed.
type recordingClient struct {
	c       *http.Client
	seen    *[]string
	corrupt bool
}

func (r *recordingClient) Do(req *http.Request) (*http.Response, error) {
	*r.seen = append(*r.seen, req.Header.Get("X-Amz-Content-Sha256"))
	if r.corrupt && req.Body != nil && req.Method == http.MethodPut {
		req.Body = &flipOne{r: req.Body, at: 1000}
	}
	return r.c.Do(req)
}

type flipOne struct {
	r  io.ReadCloser
	at int
	n  int
}

func (f *flipOne) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if f.at >= f.n && f.at < f.n+n {
		p[f.at-f.n] ^= 1
	}
	f.n += n
	return n, err
}

func (f *flipOne) Close() error { return f.r.Close() }
