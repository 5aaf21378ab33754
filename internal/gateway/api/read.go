package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/gateway/pack"
	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/gateway/read"
	"github.com/deoss/deoss/internal/gateway/scheduler"
	"github.com/deoss/deoss/internal/httpapi"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/nodeapi"
	"github.com/deoss/deoss/internal/types"
)

// readRoutes adds the read, metadata, delete and peer routes.
func (a *API) readRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /file/download/{fid}", a.unsigned(a.download(false)))
	mux.HandleFunc("HEAD /file/download/{fid}", a.unsigned(a.download(false)))
	mux.HandleFunc("GET /file/open/{fid}", a.unsigned(a.download(true)))
	mux.HandleFunc("HEAD /file/open/{fid}", a.unsigned(a.download(true)))
	mux.HandleFunc("GET /file/metadata/{fid}", a.unsigned(a.metadata))
	mux.HandleFunc("GET /file/location/{fid}", a.unsigned(a.location))
	mux.HandleFunc("GET /files/{owner}", a.signed(a.list))
	mux.HandleFunc("GET /nodes", a.unsigned(a.nodes))
	mux.HandleFunc("GET /repair/status", a.unsigned(a.repairStatus))
	mux.HandleFunc("GET /repair/whatif", a.unsigned(a.repairWhatIf))
	mux.HandleFunc("GET /peer/file/{fid}", a.unsigned(a.peerFile))
	mux.HandleFunc("GET /peer/fragment/{fid}/{seg}/{idx}", a.unsigned(a.peerFragment))
	mux.HandleFunc("GET /peer/object/{fid}", a.unsigned(a.peerObject))
	mux.HandleFunc("HEAD /peer/object/{fid}", a.unsigned(a.peerObject))
	if !a.CacheOnly {
		mux.HandleFunc("DELETE /file/{fid}", a.signed(a.deleteFile))
	}
}

// unsigned adapts a handler that needs no account.
func (a *API) unsigned(h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { a.respond(w, r, h(w, r)) }
}

func pathFID(r *http.Request) (types.FID, error) {
	fid, err := types.ParseFID(r.PathValue("fid"))
	if err != nil {
		return fid, httpapi.Errorf(http.StatusBadRequest, "bad_fid", "%q is not a FID (64 hex characters): %v", r.PathValue("fid"), err)
	}
	return fid, nil
}

func (a *API) resolve(r *http.Request) (*read.File, error) {
	fid, err := pathFID(r)
	if err != nil {
		return nil, err
	}
	f, err := a.Reader.Resolve(r.Context(), fid)
	if errors.Is(err, read.ErrNoFile) {
		return nil, httpapi.Errorf(http.StatusNotFound, "no_file", "no file %s on chain or at any gateway", fid)
	}
	return f, err
}

// byteRange is a resolved Range header.
type byteRange struct {
	off, n  int64
	partial bool
}

// parseRange reads a Range header against a size: one range of the
// "bytes" unit (a-b, a-, -n). Several ranges are refused (416), a header
// that does not parse is refused (400), and a range starting past the end is
// unsatisfiable (416).
func parseRange(h string, size int64) (byteRange, error) {
	if h == "" {
		return byteRange{0, size, false}, nil
	}
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return byteRange{}, httpapi.Errorf(http.StatusBadRequest, "bad_range", "Range %q: only the bytes unit is served", h)
	}
	if strings.Contains(spec, ",") {
		return byteRange{}, httpapi.Errorf(http.StatusRequestedRangeNotSatisfiable, "multiple_ranges", "Range %q: ask for one range per request", h)
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return byteRange{}, httpapi.Errorf(http.StatusBadRequest, "bad_range", "Range %q: want bytes=FIRST-LAST, FIRST- or -SUFFIX", h)
	}
	num := func(s string) (int64, bool) {
		if s == "" || len(s) > 19 || strings.TrimLeft(s, "0123456789") != "" {
			return 0, false
		}
		v, err := strconv.ParseInt(s, 10, 64)
		return v, err == nil
	}
	unsat := httpapi.Errorf(http.StatusRequestedRangeNotSatisfiable, "range_not_satisfiable", "Range %q: the file has %d bytes", h, size)
	switch {
	case first == "":
		n, ok := num(last)
		if !ok {
			return byteRange{}, httpapi.Errorf(http.StatusBadRequest, "bad_range", "Range %q: bad suffix length", h)
		}
		if n == 0 || size == 0 {
			return byteRange{}, unsat
		}
		n = min(n, size)
		return byteRange{size - n, n, true}, nil
	default:
		lo, ok := num(first)
		if !ok {
			return byteRange{}, httpapi.Errorf(http.StatusBadRequest, "bad_range", "Range %q: bad first byte", h)
		}
		hi := size - 1
		if last != "" {
			if hi, ok = num(last); !ok || hi < lo {
				return byteRange{}, httpapi.Errorf(http.StatusBadRequest, "bad_range", "Range %q: bad last byte", h)
			}
		}
		if lo >= size {
			return byteRange{}, unsat
		}
		hi = min(hi, size-1)
		return byteRange{lo, hi - lo + 1, true}, nil
	}
}

// download serves a file (or one range of it). Nothing is sent before the
// first range's bytes are verified, so a wrong cipher, a missing file or a
// lost segment at the start is a clean error; a failure after that cuts the
// connection, so the client sees a short body, never a wrong or complete-
// looking one.
func (a *API) download(inline bool) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		start := time.Now()
		release, ok := a.perClient.TryAcquire(auth.ClientAddr(r))
		if !ok {
			return tooMany("%d downloads at once from one address at most", downloadsPerClient)
		}
		defer release()
		f, err := a.resolve(r)
		if err != nil {
			return err
		}
		private, err := a.mayRead(r, f)
		if err != nil {
			return err
		}
		if private {
			w.Header().Set("Cache-Control", "private, no-store")
		}
		size := int64(f.Layout.Size)
		rng, err := parseRange(r.Header.Get("Range"), size)
		if err != nil {
			var e *httpapi.Error
			if errors.As(err, &e) && e.Status == http.StatusRequestedRangeNotSatisfiable {
				w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
			}
			return err
		}
		var key *codec.Key
		if f.Layout.Encryption != types.EncryptionNone && size > 0 {
			c := r.Header.Get(CipherHeader)
			if c == "" {
				return httpapi.Errorf(http.StatusUnauthorized, "cipher_required", "the file is encrypted: send its cipher in the %s header", CipherHeader)
			}
			// Both limits count derivations only: a cipher whose key is
			// cached (the owner's, lately right) is never held back.
			allow := func() error {
				if d := a.wrongCipher.Wait(f.FID.String()); d > 0 {
					e := tooMany("wrong ciphers were sent for this file; wait %s", d.Round(time.Second))
					e.RetryAfter = d
					return e
				}
				if !a.kdfAllowed(auth.ClientAddr(r)) {
					return tooMany("at most %d key derivations a second from one address", kdfPerSecond)
				}
				return nil
			}
			if key, err = a.Ingest.DeriveAllowed(r.Context(), []byte(c), f.Layout.Salt, allow); err != nil {
				var he *httpapi.Error
				if r.Context().Err() != nil || errors.As(err, &he) {
					return err
				}
				return httpapi.Errorf(http.StatusBadRequest, "bad_cipher", "%v", err)
			}
		}
		h := w.Header()
		h.Set("Accept-Ranges", "bytes")
		h.Set("ETag", `"`+f.FID.String()+`"`)
		h.Set("Content-Length", strconv.FormatInt(rng.n, 10))
		h.Set("X-Content-Type-Options", "nosniff")
		status := http.StatusOK
		if rng.partial {
			status = http.StatusPartialContent
			h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", rng.off, rng.off+rng.n-1, size))
		}
		name := fileName(f)
		if inline {
			h.Set("Content-Disposition", "inline")
			// Uploaded content shown on the gateway's origin must not run
			// there (stored XSS): a sandbox without scripts, no fetches.
			h.Set("Content-Security-Policy", openCSP)
		} else {
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Content-Disposition", mimeAttachment(name))
		}
		if r.Method == http.MethodHead && !inline || rng.n == 0 {
			if inline {
				h.Set("Content-Type", "application/octet-stream")
			}
			w.WriteHeader(status)
			return nil
		}
		lw := &lazyWriter{w: w, rc: http.NewResponseController(w), idle: a.IOIdle, status: status, sniff: inline, head: r.Method == http.MethodHead}
		defer lw.rc.SetWriteDeadline(time.Time{}) // the connection may serve another request
		err = a.Reader.Read(r.Context(), lw, f, rng.off, rng.n, key)
		switch {
		case key != nil && errors.Is(err, codec.ErrAuthentication):
			a.wrongCipher.Fail(f.FID.String())
		case key != nil && err == nil:
			a.wrongCipher.Succeed(f.FID.String())
		}
		if err != nil && !lw.started {
			// The error answer is JSON: the file's headers do not apply.
			for _, k := range []string{"Content-Length", "Content-Range", "Content-Disposition", "Content-Type", "ETag"} {
				h.Del(k)
			}
		}
		if lw.started {
			a.Reader.Metrics().FirstByte.Observe(lw.first.Sub(start).Seconds())
			a.Reader.Metrics().BytesServed.Add(float64(lw.n))
		}
		switch {
		case errors.Is(err, errHeadDone):
			return nil
		case err == nil && lw.n != rng.n:
			a.Log.Error("download wrote the wrong length", "fid", f.FID, "wrote", lw.n, "want", rng.n)
			panic(http.ErrAbortHandler)
		case err == nil:
			return nil
		case lw.started:
			a.Log.Warn("download cut short", "fid", f.FID, "after", lw.n, "err", err)
			panic(http.ErrAbortHandler) // the client sees a short body
		case errors.Is(err, codec.ErrAuthentication):
			return httpapi.Errorf(http.StatusForbidden, "wrong_cipher", "%v", err)
		case errors.Is(err, codec.ErrNotEnoughFragments):
			return httpapi.Errorf(http.StatusServiceUnavailable, "unavailable", "%v", err)
		}
		return err
	}
}

var errHeadDone = errors.New("head: headers sent")

// lazyWriter sends the status and headers with the first verified bytes
// (sniffing the content type from them for inline previews).
type lazyWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	idle    time.Duration
	status  int
	sniff   bool
	head    bool
	started bool
	first   time.Time
	n       int64
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started, l.first = true, time.Now()
		if l.sniff {
			l.w.Header().Set("Content-Type", http.DetectContentType(p))
		}
		l.w.WriteHeader(l.status)
		if l.head {
			return 0, errHeadDone
		}
	}
	// A client that takes nothing for IOIdle is cut off; each write that
	// goes through moves the deadline on.
	_ = l.rc.SetWriteDeadline(time.Now().Add(l.idle))
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}

// tooMany is a 429 with a Retry-After.
func tooMany(format string, a ...any) *httpapi.Error {
	e := httpapi.Errorf(http.StatusTooManyRequests, "too_many_requests", format, a...)
	e.RetryAfter = time.Second
	return e
}

// kdfAllowed takes one of a client's key derivations.
func (a *API) kdfAllowed(client string) bool {
	l, ok := a.kdfRate.Get(client)
	if !ok {
		l = rate.NewLimiter(kdfPerSecond, kdfBurst)
		a.kdfRate.Put(client, l)
	}
	return l.Allow()
}

func fileName(f *read.File) string {
	switch {
	case f.Chain != nil && len(f.Chain.Owners) > 0:
		return f.Chain.Owners[0].Name
	case f.Pending != nil:
		return f.Pending.Name
	}
	return f.FID.String()
}

func mimeAttachment(name string) string {
	return fmt.Sprintf("attachment; filename=%q", strings.Map(func(r rune) rune {
		if r < 0x20 || r == '"' || r == '\\' || r > 0x7e {
			return '_'
		}
		return r
	}, name))
}

// Metadata is the answer of GET /file/metadata/{fid}.
type Metadata struct {
	FID        types.FID      `json:"fid"`
	Version    uint8          `json:"version"` // format version
	Size       uint64         `json:"size"`
	Segments   int            `json:"segments"`
	Encryption string         `json:"encryption"`
	State      string         `json:"state"`
	Owners     []ledger.Owner `json:"owners,omitempty"`
	Gateway    types.Address  `json:"gateway,omitempty"`
	// Pipeline is this gateway's state of the file, when it took the upload,
	// and Note why it is not advancing (for example too few nodes).
	Pipeline string `json:"pipeline,omitempty"`
	Note     string `json:"note,omitempty"`
	// Packed is set for a packed object (FID is its OID): buffered at this
	// gateway, and where it lies once declared.
	Packed *PackedInfo `json:"packed,omitempty"`
}

// PackedInfo is where a packed object is.
type PackedInfo struct {
	Buffered  bool                  `json:"buffered,omitempty"`
	Locations []ledger.PackLocation `json:"locations,omitempty"`
}

func (a *API) metadata(w http.ResponseWriter, r *http.Request) error {
	f, err := a.resolve(r)
	if err != nil {
		return err
	}
	if _, err := a.mayRead(r, f); err != nil {
		return err
	}
	m := Metadata{FID: f.FID, Version: f.Layout.Version, Size: f.Layout.Size, Segments: len(f.Layout.Segments), Encryption: f.Layout.Encryption.String(), State: "pending"}
	if o := f.Object; o != nil {
		m.State, m.Pipeline = pipeline.Buffered, pipeline.Buffered
		m.Owners = []ledger.Owner{{Address: o.Owner, Name: o.Name, Territory: o.Territory, Private: o.Private}}
		m.Packed = &PackedInfo{Buffered: o.Buffered}
		if o.Chain != nil {
			m.State, m.Packed.Locations = ledger.FileStored, o.Chain.Locations
		}
		httpapi.WriteJSON(w, http.StatusOK, m)
		return nil
	}
	if f.Chain != nil {
		m.State, m.Owners, m.Gateway = f.Chain.State, f.Chain.Owners, f.Chain.Gateway
	}
	if f.Pending != nil {
		m.Pipeline, m.Note = f.Pending.State, f.Pending.Note
		if f.Chain == nil {
			m.Owners = []ledger.Owner{{Address: f.Pending.Owner, Name: f.Pending.Name, Territory: f.Pending.Territory}}
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, m)
	return nil
}

// Location is one column's place.
type Location struct {
	Column   int           `json:"column"`
	Node     types.Address `json:"node"`
	Endpoint string        `json:"endpoint"`
	Reported bool          `json:"reported"`
	// Down says why the column is not healthy (its node suspect, faulty
	// or exiting, or the column lost); empty when it is.
	Down string `json:"down,omitempty"`
}

func (a *API) location(w http.ResponseWriter, r *http.Request) error {
	f, err := a.resolve(r)
	if err != nil {
		return err
	}
	if f.Chain == nil {
		return httpapi.Errorf(http.StatusConflict, "not_declared", "%s is not placed on nodes yet (pending at a gateway)", f.FID)
	}
	ends := a.Reader.NodeEndpoints(r.Context())
	out := make([]Location, 0, types.TotalShards)
	for j, c := range f.Chain.Columns {
		if c.Node == (types.Address{}) {
			continue // an empty file has no columns
		}
		out = append(out, Location{Column: j, Node: c.Node, Endpoint: ends[c.Node], Reported: c.Reported, Down: c.Down})
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"fid": f.FID, "state": f.Chain.State, "columns": out})
	return nil
}

// list answers an owner's files to the owner only: names and FIDs are
// nobody else's business (and a FID is what reads a public file).
func (a *API) list(w http.ResponseWriter, r *http.Request, user types.Address) error {
	owner, err := types.ParseAddress(r.PathValue("owner"))
	if err != nil {
		return httpapi.Errorf(http.StatusBadRequest, "bad_address", "%v", err)
	}
	if owner != user {
		return httpapi.Errorf(http.StatusForbidden, "not_owner", "%s lists only its own files", user)
	}
	files, err := a.Reader.Files(r.Context(), owner)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, files)
	return nil
}

// NodeInfo is a storage node as this gateway sees it: the chain's record
// and the scheduler's score and cooldown.
type NodeInfo struct {
	Address  types.Address `json:"address"`
	Endpoint string        `json:"endpoint"`
	State    string        `json:"state"`
	Capacity uint64        `json:"capacity"`
	Used     uint64        `json:"used"`
	Score    float64       `json:"score"`
	Cooldown time.Time     `json:"cooldown_until,omitzero"`
	// The chain's proof record: proofs passed and missed (or wrong).
	ProofsPassed uint64 `json:"proofs_passed"`
	ProofsMissed uint64 `json:"proofs_missed"`
	Stake        uint64 `json:"stake"`
}

func (a *API) nodes(w http.ResponseWriter, r *http.Request) error {
	ns, err := a.Chain.Nodes(r.Context())
	if err != nil {
		return err
	}
	scores := map[types.Address]int{}
	var sc []scheduler.NodeScore
	if a.Scores != nil {
		sc = a.Scores.Scores()
		for i, s := range sc {
			scores[s.Address] = i
		}
	}
	out := make([]NodeInfo, len(ns))
	for i, n := range ns {
		out[i] = NodeInfo{Address: n.Address, Endpoint: n.Endpoint, State: n.State, Capacity: n.Capacity, Used: n.Assigned, Score: scheduler.PriorScore(),
			ProofsPassed: n.Passed, ProofsMissed: n.Missed, Stake: n.Stake}
		if j, ok := scores[n.Address]; ok {
			out[i].Score, out[i].Cooldown = sc[j].Score, sc[j].CooldownUntil
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

// deleteFile removes the caller's ownership of a file on chain (the file goes
// with its last owner and the nodes collect its fragments), through this
// gateway's pipeline when it took the file for the caller.
func (a *API) deleteFile(w http.ResponseWriter, r *http.Request, user types.Address) error {
	f, err := a.resolve(r)
	if err != nil {
		return err
	}
	if o := f.Object; o != nil {
		return a.deleteObject(w, r, user, o)
	}
	// A file this gateway took for the user is deleted through its
	// pipeline, in order with declaring and distributing it: the
	// distributor deletes it on chain (an order it declared meanwhile too)
	// and frees the work copy. The answer waits for that, up to a bound.
	if _, err := a.Queue.Get(f.FID, user); err == nil {
		if err := a.Queue.Delete(f.FID, user, a.now()); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(r.Context(), deleteWait)
		defer cancel()
		for {
			changed := a.Queue.Changed()
			if _, err := a.Queue.Get(f.FID, user); errors.Is(err, pipeline.ErrNotFound) {
				w.WriteHeader(http.StatusNoContent)
				return nil
			}
			select {
			case <-changed:
			case <-wctx.Done():
				httpapi.WriteJSON(w, http.StatusAccepted, map[string]string{"fid": f.FID.String(), "state": pipeline.Deleting})
				return nil
			}
		}
	}
	// Otherwise the owners on chain decide.
	// (A file of more owners than its record lists: the chain decides.)
	if f.Chain == nil || (!f.Chain.HasOwner(user) && f.Chain.OwnerCount <= uint64(len(f.Chain.Owners))) {
		return httpapi.Errorf(http.StatusForbidden, "not_owner", "%s does not own %s", user, f.FID)
	}
	if err := a.Chain.Submit(r.Context(), ledger.Msg{DeleteFile: &ledger.DeleteFile{FID: f.FID, Owner: user}}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// openCSP is the policy of /file/open answers: shown, never run.
const openCSP = "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'"

// deleteWait bounds how long DELETE waits for the distributor to carry out
// a delete; past it the answer is 202 and the delete goes on.
const deleteWait = 30 * time.Second

// peerFile tells a peer gateway whether this gateway holds fid: pending here
// (with its layout, which the peer checks against the FID) or cached.
func (a *API) peerFile(w http.ResponseWriter, r *http.Request) error {
	fid, err := pathFID(r)
	if err != nil {
		return err
	}
	if held, err := a.Queue.Holds(fid); err == nil && held {
		if l, err := a.Work.Layout(fid); err == nil {
			pf := read.PeerFile{Layout: l}
			if recs, err := a.Queue.Records(fid); err == nil && len(recs) > 0 {
				pf.Private = recs[0].Private
			}
			httpapi.WriteJSON(w, http.StatusOK, pf)
			return nil
		}
	}
	if a.Cache.HasFile(fid) {
		httpapi.WriteJSON(w, http.StatusOK, read.PeerFile{})
		return nil
	}
	return httpapi.Errorf(http.StatusNotFound, "not_held", "this gateway does not hold %s", fid)
}

// peerFragment serves a fragment this gateway holds, from its cache or its
// work area: whole, or with offset and length a Bao slice of that range (v2
// fragments), whose outboard it builds from the local copy. The asker
// verifies either against the hash it names.
func (a *API) peerFragment(w http.ResponseWriter, r *http.Request) error {
	fid, err := pathFID(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	seg, err1 := strconv.ParseUint(r.PathValue("seg"), 10, 32)
	idx, err2 := strconv.Atoi(r.PathValue("idx"))
	h, err3 := types.ParseHash(q.Get("hash"))
	if err1 != nil || err2 != nil || err3 != nil || idx < 0 || idx >= types.TotalShards {
		return httpapi.Errorf(http.StatusBadRequest, "bad_fragment", "want /peer/fragment/FID/SEGMENT/INDEX?hash=HASH[&offset=N&length=N]")
	}
	sliced := q.Has("offset") || q.Has("length")
	off, err1 := strconv.ParseInt(q.Get("offset"), 10, 64)
	n, err2 := strconv.ParseInt(q.Get("length"), 10, 64)
	if sliced && (err1 != nil || err2 != nil || off < 0 || n <= 0) {
		return httpapi.Errorf(http.StatusBadRequest, "bad_range", "offset and length must be numbers, length above 0")
	}
	rc, err := a.Cache.Open(h)
	if err != nil {
		if held, herr := a.Queue.Holds(fid); herr != nil || !held {
			return httpapi.Errorf(http.StatusNotFound, "not_held", "no such fragment here")
		}
		if rc, err = a.Work.Fragment(fid, seg, idx); err != nil {
			return httpapi.Errorf(http.StatusNotFound, "not_held", "no such fragment here")
		}
	}
	defer rc.Close()
	if !sliced {
		w.Header().Set("Content-Type", "application/octet-stream")
		if _, err := io.Copy(w, rc); err != nil {
			panic(http.ErrAbortHandler) // a short body, not a wrong one
		}
		return nil
	}
	release, err := a.peerSlices.Acquire(r.Context())
	if err != nil {
		return err
	}
	defer release()
	b, err := io.ReadAll(io.LimitReader(rc, types.FragmentSize+1))
	if err != nil {
		return err
	}
	ob, root := codec.Outboard(b)
	if root != h || len(b) > types.FragmentSize {
		// Not a v2 fragment (v1 is read whole), or the local copy is bad.
		return httpapi.Errorf(http.StatusNotFound, "not_held", "no v2 fragment %s here", h)
	}
	if off > int64(len(b)) || n > int64(len(b))-off {
		return httpapi.Errorf(http.StatusBadRequest, "bad_range", "%d bytes at %d are outside the %d-byte fragment", n, off, len(b))
	}
	w.Header().Set("Content-Type", nodeapi.SliceType)
	w.Header().Set("Content-Length", strconv.FormatInt(codec.SliceSize(int64(len(b)), off, n), 10))
	if err := codec.WriteSlice(w, bytes.NewReader(b), ob, off, n); err != nil {
		panic(http.ErrAbortHandler)
	}
	return nil
}

// mayRead lets a request read f: any request when f is public; when it is
// private, a request signed by an owner or carrying a share link an owner
// made, or a gateway the owner authorizes made for them (auth.VerifyShare).
// It reports whether f is private.
func (a *API) mayRead(r *http.Request, f *read.File) (bool, error) {
	owners, private := f.Access()
	if !private {
		return false, nil
	}
	owner := func(x types.Address) bool { return slices.Contains(owners, x) }
	if q := r.URL.Query(); auth.IsShare(q) {
		sh, err := auth.VerifyShare(q, f.FID, a.now())
		if err != nil {
			return true, httpapi.Errorf(http.StatusForbidden, "bad_share_link", "%v", err)
		}
		if !owner(sh.For) {
			return true, httpapi.Errorf(http.StatusForbidden, "bad_share_link", "the link was made for %s, who does not own %s", sh.For, f.FID)
		}
		if sh.Delegated() {
			ok, err := a.Chain.Authorizes(r.Context(), sh.For, sh.By)
			if err != nil {
				return true, err
			}
			if !ok {
				return true, httpapi.Errorf(http.StatusForbidden, "bad_share_link", "the link was made by the gateway %s, which %s does not authorize (any more)", sh.By, sh.For)
			}
		}
		return true, nil
	}
	s, err := a.verifier.Check(r)
	if errors.Is(err, auth.ErrUnsigned) {
		return true, httpapi.Errorf(http.StatusUnauthorized, "private", "%s is private: sign the request as its owner, or use a share link (deoss share)", f.FID)
	}
	if err != nil {
		return true, httpapi.Errorf(http.StatusUnauthorized, "unauthenticated", "%v", err)
	}
	if !owner(s.Account) {
		return true, httpapi.Errorf(http.StatusForbidden, "private", "%s is private to its owner", f.FID)
	}
	return true, a.verifier.Spend(s, auth.ClientAddr(r))
}

// deleteObject deletes a packed object: from this gateway's buffer, and on
// chain once it is declared there (also when that happened meanwhile).
func (a *API) deleteObject(w http.ResponseWriter, r *http.Request, user types.Address, o *read.Object) error {
	if o.Owner != user {
		return httpapi.Errorf(http.StatusForbidden, "not_owner", "%s does not own %s", user, o.OID)
	}
	if o.Buffered && a.Packing != nil {
		if err := a.Packing.Delete(o.OID); err != nil && !errors.Is(err, pack.ErrNotFound) {
			return err
		}
		f, err := a.Reader.Resolve(r.Context(), o.OID)
		switch {
		case errors.Is(err, read.ErrNoFile):
			w.WriteHeader(http.StatusNoContent)
			return nil
		case err != nil:
			return err
		}
		o = f.Object
	}
	if o.Chain != nil {
		if err := a.Chain.Submit(r.Context(), ledger.Msg{DeleteFile: &ledger.DeleteFile{FID: o.OID, Owner: user}}); err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// peerObject serves a small object from this gateway's pack buffer to a
// peer (its pack is not declared yet): the bytes, verified here, and the
// owner the OID binds; the peer hashes them again before serving any.
func (a *API) peerObject(w http.ResponseWriter, r *http.Request) error {
	oid, err := pathFID(r)
	if err != nil {
		return err
	}
	if a.Packing == nil {
		return httpapi.Errorf(http.StatusNotFound, "not_held", "this gateway packs nothing")
	}
	o, sr, err := a.Packing.Read(oid)
	if errors.Is(err, pack.ErrNotFound) {
		return httpapi.Errorf(http.StatusNotFound, "not_held", "this gateway does not buffer %s", oid)
	}
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set(read.HeaderObjectOwner, o.Owner.String())
	h.Set(read.HeaderObjectName, url.QueryEscape(o.Name))
	h.Set(read.HeaderObjectPrivate, strconv.FormatBool(o.Private))
	h.Set("Content-Length", strconv.FormatUint(o.Length, 10))
	h.Set("Content-Type", "application/octet-stream")
	if r.Method == http.MethodHead {
		return nil
	}
	_, err = io.Copy(w, sr)
	return err
}
