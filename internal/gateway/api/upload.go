package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/gateway/console"
	"github.com/deoss/deoss/internal/gateway/ingest"
	"github.com/deoss/deoss/internal/gateway/pack"
	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/gateway/read"
	"github.com/deoss/deoss/internal/gateway/scheduler"
	"github.com/deoss/deoss/internal/gateway/upload"
	"github.com/deoss/deoss/internal/gateway/work"
	"github.com/deoss/deoss/internal/httpapi"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/limit"
	"github.com/deoss/deoss/internal/ttlcache"
	"github.com/deoss/deoss/internal/types"
	"github.com/deoss/deoss/internal/version"
)

// Chain is what the gateway's API asks the chain.
type Chain interface {
	// Authorized reports whether user authorized this gateway.
	Authorized(ctx context.Context, user types.Address) (bool, error)
	// Authorizes reports whether user authorized gateway (share links a
	// gateway made for its console's users).
	Authorizes(ctx context.Context, user, gateway types.Address) (bool, error)
	// Nodes lists the storage nodes.
	Nodes(ctx context.Context) ([]ledger.Node, error)
	// Submit sends a message signed by the gateway and waits for its block
	// (deletes of files this gateway does not hold).
	Submit(ctx context.Context, m ledger.Msg) error
}

// Scores are the scheduler's view of the nodes (GET /nodes).
type Scores interface {
	Scores() []scheduler.NodeScore
}

// FragmentCache is what the peer routes read of the fragment cache.
type FragmentCache interface {
	HasFile(fid types.FID) bool
	Open(h types.Hash) (io.ReadCloser, error)
}

// Deps are the parts the API serves over; Reader, Cache and Scores may be nil
// for an API without the read routes.
type Deps struct {
	Chain    Chain
	Ingest   *ingest.Ingest
	Sessions *upload.Sessions
	Work     *work.Area
	Queue    *pipeline.Queue
	Reader   *read.Reader
	Cache    FragmentCache
	Scores   Scores
	// Registry, when set, takes the API's own metrics (the gateway serves
	// it to operators, not this handler).
	Registry *prometheus.Registry
	Log      *slog.Logger
	// Self is the gateway's account: signed requests must name it.
	Self types.Address
	// Replay spends the nonces of signed requests (nil: a cache in memory,
	// forgotten on restart).
	Replay *auth.ReplayCache
	// AllowInsecure lets Cipher headers and unsigned payloads come over
	// plain HTTP (dev networks, or TLS ended by a proxy in front). Without
	// it they need TLS: on plain HTTP anyone on the path reads a cipher and
	// swaps an unsigned body.
	AllowInsecure bool
	// IOIdle is how long a client may leave a download unread or an upload
	// unsent before its connection is cut (default 30 s); progress resets it.
	IOIdle time.Duration
	// S3Keys, when set, serves /s3/keys (the gateway has an S3 endpoint).
	S3Keys S3Keys
	// Packing, when set, takes small uploads into the pack buffer.
	Packing Packing
	// Console, when set, serves the web console and lets its signed-in
	// sessions make the requests a signature makes (authorize).
	Console *console.Sessions
	// ShareKey, when set, is the gateway's key: it signs the share links
	// console users ask for (auth.ShareForQuery).
	ShareKey *auth.Key
}

// Packing takes small objects into shared packs (pack.Packer).
type Packing interface {
	// Takes says whether an object of size bytes, not encrypted at the
	// gateway, goes to a pack now (packing is on and ready, and it is
	// small enough).
	Takes(size int64) bool
	Put(o pack.Object, r io.Reader) (pack.Object, error)
	Delete(oid types.FID) error
	// Read returns a buffered object and its bytes, verified.
	Read(oid types.FID) (pack.Object, *io.SectionReader, error)
}

// API is the gateway's HTTP API for users and peers (docs/api.yaml). Build
// it with New; it starts nothing.
type API struct {
	Deps
	verifier *auth.Verifier
	now      func() time.Time
	m        metrics
	// peerSlices bounds the peer slice answers built at once: each holds a
	// fragment (up to 8 MiB) in memory to build its outboard.
	peerSlices limit.Slots
	// CacheOnly leaves out every route that takes or deletes files.
	CacheOnly bool
	// perClient bounds one client address's downloads at once; wrongCipher
	// backs off a file's key derivations after wrong ciphers, and kdfRate
	// bounds each client's derivations (Argon2id, 64 MiB each): no online
	// guessing, no crowding out of other users' downloads.
	perClient   *limit.PerKey
	wrongCipher *limit.Penalty
	kdfRate     *ttlcache.Cache[string, *rate.Limiter]
}

// Limits of unsigned readers, per client address.
const (
	downloadsPerClient = 8
	kdfPerSecond       = 1
	kdfBurst           = 5
	ioIdle             = 30 * time.Second // API.IOIdle's default
)

// New assembles the API.
func New(d Deps) *API {
	var reg prometheus.Registerer // a nil *Registry must stay a nil interface
	if d.Registry != nil {
		reg = d.Registry
	}
	if d.Replay == nil {
		d.Replay = auth.NewReplayCache(auth.ReplayLimits{})
	}
	// Signatures are good for at most five minutes, with 30 s of skew.
	a := &API{Deps: d, now: time.Now, verifier: auth.NewVerifier(d.Self, 5*time.Minute, 30*time.Second, d.Replay), m: newMetrics(reg),
		peerSlices: limit.NewSlots(4), perClient: limit.NewPerKey(downloadsPerClient),
		wrongCipher: &limit.Penalty{Base: time.Second, Max: 5 * time.Minute, Free: 3},
		kdfRate:     ttlcache.New[string, *rate.Limiter](time.Minute, 100_000)}
	if a.IOIdle == 0 {
		a.IOIdle = ioIdle
	}
	if rc, ok := d.Chain.(RepairChain); ok && reg != nil {
		reg.MustRegister(newRepairCollector(rc))
	}
	if a.Log == nil {
		a.Log = slog.New(slog.DiscardHandler)
	}
	return a
}

// CipherHeader carries the user's cipher when the gateway encrypts a file.
const CipherHeader = auth.HeaderCipher

// ChunkHeader carries a chunk's SHA-256 (64 lowercase hex characters).
const ChunkHeader = "Chunk-Sha256"

// Handler returns the routes.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, _ *http.Request) {
		// The account is what clients sign their requests for.
		httpapi.WriteJSON(w, http.StatusOK, struct {
			version.Info
			Account types.Address `json:"account"`
		}{version.Get(), a.Self})
	})
	if !a.CacheOnly {
		if a.Console != nil {
			a.consoleRoutes(mux)
		}
		mux.HandleFunc("POST /upload", a.signed(a.createSession))
		mux.HandleFunc("GET /upload/{id}", a.signed(a.sessionState))
		mux.HandleFunc("PUT /upload/{id}/{index}", a.signedAs(bodyChunk, a.putChunk))
		mux.HandleFunc("POST /upload/{id}/complete", a.signed(a.complete))
		mux.HandleFunc("DELETE /upload/{id}", a.signed(a.abort))
		mux.HandleFunc("PUT /object/{name}", a.signedAs(bodyStream, a.putObject))
		mux.HandleFunc("PUT /file", a.signedAs(bodyStream, a.putFile))
		if a.S3Keys != nil {
			a.s3Routes(mux)
		}
		if a.Sessions != nil {
			if err := a.tusRoutes(mux); err != nil {
				panic(err) // a fixed configuration tusd refuses: a programming error
			}
		}
	}
	if a.Reader != nil {
		a.readRoutes(mux)
	}
	return a.transportPolicy(mux)
}

// transportPolicy refuses a Cipher header that came over plain HTTP unless
// the gateway allows it: the cipher would be readable, and on an unsigned
// download replaceable, by anyone on the path.
func (a *API) transportPolicy(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil && !a.AllowInsecure && r.Header.Get(CipherHeader) != "" {
			httpapi.WriteError(w, httpapi.Errorf(http.StatusForbidden, "tls_required",
				"a %s header is taken only over TLS (https); this gateway does not allow it over plain HTTP", CipherHeader))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bodyKind says how a route's body is checked against its signature.
type bodyKind int

const (
	// bodySmall: read whole (at most 64 KiB) and checked before the handler.
	bodySmall bodyKind = iota
	// bodyStream: checked as it streams; the read that ends it fails when it
	// is not the signed one, before the file is accepted.
	bodyStream
	// bodyChunk: the signed hash must be the Chunk-Sha256 header, which the
	// session store checks the chunk against.
	bodyChunk
	// bodyTus: checked as it streams, and its bytes kept only once checked
	// (tus.go), since tusd takes a body that breaks off as its end.
	bodyTus
)

// maxSmallBody bounds the bodies read whole (JSON requests).
const maxSmallBody = 64 << 10

type handler func(w http.ResponseWriter, r *http.Request, user types.Address) error

// signed checks the request's signature, its body and that the account
// authorized this gateway, then runs h; an error from h becomes the JSON
// error response.
func (a *API) signed(h handler) http.HandlerFunc { return a.signedAs(bodySmall, h) }

func (a *API) signedAs(kind bodyKind, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { a.respond(w, r, a.authorize(w, r, kind, h)) }
}

// respond writes err, if any, as the JSON error response (errors.go maps
// domain errors to statuses); what maps to nothing is logged and answered
// 500 without its text.
func (a *API) respond(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client went away
	}
	e := toHTTP(err)
	if e == nil {
		a.Log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = httpapi.Errorf(http.StatusInternalServerError, "internal", "internal error")
	}
	httpapi.WriteError(w, e)
}

// authorize checks in the order that keeps strangers cheap: the signature
// (no state), then the account's authorization (cached), and only then
// spends the nonce, in the account's and the client's share of the replay
// cache, so a never-authorized key cannot fill it.
func (a *API) authorize(w http.ResponseWriter, r *http.Request, kind bodyKind, h handler) error {
	if a.Console != nil && r.Header.Get(auth.HeaderSignature) == "" {
		if user, ok := a.Console.Account(r); ok {
			return a.authorizeConsole(w, r, kind, user, h)
		}
	}
	s, err := a.verifier.Check(r)
	if err != nil {
		return httpapi.Errorf(http.StatusUnauthorized, "unauthenticated", "%v", err)
	}
	user := s.Account
	ok, err := a.Chain.Authorized(r.Context(), user)
	if err != nil {
		return err
	}
	if !ok {
		return httpapi.Errorf(http.StatusForbidden, "not_authorized", "%s has not authorized this gateway (deoss gateway authorize)", user)
	}
	if s.Unsigned() && r.TLS == nil && !a.AllowInsecure {
		return httpapi.Errorf(http.StatusForbidden, "tls_required",
			"an %s body is taken only over TLS (https): sign the body's SHA-256 instead", auth.UnsignedPayload)
	}
	if err := a.verifier.Spend(s, auth.ClientAddr(r)); err != nil {
		return err
	}
	switch kind {
	case bodySmall:
		b, err := s.ReadBody(r.Body, maxSmallBody)
		if err != nil {
			if errors.Is(err, auth.ErrBodyMismatch) {
				return err
			}
			return httpapi.Errorf(http.StatusBadRequest, "bad_body", "body: %v", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
	case bodyStream:
		r.Body = s.CheckBody(a.idleBody(w, r), r.ContentLength)
	case bodyTus:
		r.Body = &verifiedBody{rc: s.CheckBody(a.idleBody(w, r), r.ContentLength), unsigned: s.Unsigned()}
	case bodyChunk:
		r.Body = a.idleBody(w, r)
		if _, err := types.ParseHash(r.Header.Get(ChunkHeader)); err != nil {
			return httpapi.Errorf(http.StatusBadRequest, "bad_checksum", "%s header: %v", ChunkHeader, err)
		}
		if s.Unsigned() || s.Body != r.Header.Get(ChunkHeader) {
			return fmt.Errorf("%w: a chunk's signed body hash must be its %s header", auth.ErrBodyMismatch, ChunkHeader)
		}
	}
	return h(w, r, user)
}

// CreateRequest is the body of POST /upload.
type CreateRequest struct {
	Name      string `json:"name"`
	Territory string `json:"territory"`
	Size      int64  `json:"size"`
	ChunkSize int64  `json:"chunk_size,omitempty"`
	// Private: served to the owner only (a signed request or a share link).
	Private bool `json:"private,omitempty"`
}

// privateParam reads ?private=true|false (the query is signed).
func privateParam(r *http.Request) (bool, error) {
	v := r.URL.Query().Get("private")
	if v == "" {
		return false, nil
	}
	p, err := strconv.ParseBool(v)
	if err != nil {
		return false, httpapi.Errorf(http.StatusBadRequest, "bad_private", "private=%q: want true or false", v)
	}
	return p, nil
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
	spec := upload.Spec{Owner: user, Name: req.Name, Territory: req.Territory, Size: req.Size, ChunkSize: req.ChunkSize, Private: req.Private}
	// A malformed request is told so before anything is looked up or
	// derived.
	if _, err := a.Sessions.Check(spec); err != nil {
		return err
	}
	key, err := a.Ingest.NewKey(r.Context(), r.Header.Get(CipherHeader))
	if err != nil {
		return err
	}
	if err := a.Ingest.CheckSpace(r.Context(), user, req.Territory, req.Size, ingest.Encryption(key)); err != nil {
		return err
	}
	wrapped, err := a.Ingest.SealKey(key)
	if err != nil {
		return err
	}
	sess, err := a.Sessions.Create(spec, wrapped)
	if err != nil {
		return err
	}
	a.m.sessions.Inc()
	httpapi.WriteJSON(w, http.StatusCreated, map[string]any{
		"id": sess.ID, "chunk_size": sess.Spec.ChunkSize, "chunks": sess.Spec.Chunks(), "expires": sess.Expires,
		"encryption": ingest.Encryption(key).String(),
	})
	return nil
}

func (a *API) sessionState(w http.ResponseWriter, r *http.Request, user types.Address) error {
	st, err := a.Sessions.State(r.PathValue("id"), user)
	if err != nil {
		return err
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
	created, err := a.Sessions.PutChunk(r.Context(), r.PathValue("id"), user, index, sum, r.Body)
	if err != nil {
		return err
	}
	status, result := http.StatusOK, "repeat"
	if created {
		status, result = http.StatusCreated, "created"
	}
	a.m.chunks.WithLabelValues(result).Inc()
	httpapi.WriteJSON(w, status, map[string]int{"index": index})
	return nil
}

func (a *API) abort(w http.ResponseWriter, r *http.Request, user types.Address) error {
	if err := a.Sessions.Remove(r.PathValue("id"), user); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// complete encodes a session's file into the work area, records it for the
// pipeline and answers its FID. A retried complete after a crash finds the
// same FID (the session is removed only once the record is durable).
func (a *API) complete(w http.ResponseWriter, r *http.Request, user types.Address) error {
	id := r.PathValue("id")
	rc, sess, err := a.Sessions.Reader(id, user)
	if err != nil {
		return err
	}
	defer rc.Close()
	key, err := a.Ingest.OpenKey(sess.WrappedKey)
	if err != nil {
		return httpapi.Errorf(http.StatusConflict, "key_lost", "the session's key does not open with this gateway's identity (%v); abort and upload again", err)
	}
	// The session's own bytes are counted as pending already.
	if err := a.Ingest.CheckSpaceOwn(r.Context(), user, sess.Spec.Territory, sess.Spec.Size, ingest.Encryption(key), sess.Bytes()); err != nil {
		return err
	}
	var rec *pipeline.Record
	if key == nil && a.Packing != nil && a.Packing.Takes(sess.Spec.Size) {
		var o pack.Object
		o, err = a.Packing.Put(pack.Object{Owner: user, Name: sess.Spec.Name, Territory: sess.Spec.Territory, Private: sess.Spec.Private, Length: uint64(sess.Spec.Size)}, rc)
		rec = packedRecord(o)
	} else {
		rec, err = a.Ingest.Accept(r.Context(), rc, ingest.File{Owner: user, Name: sess.Spec.Name, Territory: sess.Spec.Territory, Size: sess.Spec.Size,
			Key: key, Private: sess.Spec.Private, Held: sess})
	}
	var ce *upload.CorruptError
	if errors.As(err, &ce) {
		// Damaged on the gateway's disk: forget it, so the client sends it
		// again (its state lists it missing) and completes.
		if derr := a.Sessions.DropChunk(id, user, ce.Index); derr != nil {
			return errors.Join(err, derr)
		}
		return httpapi.Errorf(http.StatusConflict, "incomplete", "chunk %d was damaged on the gateway's disk and is dropped: send it again, then complete", ce.Index)
	}
	if err != nil {
		return err
	}
	if err := a.Sessions.Remove(id, user); err != nil {
		a.Log.Warn("remove completed session", "id", id, "err", err)
	}
	httpapi.WriteJSON(w, http.StatusOK, rec)
	return nil
}

// putObject takes a whole file as the raw body, streamed through the codec
// without holding it.
func (a *API) putObject(w http.ResponseWriter, r *http.Request, user types.Address) error {
	name, territory := r.PathValue("name"), r.URL.Query().Get("territory")
	private, err := privateParam(r)
	if err != nil {
		return err
	}
	if err := ledger.ValidName(name); err != nil {
		return httpapi.Errorf(http.StatusBadRequest, "bad_name", "%v", err)
	}
	if r.ContentLength < 0 {
		return httpapi.Errorf(http.StatusLengthRequired, "length_required", "send Content-Length, or upload in chunks")
	}
	key, err := a.Ingest.NewKey(r.Context(), r.Header.Get(CipherHeader))
	if err != nil {
		return err
	}
	// The body's space is held while it streams in (other uploads see it).
	body, hold, err := a.Ingest.HoldStream(r.Context(), user, territory, r.ContentLength, ingest.Encryption(key), r.Body)
	if err != nil {
		return err
	}
	defer hold.Release()
	if key == nil && a.Packing != nil && a.Packing.Takes(r.ContentLength) {
		return a.putPacked(w, pack.Object{Owner: user, Name: name, Territory: territory, Private: private, Length: uint64(r.ContentLength)}, body)
	}
	rec, err := a.Ingest.Accept(r.Context(), body, ingest.File{Owner: user, Name: name, Territory: territory, Size: r.ContentLength,
		Key: key, Private: private, Held: hold})
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
	private, err := privateParam(r)
	if err != nil {
		return err
	}
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
			key, err := a.Ingest.NewKey(r.Context(), r.Header.Get(CipherHeader))
			if err != nil {
				return err
			}
			// The body bounds the file: refuse early what cannot fit.
			if err := a.Ingest.CheckSpace(r.Context(), user, territory, max(r.ContentLength, 0), ingest.Encryption(key)); err != nil {
				return err
			}
			// The signed body is checked when the request's body ends, after
			// the part: read to that end before the part's end is seen, so a
			// swapped body fails before the file is accepted. Its space is
			// held as it comes, and it is cut off as soon as it passes what
			// the territory can take.
			body, hold, err := a.Ingest.HoldStream(r.Context(), user, territory, -1, ingest.Encryption(key), &untilBodyEnd{part: p, body: r.Body})
			if err != nil {
				return err
			}
			defer hold.Release()
			rec, err := a.Ingest.Accept(r.Context(), body, ingest.File{Owner: user, Name: name, Territory: territory, Size: -1,
				Key: key, Private: private, Held: hold})
			if err != nil {
				return err
			}
			httpapi.WriteJSON(w, http.StatusCreated, rec)
			return nil
		}
	}
}

// untilBodyEnd reads a multipart part and, at its end, the rest of the
// request body (a closing boundary), so that the body's signature check runs
// before the part's end is reported.
type untilBodyEnd struct {
	part io.Reader
	body io.Reader
}

func (u *untilBodyEnd) Read(p []byte) (int, error) {
	n, err := u.part.Read(p)
	if errors.Is(err, io.EOF) {
		if _, derr := io.Copy(io.Discard, io.LimitReader(u.body, maxSmallBody)); derr != nil {
			return n, derr
		}
	}
	return n, err
}

// idleBody is r's body with a read deadline that each read moves on: an
// uploader that sends nothing for IOIdle is cut off, and whatever slot its
// request holds is given back.
func (a *API) idleBody(w http.ResponseWriter, r *http.Request) io.ReadCloser {
	return &idleReader{rc: r.Body, ctl: http.NewResponseController(w), idle: a.IOIdle}
}

type idleReader struct {
	rc   io.ReadCloser
	ctl  *http.ResponseController
	idle time.Duration
}

func (i *idleReader) Read(p []byte) (int, error) {
	_ = i.ctl.SetReadDeadline(time.Now().Add(i.idle))
	return i.rc.Read(p)
}

func (i *idleReader) Close() error { return i.rc.Close() }

// putPacked buffers a small object; its answer is a record like a file's,
// whose FID is the object's OID and whose state is buffered.
func (a *API) putPacked(w http.ResponseWriter, o pack.Object, body io.Reader) error {
	o, err := a.Packing.Put(o, body)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, packedRecord(o))
	return nil
}

func packedRecord(o pack.Object) *pipeline.Record {
	return &pipeline.Record{FID: o.OID, Owner: o.Owner, Name: o.Name, Territory: o.Territory, Size: o.Length,
		State: pipeline.Buffered, Updated: time.Unix(0, o.Time).UTC(), Private: o.Private}
}
