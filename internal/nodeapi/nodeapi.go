// Package nodeapi is the storage node's HTTP contract that its server and
// its clients (the gateway) share: the error codes a node answers with, and
// the reading of an error answer. Clients decide on codes, never on message
// text.
package nodeapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Code is a node's machine-readable error code (the "code" of its JSON
// error body; docs/api.yaml).
type Code = string

// The codes a node answers with.
const (
	// The request or the requester.
	Unauthenticated Code = "unauthenticated" // 401: signature missing, bad, expired or replayed
	Busy            Code = "busy"            // 503: the replay cache is full
	NotAGateway     Code = "not_a_gateway"   // 403: the signer is no registered gateway
	BadFID          Code = "bad_fid"         // 400
	BadPosition     Code = "bad_position"    // 400: column or segment malformed
	BadHash         Code = "bad_hash"        // 400
	BadSize         Code = "bad_size"        // 400: the body is not exactly a fragment
	TooLarge        Code = "too_large"       // 413
	Body            Code = "body"            // 400: the body could not be read to its end
	RateLimited     Code = "rate_limited"    // 429
	// The file's state on chain, as the node sees it.
	NoOrder     Code = "no_order"     // 404: no storage order (unknown, deleted or expired)
	NotAssigned Code = "not_assigned" // 403: the column is not this node's
	NoSegment   Code = "no_segment"   // 404: the file has fewer segments
	NotPending  Code = "not_pending"  // 409: the file takes no fragments (stored, say)
	// The fragment and the node's store.
	HashMismatch Code = "hash_mismatch" // 400: the body does not hash to the order's fragment hash; nothing stored
	Full         Code = "full"          // 507
	Conflict     Code = "conflict"      // 409: the store refused the write
	NotFound     Code = "not_found"     // 404: no such fragment here (reads)
	NoOutboard   Code = "no_outboard"   // 404: the fragment is v1: no slices, read it whole
	BadRange     Code = "bad_range"     // 400: a slice or chunk outside the fragment, or malformed
	Internal     Code = "internal"      // 500
)

// Error is a node's error answer.
type Error struct {
	Status int
	Code   Code
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("node answered %d %s: %s", e.Status, e.Code, e.Msg)
}

// Media types of verified answers: a Bao slice of a range, and a whole
// fragment's outboard followed by the fragment.
const (
	SliceType    = "application/vnd.deoss.bao-slice"
	OutboardType = "application/vnd.deoss.bao-outboard+data"
)

// ReadError reads the error answer of resp (whose status is not a success).
func ReadError(resp *http.Response) *Error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var body struct {
		Code  string `json:"code"`
		Error string `json:"error"`
	}
	if json.Unmarshal(msg, &body) != nil {
		body.Error = string(bytes.TrimSpace(msg))
	}
	return &Error{Status: resp.StatusCode, Code: body.Code, Msg: body.Error}
}
