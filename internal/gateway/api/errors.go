package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/gateway/ingest"
	"github.com/deoss/deoss/internal/gateway/read"
	"github.com/deoss/deoss/internal/gateway/upload"
	"github.com/deoss/deoss/internal/httpapi"
	"github.com/deoss/deoss/internal/s3"
)

// errorTable is where the domain errors of the gateway's parts become HTTP
// statuses and JSON codes (docs/api.yaml), once, at the edge. The first
// entry the error matches (errors.Is) wins; the answer's text is the
// error's own.
var errorTable = []struct {
	err    error
	status int
	code   string
}{
	{chain.ErrUnavailable, http.StatusServiceUnavailable, "chain_unavailable"},
	// signatures (the checks before a request runs answer 401 themselves)
	{auth.ErrBodyMismatch, http.StatusBadRequest, "body_mismatch"},
	{auth.ErrReplayed, http.StatusUnauthorized, "unauthenticated"},
	{auth.ErrTooMany, http.StatusTooManyRequests, "too_many_requests"},
	{auth.ErrReplayFull, http.StatusServiceUnavailable, "busy"},
	// ingest
	{ingest.ErrNoTerritory, http.StatusForbidden, "no_territory"},
	{ingest.ErrTerritoryExpired, http.StatusForbidden, "territory_expired"},
	{ingest.ErrInsufficientSpace, http.StatusForbidden, "insufficient_space"},
	{ingest.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
	{ingest.ErrPastSpace, http.StatusRequestEntityTooLarge, "past_space"},
	{ingest.ErrPendingCap, http.StatusInsufficientStorage, "pending_cap"},
	{ingest.ErrSizeMismatch, http.StatusBadRequest, "size_mismatch"},
	// upload sessions
	{upload.ErrIncomplete, http.StatusConflict, "incomplete"},
	{upload.ErrNotFound, http.StatusNotFound, "no_session"},
	{upload.ErrForbidden, http.StatusForbidden, "not_yours"},
	{upload.ErrBadSpec, http.StatusBadRequest, "bad_size"},
	{upload.ErrIndex, http.StatusBadRequest, "bad_index"},
	{upload.ErrChecksum, http.StatusBadRequest, "checksum_mismatch"},
	{upload.ErrChunkSize, http.StatusBadRequest, "bad_chunk_size"},
	{upload.ErrConflict, http.StatusConflict, "chunk_conflict"},
	{upload.ErrNoChunkKey, http.StatusInternalServerError, "no_chunk_key"},
	// reads
	{read.ErrNoFile, http.StatusNotFound, "no_file"},
	// S3 credentials
	{s3.ErrNoCredential, http.StatusNotFound, "no_key"},
	{s3.ErrTooManyKeys, http.StatusConflict, "too_many_keys"},
}

// retryAfter is what a client shed for load is told to wait.
const retryAfter = 5 * time.Second

// toHTTP maps err to its answer; nil when it is no known error (a 500).
func toHTTP(err error) *httpapi.Error {
	var e *httpapi.Error
	if errors.As(err, &e) {
		return e
	}
	var ie *upload.IncompleteError
	if errors.As(err, &ie) {
		return httpapi.Errorf(http.StatusConflict, "incomplete", "%d chunks missing: %v", upload.Count(ie.Missing), ie.Missing[:min(len(ie.Missing), 20)])
	}
	for _, t := range errorTable {
		if errors.Is(err, t.err) {
			msg := err.Error()
			switch t.err {
			case chain.ErrUnavailable:
				msg = "the chain does not answer; try again"
			case upload.ErrChecksum, upload.ErrChunkSize:
				msg += "; nothing stored"
			}
			e := &httpapi.Error{Status: t.status, Code: t.code, Msg: fmt.Sprint(msg)}
			if t.status == http.StatusTooManyRequests || t.status == http.StatusServiceUnavailable {
				e.RetryAfter = retryAfter
			}
			return e
		}
	}
	return nil
}
