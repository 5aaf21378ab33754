package s3

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/deoss/deoss/internal/ledger"
)

const s3NS = "http://s3.amazonaws.com/doc/2006-03-01/"

type owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

func (req *request) ownerXML() owner {
	return owner{ID: req.owner.String(), DisplayName: req.owner.String()}
}

func isoTime(unix int64) string { return time.Unix(unix, 0).UTC().Format("2006-01-02T15:04:05.000Z") }

func (s *Server) listBuckets(req *request) error {
	bs, err := s.Chain.Buckets(req.r.Context(), req.owner)
	if err != nil {
		return err
	}
	type bucket struct {
		Name         string `xml:"Name"`
		CreationDate string `xml:"CreationDate"`
	}
	out := struct {
		XMLName xml.Name `xml:"ListAllMyBucketsResult"`
		NS      string   `xml:"xmlns,attr"`
		Owner   owner    `xml:"Owner"`
		Buckets []bucket `xml:"Buckets>Bucket"`
	}{NS: s3NS, Owner: req.ownerXML(), Buckets: []bucket{}}
	for _, b := range bs {
		out.Buckets = append(out.Buckets, bucket{Name: b.Name, CreationDate: isoTime(b.Created)})
	}
	writeXML(req.w, http.StatusOK, out)
	return nil
}

// createBucket binds the bucket to the territory its location constraint
// names, or (none, or the region's name) to the credential's territory.
func (s *Server) createBucket(req *request) error {
	if err := ledger.ValidBucket(req.bucket); err != nil {
		return s3err("InvalidBucketName", "%v", err)
	}
	var conf struct {
		Location string `xml:"LocationConstraint"`
	}
	body, err := io.ReadAll(req.vr.Payload(io.LimitReader(req.r.Body, 64<<10), nil))
	if err != nil {
		return err
	}
	if len(body) > 0 {
		if err := xml.Unmarshal(body, &conf); err != nil {
			return s3err("MalformedXML", "CreateBucketConfiguration: %v", err)
		}
	}
	territory := req.cred.Territory
	if loc := conf.Location; loc != "" && loc != s.Region {
		if _, err := s.Chain.Territory(req.r.Context(), req.owner, loc); err != nil {
			if errors.Is(err, ledger.ErrNotFound) {
				return s3err("InvalidLocationConstraint", "%q is neither a territory of %s nor this gateway's region %q", loc, req.owner, s.Region)
			}
			return err
		}
		territory = loc
	}
	err = s.Chain.Submit(req.r.Context(), ledger.Msg{CreateBucket: &ledger.CreateBucket{Owner: req.owner, Name: req.bucket, Territory: territory}})
	switch {
	case errors.Is(err, ledger.ErrConflict):
		return s3err("BucketAlreadyOwnedByYou", "you own bucket %q already", req.bucket)
	case errors.Is(err, ledger.ErrNotFound):
		return s3err("InvalidLocationConstraint", "territory %q: %v", territory, err)
	case err != nil:
		return err
	}
	req.w.Header().Set("Location", "/"+req.bucket)
	req.w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) deleteBucket(req *request) error {
	if _, err := s.bucket(req); err != nil {
		return err
	}
	// Keys this gateway took that the chain has not yet are keys too.
	ops, err := s.Queue.LatestKeys(req.owner, req.bucket, "")
	if err != nil {
		return err
	}
	for _, op := range ops {
		if !op.Delete {
			return s3err("BucketNotEmpty", "bucket %q has keys (some not yet on chain)", req.bucket)
		}
	}
	if len(ops) > 0 {
		return s3err("BucketNotEmpty", "bucket %q has deletes not yet on chain; try again in a few seconds", req.bucket)
	}
	s.buckets.Delete(bucketRef{req.owner, req.bucket})
	err = s.Chain.Submit(req.r.Context(), ledger.Msg{DeleteBucket: &ledger.DeleteBucket{Owner: req.owner, Name: req.bucket}})
	switch {
	case errors.Is(err, ledger.ErrConflict):
		return s3err("BucketNotEmpty", "bucket %q is not empty", req.bucket)
	case errors.Is(err, ledger.ErrNotFound):
		return s3err("NoSuchBucket", "no bucket %q", req.bucket)
	case err != nil:
		return err
	}
	req.w.WriteHeader(http.StatusNoContent)
	return nil
}

// bucketLocation answers the region (buckets live in territories, which
// have no region; clients need the region they sign for).
func (s *Server) bucketLocation(req *request) error {
	if _, err := s.bucket(req); err != nil {
		return err
	}
	loc := s.Region
	if loc == DefaultRegion {
		loc = "" // as S3 answers for us-east-1
	}
	writeXML(req.w, http.StatusOK, struct {
		XMLName  xml.Name `xml:"LocationConstraint"`
		NS       string   `xml:"xmlns,attr"`
		Location string   `xml:",chardata"`
	}{NS: s3NS, Location: loc})
	return nil
}

func (s *Server) bucketVersioning(req *request) error {
	if _, err := s.bucket(req); err != nil {
		return err
	}
	writeXML(req.w, http.StatusOK, struct {
		XMLName xml.Name `xml:"VersioningConfiguration"`
		NS      string   `xml:"xmlns,attr"`
	}{NS: s3NS})
	return nil
}
