package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/httpapi"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node/store"
	"github.com/deoss/deoss/internal/nodeapi"
	"github.com/deoss/deoss/internal/types"
	"github.com/deoss/deoss/internal/version"
)

// Chain is what the node asks the chain. chain.Client provides it (see
// ChainClient); tests use a fake.
type Chain interface {
	// File returns a file's record, or an error matching ledger.ErrNotFound.
	File(ctx context.Context, fid types.FID) (*ledger.File, error)
	// Gateway returns a registered gateway, or ledger.ErrNotFound.
	Gateway(ctx context.Context, addr types.Address) (*ledger.Gateway, error)
}

// ServerConfig configures the HTTP API.
type ServerConfig struct {
	// Self is this node's address: it accepts only columns assigned to it.
	Self types.Address
	// FragmentSize is the largest fragment (types.FragmentSize); each
	// fragment must be exactly the size its layout gives.
	FragmentSize int64
	// ReadRate and ReadBurst limit fragment reads per client IP (per second).
	ReadRate  float64
	ReadBurst int
	// OnStored, if set, is called after each fragment stored (the node kicks
	// its reporter).
	OnStored func(fid types.FID, column uint8)
	// Replay spends the nonces of gateways' signed requests (nil: a cache
	// in memory, forgotten on restart).
	Replay *auth.ReplayCache
	// MetricsToken guards /metrics on the API's listener (see
	// httpapi.OpsGuard); OpsApart leaves /metrics off it (Ops serves it on
	// a listener of its own).
	MetricsToken string
	OpsApart     bool
	// Proofs, if set, gives the prover's record for /info.
	Proofs func() ProofRecord
	// OnOrder, if set, is told of a file's declaration height before the
	// node stores a fragment of it (the collector's guard against a chain
	// that has not reached it); its error fails the store.
	OnOrder func(fid types.FID, declared int64) error
}

// Server is the storage node's HTTP API (docs/api.yaml, node section).
type Server struct {
	cfg      ServerConfig
	store    store.Store
	chain    Chain
	verifier *auth.Verifier
	log      *slog.Logger

	limiters sync.Map // client IP -> *rate.Limiter
	reg      *prometheus.Registry
	stored   *prometheus.CounterVec
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
}

// NewServer builds the API over a store; it starts nothing.
func NewServer(cfg ServerConfig, st store.Store, ch Chain, log *slog.Logger) *Server {
	if cfg.ReadRate == 0 {
		cfg.ReadRate, cfg.ReadBurst = 200, 400
	}
	if cfg.Replay == nil {
		cfg.Replay = auth.NewReplayCache(auth.ReplayLimits{})
	}
	s := &Server{
		cfg: cfg, store: st, chain: ch, log: log,
		// Gateways sign with a 1-minute lifetime; 5 s of clock skew.
		verifier: auth.NewVerifier(cfg.Self, time.Minute, 5*time.Second, cfg.Replay),
		reg:      prometheus.NewRegistry(),
		stored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "deoss_node_store_requests_total", Help: "Fragment store requests by result.",
		}, []string{"result"}),
		bytesIn:  prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_node_bytes_in_total", Help: "Fragment bytes stored."}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_node_bytes_out_total", Help: "Fragment bytes served."}),
	}
	used := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "deoss_node_used_bytes", Help: "Bytes stored."},
		func() float64 { u, _ := st.Usage(); return float64(u) })
	s.reg.MustRegister(s.stored, s.bytesIn, s.bytesOut, used)
	return s
}

// Handler returns the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /fragment/{fid}/{column}/{segment}", s.putFragment)
	mux.HandleFunc("GET /fragment/{hash}", s.getFragment)
	mux.HandleFunc("HEAD /fragment/{hash}", s.getFragment)
	mux.HandleFunc("GET /fragment/{hash}/slice", s.getSlice)
	mux.HandleFunc("GET /fragment/{hash}/verified", s.getVerified)
	mux.HandleFunc("GET /fragment/{hash}/chunk/{chunk}", s.getChunk)
	mux.HandleFunc("GET /info", s.info)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	if !s.cfg.OpsApart {
		mux.Handle("GET /metrics", httpapi.OpsGuard(s.cfg.MetricsToken, s.Ops()))
	}
	return mux
}

// Ops is the operators' handler: GET /metrics.
func (s *Server) Ops() http.Handler { return httpapi.OpsHandler(s.reg, false) }

// Registry is where the node's other parts register their metrics.
func (s *Server) Registry() prometheus.Registerer { return s.reg }

// HTTPServer wraps the handler with timeouts: a client that sends a fragment
// slower than ReadTimeout allows is cut off instead of holding a connection.
func (s *Server) HTTPServer(addr string, readTimeout time.Duration) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      2 * readTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}

type apiError = httpapi.Error

var (
	fail      = httpapi.Errorf
	writeJSON = httpapi.WriteJSON
)

func (s *Server) writeError(w http.ResponseWriter, e *apiError) { httpapi.WriteError(w, e) }

// authStatus maps a signature failure to its status.
func authStatus(err error) *apiError {
	switch {
	case errors.Is(err, auth.ErrReplayFull):
		e := fail(http.StatusServiceUnavailable, nodeapi.Busy, "%v", err)
		e.RetryAfter = time.Second
		return e
	case errors.Is(err, auth.ErrTooMany):
		e := fail(http.StatusTooManyRequests, nodeapi.Busy, "%v", err)
		e.RetryAfter = time.Second
		return e
	}
	return fail(http.StatusUnauthorized, nodeapi.Unauthenticated, "%v", err)
}

func (s *Server) putFragment(w http.ResponseWriter, r *http.Request) {
	res, err := s.store1(r)
	if err != nil {
		var e *apiError
		if !errors.As(err, &e) {
			s.log.Error("store fragment", "err", err)
			e = fail(http.StatusInternalServerError, nodeapi.Internal, "internal error")
		}
		s.stored.WithLabelValues(e.Code).Inc()
		s.writeError(w, e)
		return
	}
	s.stored.WithLabelValues("ok").Inc()
	if s.cfg.OnStored != nil {
		s.cfg.OnStored(res.FID, res.Column)
	}
	writeJSON(w, http.StatusCreated, res)
}

// StoreResult is the answer to a successful store.
type StoreResult struct {
	FID     types.FID  `json:"fid"`
	Column  uint8      `json:"column"`
	Segment uint32     `json:"segment"`
	Hash    types.Hash `json:"hash"`
}

func (s *Server) store1(r *http.Request) (*StoreResult, error) {
	// The signature first (no state), then that the signer is a gateway,
	// and only then is the nonce spent: strangers cannot fill the cache.
	// The body is unsigned on purpose: it is checked against the chain.
	sig, err := s.verifier.Check(r)
	if err != nil {
		return nil, authStatus(err)
	}
	gw := sig.Account
	fid, err := types.ParseFID(r.PathValue("fid"))
	if err != nil {
		return nil, fail(http.StatusBadRequest, nodeapi.BadFID, "%v", err)
	}
	col, err1 := strconv.ParseUint(r.PathValue("column"), 10, 8)
	seg, err2 := strconv.ParseUint(r.PathValue("segment"), 10, 32)
	if err1 != nil || err2 != nil || col >= types.TotalShards {
		return nil, fail(http.StatusBadRequest, nodeapi.BadPosition, "column must be 0..11 and segment a number")
	}
	ctx := r.Context()
	if _, err := s.chain.Gateway(ctx, gw); err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			return nil, fail(http.StatusForbidden, nodeapi.NotAGateway, "%s is not a registered gateway", gw)
		}
		return nil, err
	}
	if err := s.verifier.Spend(sig, auth.ClientAddr(r)); err != nil {
		return nil, authStatus(err)
	}
	ref := store.Ref{FID: fid, Column: uint8(col), Segment: uint32(seg)}
	f, err := s.chain.File(ctx, fid)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, fail(http.StatusNotFound, nodeapi.NoOrder, "no storage order for %s (unknown or expired)", fid)
	}
	if err != nil {
		return nil, err
	}
	if f.Columns[col].Node != s.cfg.Self {
		return nil, fail(http.StatusForbidden, nodeapi.NotAssigned, "column %d of %s is not assigned to this node", col, fid)
	}
	if seg >= uint64(len(f.Layout.Segments)) {
		return nil, fail(http.StatusNotFound, nodeapi.NoSegment, "%s has %d segments", fid, len(f.Layout.Segments))
	}
	want := f.Layout.Segments[seg].Fragments[col]
	// A repeated store of what is held succeeds whatever the order's state.
	if held, err := s.store.Lookup(ctx, ref); err == nil && held == want {
		return &StoreResult{FID: fid, Column: uint8(col), Segment: uint32(seg), Hash: want}, nil
	}
	if f.State != ledger.FilePending {
		return nil, fail(http.StatusConflict, nodeapi.NotPending, "%s is %s: no fragments are taken for it", fid, f.State)
	}
	if s.cfg.OnOrder != nil {
		if err := s.cfg.OnOrder(fid, f.Declared); err != nil {
			return nil, err
		}
	}
	size := int64(f.Layout.FragmentLen(int(seg)))
	if r.ContentLength > s.cfg.FragmentSize {
		return nil, fail(http.StatusRequestEntityTooLarge, nodeapi.TooLarge, "a fragment is at most %d bytes", s.cfg.FragmentSize)
	}
	if r.ContentLength >= 0 && r.ContentLength != size {
		return nil, fail(http.StatusBadRequest, nodeapi.BadSize, "this fragment is %d bytes, not %d", size, r.ContentLength)
	}
	body := &countingReader{r: http.MaxBytesReader(nil, r.Body, size)}
	err = s.store.Put(ctx, ref, store.Want{Hash: want, Format: f.Layout.Version, Size: size}, body)
	s.bytesIn.Add(float64(body.n))
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
	case errors.As(err, &mbe), errors.Is(err, store.ErrTooLarge):
		return nil, fail(http.StatusRequestEntityTooLarge, nodeapi.TooLarge, "this fragment is %d bytes", size)
	case errors.Is(err, store.ErrSize):
		return nil, fail(http.StatusBadRequest, nodeapi.BadSize, "this fragment is %d bytes: %v", size, err)
	case errors.Is(err, store.ErrHashMismatch):
		return nil, fail(http.StatusBadRequest, nodeapi.HashMismatch, "the body does not hash to %s; nothing stored", want)
	case errors.Is(err, store.ErrFull):
		return nil, fail(http.StatusInsufficientStorage, nodeapi.Full, "%v", err)
	case errors.Is(err, store.ErrConflict):
		return nil, fail(http.StatusConflict, nodeapi.Conflict, "%v", err)
	default:
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || ctx.Err() != nil {
			return nil, fail(http.StatusBadRequest, nodeapi.Body, "reading the body: %v", err)
		}
		return nil, err
	}
	if body.n != 0 && body.n != size {
		// Put verified the hash, so this cannot happen with a real layout;
		// say so rather than keep a fragment of the wrong size. (Nothing
		// read means the store already held these bytes for another ref,
		// such as the all-zero padding fragments: nothing to check.)
		_ = s.store.Release(ctx, ref)
		return nil, fail(http.StatusBadRequest, nodeapi.BadSize, "this fragment is %d bytes, got %d", size, body.n)
	}
	return &StoreResult{FID: fid, Column: uint8(col), Segment: uint32(seg), Hash: want}, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (s *Server) limiter(r *http.Request) *rate.Limiter {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	l, _ := s.limiters.LoadOrStore(ip, rate.NewLimiter(rate.Limit(s.cfg.ReadRate), s.cfg.ReadBurst))
	return l.(*rate.Limiter)
}

// getFragment serves a fragment by hash, whole or a Range. Reads need no
// signature (fragments are public, content-addressed data) but are limited
// per client.
func (s *Server) getFragment(w http.ResponseWriter, r *http.Request) {
	f, h := s.openRead(w, r)
	if f == nil {
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+h.String()+`"`)
	cw := &countingWriter{ResponseWriter: w}
	var content io.ReadSeeker = io.NewSectionReader(f, 0, f.Size())
	if of, ok := f.(interface{ OSFile() *os.File }); ok {
		content = of.OSFile() // the kernel copies file to socket (sendfile)
	}
	http.ServeContent(cw, r, "", time.Time{}, content)
	s.bytesOut.Add(float64(cw.n))
}

// openRead opens the fragment a read names, within the client's read
// limit; it writes the error answer itself and returns nil then.
func (s *Server) openRead(w http.ResponseWriter, r *http.Request) (store.Fragment, types.Hash) {
	if !s.limiter(r).Allow() {
		w.Header().Set("Retry-After", "1")
		s.writeError(w, fail(http.StatusTooManyRequests, nodeapi.RateLimited, "too many reads; retry later"))
		return nil, types.Hash{}
	}
	h, err := types.ParseHash(r.PathValue("hash"))
	if err != nil {
		s.writeError(w, fail(http.StatusBadRequest, nodeapi.BadHash, "%v", err))
		return nil, h
	}
	f, err := s.store.Open(r.Context(), h)
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, fail(http.StatusNotFound, nodeapi.NotFound, "no fragment %s here", h))
		return nil, h
	}
	if err != nil {
		s.log.Error("open fragment", "hash", h, "err", err)
		s.writeError(w, fail(http.StatusInternalServerError, nodeapi.Internal, "internal error"))
		return nil, h
	}
	return f, h
}

// openV2 is openRead for an answer that needs the outboard: a v2 fragment
// and its outboard, or the error answer written and nil.
func (s *Server) openV2(w http.ResponseWriter, r *http.Request) (store.Fragment, []byte) {
	f, h := s.openRead(w, r)
	if f == nil {
		return nil, nil
	}
	ob, err := s.store.Outboard(r.Context(), h)
	if err == nil {
		return f, ob
	}
	f.Close()
	if errors.Is(err, store.ErrNotFound) {
		s.writeError(w, fail(http.StatusNotFound, nodeapi.NoOutboard, "fragment %s is v1: it has no slices; read it whole", h))
	} else {
		s.log.Error("open outboard", "hash", h, "err", err)
		s.writeError(w, fail(http.StatusInternalServerError, nodeapi.Internal, "internal error"))
	}
	return nil, nil
}

// getSlice serves bytes [offset, offset+length) of a v2 fragment as a Bao
// slice (16 KiB groups): the reader verifies it against the fragment hash.
func (s *Server) getSlice(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	off, err1 := strconv.ParseInt(q.Get("offset"), 10, 64)
	n, err2 := strconv.ParseInt(q.Get("length"), 10, 64)
	if err1 != nil || err2 != nil || off < 0 || n <= 0 {
		s.writeError(w, fail(http.StatusBadRequest, nodeapi.BadRange, "offset and length must be numbers, length above 0"))
		return
	}
	f, ob := s.openV2(w, r)
	if f == nil {
		return
	}
	defer f.Close()
	if off > f.Size() || n > f.Size()-off {
		s.writeError(w, fail(http.StatusBadRequest, nodeapi.BadRange, "%d bytes at %d are outside the %d-byte fragment", n, off, f.Size()))
		return
	}
	w.Header().Set("Content-Type", nodeapi.SliceType)
	w.Header().Set("Content-Length", strconv.FormatInt(codec.SliceSize(f.Size(), off, n), 10))
	cw := &countingWriter{ResponseWriter: w}
	if err := codec.WriteSlice(cw, f, ob, off, n); err != nil {
		s.log.Warn("slice", "hash", r.PathValue("hash"), "err", err) // the client sees a short body
	}
	s.bytesOut.Add(float64(cw.n))
}

// getVerified serves a whole v2 fragment as its outboard followed by its
// bytes (codec.EncOutboard): verifiable 16 KiB at a time like a slice, and
// the bytes go from the file to the socket with sendfile.
func (s *Server) getVerified(w http.ResponseWriter, r *http.Request) {
	f, ob := s.openV2(w, r)
	if f == nil {
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", nodeapi.OutboardType)
	w.Header().Set("Content-Length", strconv.FormatInt(codec.OutboardStreamSize(f.Size()), 10))
	cw := &countingWriter{ResponseWriter: w}
	var data io.Reader = io.NewSectionReader(f, 0, f.Size())
	if of, ok := f.(interface{ OSFile() *os.File }); ok {
		data = of.OSFile() // the kernel copies file to socket (sendfile)
	}
	if err := codec.WriteOutboardStream(cw, data, ob); err != nil {
		s.log.Warn("verified fragment", "hash", r.PathValue("hash"), "err", err) // the client sees a short body
	}
	s.bytesOut.Add(float64(cw.n))
}

// getChunk serves the proof slice of one 1 KiB chunk of a v2 fragment.
func (s *Server) getChunk(w http.ResponseWriter, r *http.Request) {
	k, err := strconv.ParseInt(r.PathValue("chunk"), 10, 64)
	if err != nil || k < 0 {
		s.writeError(w, fail(http.StatusBadRequest, nodeapi.BadRange, "chunk must be a number"))
		return
	}
	f, ob := s.openV2(w, r)
	if f == nil {
		return
	}
	defer f.Close()
	p, err := codec.SliceChunk(f, ob, k)
	if errors.Is(err, codec.ErrSliceRange) {
		s.writeError(w, fail(http.StatusBadRequest, nodeapi.BadRange, "%v", err))
		return
	}
	if err != nil {
		s.log.Error("proof slice", "hash", r.PathValue("hash"), "err", err)
		s.writeError(w, fail(http.StatusInternalServerError, nodeapi.Internal, "internal error"))
		return
	}
	w.Header().Set("Content-Type", nodeapi.SliceType)
	w.Write(p)
	s.bytesOut.Add(float64(len(p)))
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

// ReadFrom keeps the ResponseWriter's own ReadFrom (sendfile) usable.
func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	n, err := io.Copy(c.ResponseWriter, r)
	c.n += n
	return n, err
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n += int64(n)
	return n, err
}

// Info is the answer to GET /info.
type Info struct {
	Address  types.Address `json:"address"`
	Capacity uint64        `json:"capacity_bytes"`
	Used     uint64        `json:"used_bytes"`
	Version  version.Info  `json:"version"`
	// Proofs is what this node's prover did since it started (the
	// chain's record, with what it counted, is in its node query).
	Proofs *ProofRecord `json:"proofs,omitempty"`
}

// ProofRecord counts the prover's answers since the node started.
type ProofRecord struct {
	Proved     uint64    `json:"proved"`
	Unreadable uint64    `json:"unreadable"` // challenged fragments it could not read
	Refused    uint64    `json:"refused"`    // proofs the chain refused
	Last       time.Time `json:"last_proof,omitzero"`
}

func (s *Server) info(w http.ResponseWriter, _ *http.Request) {
	used, capacity := s.store.Usage()
	in := Info{Address: s.cfg.Self, Capacity: capacity, Used: used, Version: version.Get()}
	if s.cfg.Proofs != nil {
		r := s.cfg.Proofs()
		in.Proofs = &r
	}
	writeJSON(w, http.StatusOK, in)
}
