package gateway

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
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
	// kek seals the keys of encrypted uploads kept between a session's
	// create and complete; kdf bounds concurrent Argon2id derivations (64 MiB
	// each).
	kek cipher.AEAD
	kdf chan struct{}
	// encodes bounds the files encoding at once, and workers is each one's
	// share of the CPUs: memory stays bounded however many upload.
	encodes chan struct{}
	workers int
	// Reader serves downloads, metadata and peers.
	Reader *Reader
	// Submit sends a message signed by the gateway (deletes).
	Submit func(ctx context.Context, m ledger.Msg) error
	// CacheOnly leaves out every route that takes or deletes files.
	CacheOnly bool
	// MaxSize bounds a file whose size is not declared (PUT /file).
	MaxSize int64
	// Metrics, when set, is served at GET /metrics and counts accepted bytes.
	Metrics *metrics
}

// NewAPI assembles the API over its stores.
func NewAPI(ch Chain, s *upload.Sessions, w *work.Area, q *pipeline.Queue, log *slog.Logger) *API {
	a := &API{chain: ch, sessions: s, work: w, queue: q, log: log, now: time.Now,
		verifier: auth.NewVerifier(5*time.Minute, 30*time.Second, 1<<20), kek: randomKEK(), kdf: make(chan struct{}, 2),
		MaxSize: int64(types.MaxSegments) * (types.SegmentSize - types.GCMOverhead)}
	a.SetEncodes(2)
	return a
}

// SetEncodes sets how many files encode at once (default 2).
func (a *API) SetEncodes(n int) {
	n = max(n, 1)
	a.encodes, a.workers = make(chan struct{}, n), max(1, runtime.GOMAXPROCS(0)/n)
}

// SetKeyEncryptionKey derives the key that seals session keys from the
// gateway's identity, so encrypted sessions survive a restart.
func (a *API) SetKeyEncryptionKey(k *auth.Key) {
	sum := sha256.Sum256(append([]byte("deoss/gateway/kek/v1\n"), k.Seed()...))
	a.kek = aeadOf(sum[:])
}

func randomKEK() cipher.AEAD {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	return aeadOf(b)
}

func aeadOf(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // 32-byte keys only
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// CipherHeader carries the user's cipher when the gateway encrypts a file.
const CipherHeader = "Cipher"

// newKey derives a fresh file key from the request's Cipher header; nil when
// the request has none.
func (a *API) newKey(r *http.Request) (*codec.Key, error) {
	c := r.Header.Get(CipherHeader)
	if c == "" {
		return nil, nil
	}
	return a.derive(r.Context(), []byte(c), nil)
}

// derive derives a file key from a cipher and a salt (nil: a fresh one),
// a few at a time: Argon2id takes 64 MiB each.
func (a *API) derive(ctx context.Context, c, salt []byte) (*codec.Key, error) {
	release, err := acquire(ctx, a.kdf)
	if err != nil {
		return nil, err
	}
	defer release()
	if salt == nil {
		return codec.NewKey(c)
	}
	return codec.DeriveKey(c, salt)
}

// acquire takes a slot of sem, or gives up when ctx ends.
func acquire(ctx context.Context, sem chan struct{}) (release func(), err error) {
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func encryption(k *codec.Key) types.Encryption {
	if k == nil {
		return types.EncryptionNone
	}
	return types.EncryptionAES256GCM
}

// ChunkHeader carries a chunk's SHA-256 (64 lowercase hex characters).
const ChunkHeader = "Chunk-Sha256"

// Handler returns the routes.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		httpapi.WriteJSON(w, http.StatusOK, version.Get())
	})
	if !a.CacheOnly {
		mux.HandleFunc("POST /upload", a.signed(a.createSession))
		mux.HandleFunc("GET /upload/{id}", a.signed(a.sessionState))
		mux.HandleFunc("PUT /upload/{id}/{index}", a.signed(a.putChunk))
		mux.HandleFunc("POST /upload/{id}/complete", a.signed(a.complete))
		mux.HandleFunc("DELETE /upload/{id}", a.signed(a.abort))
		mux.HandleFunc("PUT /object/{name}", a.signed(a.putObject))
		mux.HandleFunc("PUT /file", a.signed(a.putFile))
	}
	if a.Reader != nil {
		a.readRoutes(mux)
	}
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
	return func(w http.ResponseWriter, r *http.Request) { a.respond(w, r, a.authorize(w, r, h)) }
}

// respond writes err, if any, as the JSON error response; errors that are
// not *httpapi.Error are logged and answered 500 without their text.
func (a *API) respond(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		return
	}
	var e *httpapi.Error
	switch {
	case errors.As(err, &e):
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client went away
	case errors.Is(err, chain.ErrUnavailable):
		e = httpapi.Errorf(http.StatusServiceUnavailable, "chain_unavailable", "the chain does not answer; try again")
	default:
		a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = httpapi.Errorf(http.StatusInternalServerError, "internal", "internal error")
	}
	httpapi.WriteError(w, e)
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
func (a *API) checkSpace(ctx context.Context, user types.Address, territory string, size int64, enc types.Encryption) error {
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
	need := types.ProfileV1.Segments(uint64(size), enc) * types.SegmentSize
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
	key, err := a.newKey(r)
	if err != nil {
		return err
	}
	if err := a.checkSpace(r.Context(), user, req.Territory, req.Size, encryption(key)); err != nil {
		return err
	}
	var wrapped []byte
	if key != nil {
		if wrapped, err = key.Wrap(a.kek); err != nil {
			return err
		}
	}
	sess, err := a.sessions.Create(upload.Spec{Owner: user, Name: req.Name, Territory: req.Territory, Size: req.Size, ChunkSize: req.ChunkSize}, wrapped)
	if errors.Is(err, upload.ErrBadSpec) {
		return httpapi.Errorf(http.StatusBadRequest, "bad_size", "%v", err)
	}
	if err != nil {
		return err
	}
	if a.Metrics != nil {
		a.Metrics.sessions.Inc()
	}
	httpapi.WriteJSON(w, http.StatusCreated, map[string]any{
		"id": sess.ID, "chunk_size": sess.Spec.ChunkSize, "chunks": sess.Spec.Chunks(), "expires": sess.Expires,
		"encryption": encryption(key).String(),
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
	st.WrappedKey = nil // sealed, but of no use to the client
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
	status, result := http.StatusOK, "repeat"
	if created {
		status, result = http.StatusCreated, "created"
	}
	if a.Metrics != nil {
		a.Metrics.chunks.WithLabelValues(result).Inc()
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
	var key *codec.Key
	if len(sess.WrappedKey) > 0 {
		if key, err = codec.UnwrapKey(a.kek, sess.WrappedKey); err != nil {
			return httpapi.Errorf(http.StatusConflict, "key_lost", "the session's key does not open with this gateway's identity (%v); abort and upload again", err)
		}
	}
	if err := a.checkSpace(r.Context(), user, sess.Spec.Territory, sess.Spec.Size, encryption(key)); err != nil {
		return err
	}
	rec, err := a.accept(r.Context(), rc, user, sess.Spec.Name, sess.Spec.Territory, sess.Spec.Size, key)
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
	key, err := a.newKey(r)
	if err != nil {
		return err
	}
	if err := a.checkSpace(r.Context(), user, territory, r.ContentLength, encryption(key)); err != nil {
		return err
	}
	rec, err := a.accept(r.Context(), r.Body, user, name, territory, r.ContentLength, key)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, rec)
	return nil
}

// putFile takes a multipart/form-data body: an optional "territory" field,
// then a "file" part whose filename names the file. The part is streamed
// through the codec; its size is known only at its end, so the territory's
// space is checked against the request's length first and the file's own
// size before it is accepted.
func (a *API) putFile(w http.ResponseWriter, r *http.Request, user types.Address) error {
	mr, err := r.MultipartReader()
	if err != nil {
		return httpapi.Errorf(http.StatusBadRequest, "bad_multipart", "%v", err)
	}
	territory := r.URL.Query().Get("territory")
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return httpapi.Errorf(http.StatusBadRequest, "bad_multipart", "no part named \"file\"")
		}
		if err != nil {
			return httpapi.Errorf(http.StatusBadRequest, "bad_multipart", "%v", err)
		}
		switch p.FormName() {
		case "territory":
			b, err := io.ReadAll(io.LimitReader(p, 256))
			if err != nil {
				return httpapi.Errorf(http.StatusBadRequest, "bad_multipart", "%v", err)
			}
			territory = string(b)
		case "file":
			// Not p.FileName(): it drops directories, and a name with a
			// path in it is an error to report, not to repair.
			_, params, _ := mime.ParseMediaType(p.Header.Get("Content-Disposition"))
			name := params["filename"]
			if err := ledger.ValidName(name); err != nil {
				return httpapi.Errorf(http.StatusBadRequest, "bad_name", "file part's filename: %v", err)
			}
			key, err := a.newKey(r)
			if err != nil {
				return err
			}
			// The body bounds the file: refuse early what cannot fit.
			if err := a.checkSpace(r.Context(), user, territory, max(r.ContentLength, 0), encryption(key)); err != nil {
				return err
			}
			rec, err := a.accept(r.Context(), p, user, name, territory, -1, key)
			if err != nil {
				return err
			}
			httpapi.WriteJSON(w, http.StatusCreated, rec)
			return nil
		}
	}
}

// accept encodes a file into the work area and records it. size < 0 means
// unknown (the stream's end ends the file).
func (a *API) accept(ctx context.Context, body io.Reader, user types.Address, name, territory string, size int64, key *codec.Key) (*pipeline.Record, error) {
	release, err := acquire(ctx, a.encodes)
	if err != nil {
		return nil, err
	}
	defer release()
	opts := []codec.EncodeOption{codec.WithKey(key), codec.WithWorkers(a.workers)}
	if size >= 0 {
		opts = append(opts, codec.WithSize(size))
	}
	if size < 0 {
		body = &capped{r: body, n: a.MaxSize + 1}
	}
	res, err := a.work.Encode(ctx, body, opts...)
	switch {
	case errors.Is(err, codec.ErrSizeMismatch):
		return nil, httpapi.Errorf(http.StatusBadRequest, "size_mismatch", "%v", err)
	case errors.Is(err, errTooLarge), errors.Is(err, codec.ErrTooLarge):
		return nil, httpapi.Errorf(http.StatusRequestEntityTooLarge, "too_large", "files are at most %d bytes here", a.MaxSize)
	case err != nil:
		return nil, err
	}
	// The chain refuses an order the territory cannot take; a file the
	// queue could never declare is refused now instead.
	if err := a.checkSpace(ctx, user, territory, int64(res.Layout.Size), res.Layout.Encryption); err != nil {
		if held, herr := a.queue.Holds(res.FID); herr == nil && !held {
			a.work.Remove(res.FID)
		}
		return nil, err
	}
	if a.Metrics != nil {
		a.Metrics.bytesIn.Add(float64(res.Layout.Size))
	}
	return a.queue.Add(pipeline.Record{FID: res.FID, Owner: user, Name: name, Territory: territory, Size: res.Layout.Size, Updated: a.now()})
}

var errTooLarge = errors.New("file too large")

// capped reads at most n bytes and fails with errTooLarge past them.
type capped struct {
	r io.Reader
	n int64
}

func (c *capped) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	if c.n <= 0 && err == nil {
		return n, errTooLarge
	}
	return n, err
}
