package api

import (
	"context"
	"errors"
	"io"
	"net/http"

	tusd "github.com/tus/tusd/v2/pkg/handler"
	"github.com/tus/tusd/v2/pkg/memorylocker"
	xslog "golang.org/x/exp/slog"

	"github.com/deoss/deoss/internal/gateway/ingest"
	"github.com/deoss/deoss/internal/gateway/pack"
	"github.com/deoss/deoss/internal/gateway/tus"
	"github.com/deoss/deoss/internal/gateway/upload"
	"github.com/deoss/deoss/internal/types"
)

// FIDHeader carries the file's id in the response that finishes a tus
// upload.
const FIDHeader = "Deoss-Fid"

// tusRoutes serves tus 1.0 at /tus/ (internal/gateway/tus): every request
// but OPTIONS signed as the native API's, bodies checked against their
// signed hash before their bytes are kept.
func (a *API) tusRoutes(mux *http.ServeMux) error {
	store := tus.NewStore(a.Sessions, tusFinisher{a})
	composer := tusd.NewStoreComposer()
	composer.UseCore(store)
	composer.UseTerminater(store)
	composer.UseConcater(store)
	composer.UseLengthDeferrer(store)
	composer.UseLocker(memorylocker.New()) // one request at a time per upload
	h, err := tusd.NewHandler(tusd.Config{
		BasePath:        "/tus/",
		StoreComposer:   composer,
		DisableDownload: true,                                             // files are read by FID
		Logger:          xslog.New(xslog.NewTextHandler(io.Discard, nil)), // our own logs say what matters
		PreUploadCreateCallback: func(ev tusd.HookEvent) (tusd.HTTPResponse, tusd.FileInfoChanges, error) {
			return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, a.tusCheckSpace(ev)
		},
		PreFinishResponseCallback: func(ev tusd.HookEvent) (tusd.HTTPResponse, error) {
			resp := tusd.HTTPResponse{Header: tusd.HTTPHeader{}}
			if fid, ok := store.FID(ev.Context, ev.Upload.ID); ok {
				resp.Header[FIDHeader] = fid.String()
			}
			return resp, nil
		},
	})
	if err != nil {
		return err
	}
	inner := http.StripPrefix("/tus", h)
	mux.HandleFunc("/tus/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions { // capabilities, for browsers' preflights
			inner.ServeHTTP(w, r)
			return
		}
		a.respond(w, r, a.authorize(w, r, bodyTus, func(w http.ResponseWriter, r *http.Request, user types.Address) error {
			req := tus.Request{User: user}
			if vb, ok := r.Body.(*verifiedBody); ok {
				req.Verify = vb.verify
			}
			inner.ServeHTTP(w, r.WithContext(tus.WithRequest(r.Context(), req)))
			return nil
		}))
	})
	return nil
}

// tusCheckSpace refuses at creation an upload its territory cannot take.
func (a *API) tusCheckSpace(ev tusd.HookEvent) error {
	info := ev.Upload
	if info.IsPartial || info.SizeIsDeferred || info.IsFinal {
		return nil // counted as the bytes come, and checked again at the end
	}
	req, ok := tus.RequestFrom(ev.Context)
	if !ok {
		return nil
	}
	err := a.Ingest.CheckSpace(ev.Context, req.User, info.MetaData["territory"], info.Size, types.EncryptionNone)
	if err == nil {
		return nil
	}
	status := http.StatusForbidden
	if e := toHTTP(err); e != nil {
		status = e.Status
	}
	return tusd.NewError("ERR_NO_SPACE", err.Error(), status)
}

// tusFinisher makes a complete tus upload a file, or a packed object when
// it is small: as a native session's completion, without gateway-side
// encryption (a client sends ciphertext if it wants it encrypted).
type tusFinisher struct{ a *API }

func (f tusFinisher) Finish(ctx context.Context, sess *upload.Session, body io.Reader) (types.FID, error) {
	a, spec := f.a, sess.Spec
	if err := a.Ingest.CheckSpaceOwn(ctx, spec.Owner, spec.Territory, spec.Size, types.EncryptionNone, sess.Bytes()); err != nil {
		return types.FID{}, err
	}
	if a.Packing != nil && a.Packing.Takes(spec.Size) {
		o, err := a.Packing.Put(pack.Object{Owner: spec.Owner, Name: spec.Name, Territory: spec.Territory, Private: spec.Private, Length: uint64(spec.Size)}, body)
		return o.OID, err
	}
	rec, err := a.Ingest.Accept(ctx, body, ingest.File{Owner: spec.Owner, Name: spec.Name, Territory: spec.Territory, Size: spec.Size,
		Private: spec.Private, Held: sess})
	if err != nil {
		return types.FID{}, err
	}
	return rec.FID, nil
}

// verifiedBody is a tus request's body as its signature checks it: bytes
// may be kept once it ended with its signed hash matching, or at any point
// when it was sent unsigned (over TLS).
type verifiedBody struct {
	rc       io.ReadCloser
	unsigned bool
	ended    bool
	err      error
}

func (v *verifiedBody) Read(p []byte) (int, error) {
	n, err := v.rc.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		v.ended = true
	case err != nil && v.err == nil:
		v.err = err
	}
	return n, err
}

func (v *verifiedBody) Close() error { return v.rc.Close() }

func (v *verifiedBody) verify() error {
	switch {
	case v.unsigned:
		return nil
	case v.err != nil:
		return tusd.NewError("ERR_BODY_MISMATCH", v.err.Error(), http.StatusBadRequest)
	case !v.ended:
		return tusd.NewError("ERR_BODY_UNCHECKED", "the body broke off before its signed hash could be checked; send it again from the offset", http.StatusBadRequest)
	}
	return nil
}
