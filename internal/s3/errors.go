package s3

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"

	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/gateway/ingest"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/s3/sigv4"
)

// Error is an S3 error answer.
type Error struct {
	Status int
	Code   string
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (%d): %s", e.Code, e.Status, e.Msg) }

func errorf(status int, code, format string, a ...any) *Error {
	return &Error{Status: status, Code: code, Msg: fmt.Sprintf(format, a...)}
}

// The S3 codes answered, with their statuses.
var statusOf = map[string]int{
	"AccessDenied":                 http.StatusForbidden,
	"AuthorizationHeaderMalformed": http.StatusBadRequest,
	"BadDigest":                    http.StatusBadRequest,
	"BucketAlreadyOwnedByYou":      http.StatusConflict,
	"BucketNotEmpty":               http.StatusConflict,
	"EntityTooLarge":               http.StatusBadRequest,
	"EntityTooSmall":               http.StatusBadRequest,
	"IncompleteBody":               http.StatusBadRequest,
	"InternalError":                http.StatusInternalServerError,
	"InvalidAccessKeyId":           http.StatusForbidden,
	"InvalidArgument":              http.StatusBadRequest,
	"InvalidBucketName":            http.StatusBadRequest,
	"InvalidDigest":                http.StatusBadRequest,
	"InvalidLocationConstraint":    http.StatusBadRequest,
	"InvalidPart":                  http.StatusBadRequest,
	"InvalidPartOrder":             http.StatusBadRequest,
	"InvalidRange":                 http.StatusRequestedRangeNotSatisfiable,
	"InvalidPartNumber":            http.StatusRequestedRangeNotSatisfiable,
	"InvalidURI":                   http.StatusBadRequest,
	"TooManyBuckets":               http.StatusBadRequest,
	"InvalidRequest":               http.StatusBadRequest,
	"KeyTooLongError":              http.StatusBadRequest,
	"MalformedXML":                 http.StatusBadRequest,
	"MetadataTooLarge":             http.StatusBadRequest,
	"MethodNotAllowed":             http.StatusMethodNotAllowed,
	"MissingContentLength":         http.StatusLengthRequired,
	"MissingSecurityHeader":        http.StatusBadRequest,
	"NoSuchBucket":                 http.StatusNotFound,
	"NoSuchBucketPolicy":           http.StatusNotFound,
	"NoSuchKey":                    http.StatusNotFound,
	"NoSuchUpload":                 http.StatusNotFound,
	"NotImplemented":               http.StatusNotImplemented,
	"PreconditionFailed":           http.StatusPreconditionFailed,
	"QuotaExceeded":                http.StatusForbidden,
	"RequestTimeTooSkewed":         http.StatusForbidden,
	"ServiceUnavailable":           http.StatusServiceUnavailable,
	"SignatureDoesNotMatch":        http.StatusForbidden,
	"SlowDown":                     http.StatusServiceUnavailable,
	"XAmzContentSHA256Mismatch":    http.StatusBadRequest,
}

func s3err(code, format string, a ...any) *Error {
	st, ok := statusOf[code]
	if !ok {
		st = http.StatusBadRequest
	}
	return errorf(st, code, format, a...)
}

// toS3 maps an error to its S3 answer; nil for one that maps to nothing
// (an internal error, logged).
func toS3(err error) *Error {
	var e *Error
	var se *sigv4.Error
	var le *ledger.Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &se):
		return s3err(se.Code, "%s", se.Msg)
	case errors.Is(err, ingest.ErrInsufficientSpace):
		return s3err("QuotaExceeded", "%v", err)
	case errors.Is(err, ingest.ErrNoTerritory), errors.Is(err, ingest.ErrTerritoryExpired):
		return s3err("QuotaExceeded", "%v", err)
	case errors.Is(err, ingest.ErrPastSpace):
		return s3err("QuotaExceeded", "%v", err)
	case errors.Is(err, ingest.ErrPendingCap):
		return s3err("SlowDown", "%v", err)
	case errors.Is(err, chain.ErrUnavailable):
		return s3err("ServiceUnavailable", "%v", err)
	case errors.Is(err, ingest.ErrTooLarge):
		return s3err("EntityTooLarge", "%v", err)
	case errors.Is(err, ingest.ErrSizeMismatch):
		return s3err("IncompleteBody", "%v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return s3err("SlowDown", "the chain did not answer in time; try again")
	case errors.As(err, &le):
		switch le.Code {
		case ledger.CodeUnauthorized:
			return s3err("AccessDenied", "%s", le.Msg)
		case ledger.CodeInvalid:
			return s3err("InvalidArgument", "%s", le.Msg)
		case ledger.CodeInsufficientSpace, ledger.CodeExpired:
			return s3err("QuotaExceeded", "%s", le.Msg)
		case ledger.CodeTooMany:
			return s3err("TooManyBuckets", "%s", le.Msg)
		}
	}
	return nil
}

type errorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource,omitempty"`
	RequestID string   `xml:"RequestId"`
}

func writeError(w http.ResponseWriter, r *http.Request, e *Error, reqID string) {
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Del("ETag")
	h.Del("Content-Length")
	h.Del("Last-Modified")
	if r.Method == http.MethodHead {
		w.WriteHeader(e.Status) // a HEAD answer has no body
		return
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(errorBody{Code: e.Code, Message: e.Msg, Resource: rawPath(r), RequestID: reqID})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(v)
}
