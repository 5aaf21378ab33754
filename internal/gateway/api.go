package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/gateway/upload"
	"github.com/deoss/deoss/internal/gateway/work"
	"github.com/deoss/deoss/internal/httpapi"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
	"github.com/deoss/deoss/internal/version"
)

// Chain is what the gateway's API asks the chain.
type Chain interface {
	// Authorized reports whether user authorized this gateway.
	Authorized(ctx context.Context, user types.Address) (bool, error)
	// Territory returns a territory, or an error matching ledger.ErrNotFound.
	Territory(ctx context.Context, owner types.Address, name string) (*ledger.Territory, error)
}

// API is the gateway's HTTP API for users (docs/api.yaml). Build it with
// NewAPI; it starts nothing.
type API struct {
	chain    Chain
	sessions *upload.Sessions
	work     *work.Area
	queue    *pipeline.Queue
	verifier *auth.Verifier
	log      *slog.Logger
	now      func() time.Time
	// Metrics, when set, is served at GET /metrics and counts accepted bytes.
	Metrics *metrics
}

// NewAPI assembles the API over its stores.
func NewAPI(ch Chain, s *upload.Sessions, w *work.Area, q *pipeline.Queue, log *slog.Logger) *API {
	return &API{chain: ch, sessions: s, work: w, queue: q, log: log, now: time.Now,
		verifier: auth.NewVerifier(5*time.Minute, 30*time.Second, 1<<20)}
}

// ChunkHeader carries a chunk's SHA-256 (64 lowercase hex characters).
const ChunkHeader = "Chunk-Sha256"

// Handler returns the routes.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, version.Get())
	})
	mux.HandleFunc("POST /upload", a.signed(a.createSession))
	mux.HandleFunc("GET /upload/{id}", a.signed(a.sessionState))
	mux.HandleFunc("PUT /upload/{id}/{index}", a.signed(a.putChunk))
	mux.HandleFunc("POST /upload/{id}/complete", a.signed(a.complete))
	mux.HandleFunc("DELETE /upload/{id}", a.signed(a.abort))
	mux.HandleFunc("PUT /object/{name}", a.signed(a.putObject))
	if a.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(a.Metrics.reg, promhttp.HandlerOpts{}))
	}
	return mux
}

// handler is a route that runs for a verified, authorizing account.
type handler func(w http.ResponseWriter, r *http.Request, user types.Address) error

// signed checks the request's signature and that the account authorized this
// gateway, then runs h; an error from h becomes the JSON error response.
func (a *API) signed(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := a.authorize(w, r, h)
		if err == nil {
			return
		}
		var e *httpapi.Error
		if !errors.As(err, &e) {
			a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			e = httpapi.Errorf(http.StatusInternalServerError, "internal", "internal error")
		}
		httpapi.WriteError(w, e)
	}
}

func (a *API) authorize(w http.ResponseWriter, r *http.Request, h handler) error {
	user, err := a.verifier.Verify(r)
	if errors.Is(err, auth.ErrReplayFull) {
		return httpapi.Errorf(http.StatusServiceUnavailable, "busy", "%v", err)
	}
	if err != nil {
		return httpapi.Errorf(http.StatusUnauthorized, "unauthenticated", "%v", err)
	}
	ok, err := a.chain.Authorized(r.Context(), user)
	if err != nil {
		return err
	}
	if !ok {
		return httpapi.Errorf(http.StatusForbidden, "not_authorized", "%s has not authorized this gateway (deoss gateway authorize)", user)
	}
	return h(w, r, user)
}

// checkSpace refuses a file that the territory cannot take now.
func (a *API) checkSpace(ctx context.Context, user types.Address, territory string, size int64) error {
	t, err := a.chain.Territory(ctx, user, territory)
	if errors.Is(err, ledger.ErrNotFound) {
		return httpapi.Errorf(http.StatusForbidden, "no_territory", "%s has no territory %q", user, territory)
	}
	if err != nil {
		return err
	}
	if !t.Active(a.now().Unix()) {
		return httpapi.Errorf(http.StatusForbidden, "territory_expired", "territory %q expired; renew it", territory)
	}
	need := types.ProfileV1.Segments(uint64(size), types.EncryptionNone) * types.SegmentSize
	if t.Free() < need {
		return httpapi.Errorf(http.StatusForbidden, "insufficient_space", "territory %q has %d bytes free; the file takes %d", territory, t.Free(), need)
	}
	return nil
}

// CreateRequest is the body of POST /upload.
type CreateRequest struct {
	Name      string `json:"name"`
	Territory string `json:"territory"`
	Size      int64  `json:"size"`
	ChunkSize int64  `json:"chunk_size,omitempty"`
}

func (a *API) createSession(w http.ResponseWriter, r *http.Request, user types.Address) error {
	var req CreateRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return httpapi.Errorf(http.StatusBadRequest, "bad_json", "body: %v", err)
	}
	if err := ledger.ValidName(req.Name); err != nil {
		return httpapi.Errorf(http.StatusBadRequest, "bad_name", "%v", err)
	}
	if err := a.checkSpace(r.Context(), user, req.Territory, req.Size); err != nil {
		return err
	}
	sess, err := a.sessions.Create(upload.Spec{Owner: user, Name: req.Name, Territory: req.Territory, Size: req.Size, ChunkSize: req.ChunkSize})
	if errors.Is(err, upload.ErrBadSpec) {
		return httpapi.Errorf(http.StatusBadRequest, "bad_size", "%v", err)
	}
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, map[string]any{
		"id": sess.ID, "chunk_size": sess.Spec.ChunkSize, "chunks": sess.Spec.Chunks(), "expires": sess.Expires,
	})
	return nil
}

// sessionError maps the session store's errors.
func sessionError(err error) error {
	var ie *upload.IncompleteError
	switch {
	case errors.As(err, &ie):
		return httpapi.Errorf(http.StatusConflict, "incomplete", "%d chunks missing, first %v", len(ie.Missing), ie.Missing[:min(len(ie.Missing), 20)])
	case errors.Is(err, upload.ErrNotFound):
		return httpapi.Errorf(http.StatusNotFound, "no_session", "%v", err)
	case errors.Is(err, upload.ErrForbidden):
		return httpapi.Errorf(http.StatusForbidden, "not_yours", "%v", err)
	case errors.Is(err, upload.ErrIndex):
		return httpapi.Errorf(http.StatusBadRequest, "bad_index", "%v", err)
	case errors.Is(err, upload.ErrChecksum):
		return httpapi.Errorf(http.StatusBadRequest, "checksum_mismatch", "%v; nothing stored", err)
	case errors.Is(err, upload.ErrChunkSize):
		return httpapi.Errorf(http.StatusBadRequest, "bad_chunk_size", "%v; nothing stored", err)
	case errors.Is(err, upload.ErrConflict):
		return httpapi.Errorf(http.StatusConflict, "chunk_conflict", "%v", err)
	}
	return err
}

func (a *API) sessionState(w http.ResponseWriter, r *http.Request, user types.Address) error {
	st, err := a.sessions.State(r.PathValue("id"), user)
	if err != nil {
		return sessionError(err)
	}
	httpapi.WriteJSON(w, http.StatusOK, st)
	return nil
}

func (a *API) putChunk(w http.ResponseWriter, r *http.Request, user types.Address) error {
	index, err := strconv.Atoi(r.PathValue("index"))
	if err != nil {
		return httpapi.Errorf(http.StatusBadRequest, "bad_index", "chunk index %q", r.PathValue("index"))
	}
	sum, err := types.ParseHash(r.Header.Get(ChunkHeader))
	if err != nil {
		return httpapi.Errorf(http.StatusBadRequest, "bad_checksum", "%s header: %v", ChunkHeader, err)
	}
	created, err := a.sessions.PutChunk(r.Context(), r.PathValue("id"), user, index, sum, r.Body)
	if err != nil {
		return sessionError(err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	httpapi.WriteJSON(w, status, map[string]int{"index": index})
	return nil
}

func (a *API) abort(w http.ResponseWriter, r *http.Request, user types.Address) error {
	if err := a.sessions.Remove(r.PathValue("id"), user); err != nil {
		return sessionError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// complete encodes a session's file into the work area, records it for the
// pipeline and answers its FID. A retried complete after a crash finds the
// same FID (the session is removed only once the record is durable).
func (a *API) complete(w http.ResponseWriter, r *http.Request, user types.Address) error {
	id := r.PathValue("id")
	rc, sess, err := a.sessions.Reader(id, user)
	if err != nil {
		return sessionError(err)
	}
	defer rc.Close()
	if err := a.checkSpace(r.Context(), user, sess.Spec.Territory, sess.Spec.Size); err != nil {
		return err
	}
	rec, err := a.accept(r.Context(), rc, user, sess.Spec.Name, sess.Spec.Territory, sess.Spec.Size)
	if err != nil {
		return err
	}
	if err := a.sessions.Remove(id, user); err != nil {
		a.log.Warn("remove completed session", "id", id, "err", err)
	}
	httpapi.WriteJSON(w, http.StatusOK, rec)
	return nil
}

// putObject takes a whole file as the raw body, streamed through the codec
// without holding it.
func (a *API) putObject(w http.ResponseWriter, r *http.Request, user types.Address) error {
	name, territory := r.PathValue("name"), r.URL.Query().Get("territory")
	if err := ledger.ValidName(name); err != nil {
		return httpapi.Errorf(http.StatusBadRequest, "bad_name", "%v", err)
	}
	if r.ContentLength < 0 {
		return httpapi.Errorf(http.StatusLengthRequired, "length_required", "send Content-Length, or upload in chunks")
	}
	if err := a.checkSpace(r.Context(), user, territory, r.ContentLength); err != nil {
		return err
	}
	rec, err := a.accept(r.Context(), r.Body, user, name, territory, r.ContentLength)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, rec)
	return nil
}

// accept encodes a file into the work area and records it.
func (a *API) accept(ctx context.Context, body io.Reader, user types.Address, name, territory string, size int64) (*pipeline.Record, error) {
	res, err := a.work.Encode(ctx, body, codec.WithSize(size))
	if errors.Is(err, codec.ErrSizeMismatch) {
		return nil, httpapi.Errorf(http.StatusBadRequest, "size_mismatch", "%v", err)
	}
	if err != nil {
		return nil, err
	}
	if a.Metrics != nil {
		a.Metrics.bytesIn.Add(float64(res.Layout.Size))
	}
	return a.queue.Add(pipeline.Record{FID: res.FID, Owner: user, Name: name, Territory: territory, Size: res.Layout.Size, Updated: a.now()})
}
