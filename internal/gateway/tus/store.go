package tus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/deoss/deoss/internal/gateway/upload"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// Request is what the caller knows of a tus request.
type Request struct {
	User types.Address
	// Verify says whether the body read so far may be kept (its signed
	// hash matched, or it was sent unsigned over TLS); nil: always.
	Verify func() error
}

type ctxKey struct{}

// WithRequest gives the store the request's account.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, ctxKey{}, r)
}

// RequestFrom returns what WithRequest put in ctx.
func RequestFrom(ctx context.Context) (Request, bool) {
	r, ok := ctx.Value(ctxKey{}).(Request)
	return r, ok
}

func request(ctx context.Context) (Request, error) {
	r, ok := RequestFrom(ctx)
	if !ok {
		return r, errUnauthenticated
	}
	return r, nil
}

// Finisher turns a complete upload into a file (or a packed object) and
// returns its id; the same bytes finished twice give the same id once.
type Finisher interface {
	Finish(ctx context.Context, sess *upload.Session, body io.Reader) (types.FID, error)
}

// Errors as tus clients get them (tusd's text bodies).
var (
	errUnauthenticated = handler.NewError("ERR_UNAUTHENTICATED", "sign the request", http.StatusUnauthorized)
	errForbidden       = handler.NewError("ERR_FORBIDDEN", "the upload is another account's", http.StatusForbidden)
	errNoDownload      = handler.NewError("ERR_NOT_IMPLEMENTED", "download the file by its FID", http.StatusNotImplemented)
)

// Store is the tusd DataStore over the session store.
type Store struct {
	sessions *upload.Sessions
	finish   Finisher
}

// NewStore makes the store.
func NewStore(s *upload.Sessions, f Finisher) *Store { return &Store{sessions: s, finish: f} }

// extra is what a stream session keeps for tus.
type extra struct {
	Meta handler.MetaData `json:"meta,omitempty"`
}

// NewUpload creates a stream session; the metadata names the file
// ("name", or the "filename" tus-js-client and Uppy send), its territory
// and whether it is private.
func (s *Store) NewUpload(ctx context.Context, info handler.FileInfo) (handler.Upload, error) {
	req, err := request(ctx)
	if err != nil {
		return nil, err
	}
	name := info.MetaData["name"]
	if name == "" {
		name = info.MetaData["filename"]
	}
	private, _ := strconv.ParseBool(info.MetaData["private"])
	spec := upload.Spec{Owner: req.User, Name: name, Territory: info.MetaData["territory"], Size: info.Size, Private: private, Partial: info.IsPartial}
	if info.SizeIsDeferred {
		spec.Size = -1
	}
	if !info.IsPartial { // a partial's name and territory are its final's
		if err := ledger.ValidName(name); err != nil {
			return nil, badRequest("ERR_BAD_NAME", fmt.Sprintf("Upload-Metadata name: %v", err))
		}
		if spec.Territory == "" {
			return nil, badRequest("ERR_NO_TERRITORY", "Upload-Metadata must name a territory")
		}
	}
	x, _ := json.Marshal(extra{Meta: info.MetaData})
	var partials []string
	if info.IsFinal {
		partials = info.PartialUploads
	}
	sess, err := s.sessions.CreateStream(spec, x, partials)
	if err != nil {
		return nil, storeError(err)
	}
	return &tusUpload{s: s, id: sess.ID, user: req.User}, nil
}

// GetUpload finds an upload of the request's account.
func (s *Store) GetUpload(ctx context.Context, id string) (handler.Upload, error) {
	req, err := request(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.sessions.Stream(id, req.User); err != nil {
		return nil, storeError(err)
	}
	return &tusUpload{s: s, id: id, user: req.User}, nil
}

// FID is the file an upload became, for the response that finishes it.
func (s *Store) FID(ctx context.Context, id string) (types.FID, bool) {
	req, err := request(ctx)
	if err != nil {
		return types.FID{}, false
	}
	sess, err := s.sessions.Stream(id, req.User)
	if err != nil || sess.FID == (types.FID{}) {
		return types.FID{}, false
	}
	return sess.FID, true
}

// The extensions tusd asks the store for.
func (s *Store) AsTerminatableUpload(u handler.Upload) handler.TerminatableUpload {
	return u.(*tusUpload)
}
func (s *Store) AsConcatableUpload(u handler.Upload) handler.ConcatableUpload { return u.(*tusUpload) }
func (s *Store) AsLengthDeclarableUpload(u handler.Upload) handler.LengthDeclarableUpload {
	return u.(*tusUpload)
}

type tusUpload struct {
	s    *Store
	id   string
	user types.Address
}

func (u *tusUpload) GetInfo(ctx context.Context) (handler.FileInfo, error) {
	sess, err := u.s.sessions.Stream(u.id, u.user)
	if err != nil {
		return handler.FileInfo{}, storeError(err)
	}
	// Complete but not finished: a crash came between the last byte and
	// the file (a client asking now would think it done). Finish it.
	if !sess.Spec.Partial && sess.Spec.Size >= 0 && sess.Offset == sess.Spec.Size && sess.FID == (types.FID{}) && len(sess.Partials) == 0 {
		if err := u.finishSession(ctx); err != nil {
			return handler.FileInfo{}, err
		}
		if sess, err = u.s.sessions.Stream(u.id, u.user); err != nil {
			return handler.FileInfo{}, storeError(err)
		}
	}
	var x extra
	_ = json.Unmarshal(sess.Extra, &x)
	meta := handler.MetaData{}
	for k, v := range x.Meta {
		meta[k] = v
	}
	if sess.FID != (types.FID{}) {
		meta["fid"] = sess.FID.String()
	}
	return handler.FileInfo{ID: sess.ID, Size: max(sess.Spec.Size, 0), SizeIsDeferred: sess.Spec.Size < 0, Offset: sess.Offset,
		MetaData: meta, IsPartial: sess.Spec.Partial, IsFinal: len(sess.Partials) > 0, PartialUploads: sess.Partials}, nil
}

func (u *tusUpload) WriteChunk(ctx context.Context, offset int64, src io.Reader) (int64, error) {
	req, err := request(ctx)
	if err != nil {
		return 0, err
	}
	n, err := u.s.sessions.Append(ctx, u.id, u.user, offset, src, req.Verify)
	var te handler.Error
	if errors.As(err, &te) {
		return 0, te // the body's check
	}
	if err != nil && n == 0 {
		return 0, storeError(err)
	}
	return n, nil // bytes kept; tusd reports a body that broke off itself
}

func (u *tusUpload) GetReader(context.Context) (io.ReadCloser, error) { return nil, errNoDownload }

// FinishUpload makes the file once the last byte is in (a partial waits
// for its final).
func (u *tusUpload) FinishUpload(ctx context.Context) error {
	sess, err := u.s.sessions.Stream(u.id, u.user)
	if err != nil {
		return storeError(err)
	}
	if sess.Spec.Partial || sess.FID != (types.FID{}) {
		return nil
	}
	return u.finishSession(ctx)
}

// ConcatUploads finishes a final upload: its session reads the partials
// (checked complete and the account's when it was created).
func (u *tusUpload) ConcatUploads(ctx context.Context, _ []handler.Upload) error {
	return u.finishSession(ctx)
}

func (u *tusUpload) finishSession(ctx context.Context) error {
	rc, sess, err := u.s.sessions.StreamReader(u.id, u.user)
	if errors.Is(err, upload.ErrFinished) {
		return nil
	}
	if err != nil {
		return storeError(err)
	}
	defer rc.Close()
	fid, err := u.s.finish.Finish(ctx, sess, rc)
	if err != nil {
		return err
	}
	return storeError(u.s.sessions.Finish(u.id, u.user, fid))
}

func (u *tusUpload) DeclareLength(_ context.Context, length int64) error {
	return storeError(u.s.sessions.DeclareSize(u.id, u.user, length))
}

func (u *tusUpload) Terminate(context.Context) error {
	return storeError(u.s.sessions.Remove(u.id, u.user))
}

func badRequest(code, msg string) error { return handler.NewError(code, msg, http.StatusBadRequest) }

// storeError maps the session store's errors to tus answers.
func storeError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, upload.ErrNotFound):
		return handler.ErrNotFound
	case errors.Is(err, upload.ErrForbidden):
		return errForbidden
	case errors.Is(err, upload.ErrOffset):
		return handler.NewError("ERR_MISMATCHED_OFFSET", err.Error(), http.StatusConflict)
	case errors.Is(err, upload.ErrTooLong):
		return handler.NewError("ERR_UPLOAD_SIZE_EXCEEDED", err.Error(), http.StatusRequestEntityTooLarge)
	case errors.Is(err, upload.ErrBadSpec), errors.Is(err, upload.ErrNotReady), errors.Is(err, upload.ErrFinished):
		return badRequest("ERR_BAD_UPLOAD", err.Error())
	}
	return err
}
