package api

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/deoss/deoss/internal/httpapi"
	"github.com/deoss/deoss/internal/s3"
	"github.com/deoss/deoss/internal/types"
)

// S3Keys issues the S3 credentials of accounts (s3.Keys).
type S3Keys interface {
	Create(owner types.Address, territory string) (*s3.Credential, error)
	List(owner types.Address) ([]s3.Credential, error)
	Revoke(owner types.Address, access string) error
}

func (a *API) s3Routes(mux *http.ServeMux) {
	mux.HandleFunc("POST /s3/keys", a.signed(a.createS3Key))
	mux.HandleFunc("GET /s3/keys", a.signed(a.listS3Keys))
	mux.HandleFunc("DELETE /s3/keys/{id}", a.signed(a.revokeS3Key))
}

// S3KeyRequest is the body of POST /s3/keys.
type S3KeyRequest struct {
	// Territory is where buckets go whose CreateBucket names none.
	Territory string `json:"territory"`
}

func (a *API) createS3Key(w http.ResponseWriter, r *http.Request, user types.Address) error {
	var req S3KeyRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxSmallBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return httpapi.Errorf(http.StatusBadRequest, "bad_json", "body: %v", err)
	}
	// The territory must be the user's and live (an empty check of space).
	if err := a.Ingest.CheckSpace(r.Context(), user, req.Territory, 0, types.EncryptionNone); err != nil {
		return err
	}
	c, err := a.S3Keys.Create(user, req.Territory)
	if err != nil {
		return err // errors.go: too_many_keys
	}
	w.Header().Set("Cache-Control", "no-store") // it holds a secret
	httpapi.WriteJSON(w, http.StatusCreated, c)
	return nil
}

func (a *API) listS3Keys(w http.ResponseWriter, r *http.Request, user types.Address) error {
	cs, err := a.S3Keys.List(user)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, cs)
	return nil
}

func (a *API) revokeS3Key(w http.ResponseWriter, r *http.Request, user types.Address) error {
	if err := a.S3Keys.Revoke(user, r.PathValue("id")); err != nil {
		return err // errors.go: no_key
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
