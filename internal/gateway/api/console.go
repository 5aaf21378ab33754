package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/gateway/console"
	"github.com/deoss/deoss/internal/httpapi"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// consoleRoutes serves the web console and its sign-in (docs/console.md).
func (a *API) consoleRoutes(mux *http.ServeMux) {
	mux.Handle("GET /console/", console.Files())
	mux.HandleFunc("GET /console/signin", func(w http.ResponseWriter, r *http.Request) { a.respond(w, r, a.consoleSignIn(w, r)) })
	mux.HandleFunc("POST /console/signout", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(console.Header) == "" {
			a.respond(w, r, httpapi.Errorf(http.StatusForbidden, "console_header", "send the %s header", console.Header))
			return
		}
		a.Console.End(w, r)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /console/space", a.signed(a.consoleSpace))
	mux.HandleFunc("GET /console/chain", a.signed(a.consoleChain))
	mux.HandleFunc("POST /console/share/{fid}", a.signed(a.consoleShare))
	mux.HandleFunc("GET /console/me", func(w http.ResponseWriter, r *http.Request) {
		user, ok := a.Console.Account(r)
		if !ok {
			a.respond(w, r, httpapi.Errorf(http.StatusUnauthorized, "signed_out", "sign in with the link deoss console prints"))
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, struct {
			Account types.Address `json:"account"`
			Gateway types.Address `json:"gateway"`
		}{user, a.Self})
	})
}

// consoleSignIn exchanges a sign-in link for a session: the link's
// signature, its gateway, its expiry, the account's authorization of this
// gateway, and its nonce (spent: a link works once).
func (a *API) consoleSignIn(w http.ResponseWriter, r *http.Request) error {
	now := a.now()
	c, err := console.Check(r.URL.Query().Get("t"), a.Self, now)
	if err != nil {
		return httpapi.Errorf(http.StatusUnauthorized, "bad_link", "%v", err)
	}
	ok, err := a.Chain.Authorized(r.Context(), c.Account)
	if err != nil {
		return err
	}
	if !ok {
		return httpapi.Errorf(http.StatusForbidden, "not_authorized", "%s has not authorized this gateway (deoss gateway authorize)", c.Account)
	}
	if err := a.Replay.Add(c.Account, auth.ClientAddr(r), "console-"+c.Nonce, c.Expires, now); err != nil {
		if errors.Is(err, auth.ErrReplayed) {
			return httpapi.Errorf(http.StatusUnauthorized, "link_used", "this sign-in link was used already; ask for a new one (deoss console)")
		}
		return err
	}
	a.Console.Start(w, r, c.Account)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
	return nil
}

// authorizeConsole runs h for a console session's request: the cookie and
// the console header (checked by Sessions.Account) stand for the
// signature; the account must still authorize this gateway. Nothing signs
// the body, so it is taken as an unsigned payload is: over TLS, or where
// the gateway allows plain HTTP.
func (a *API) authorizeConsole(w http.ResponseWriter, r *http.Request, kind bodyKind, user types.Address, h handler) error {
	ok, err := a.Chain.Authorized(r.Context(), user)
	if err != nil {
		return err
	}
	if !ok {
		return httpapi.Errorf(http.StatusForbidden, "not_authorized", "%s has not authorized this gateway (deoss gateway authorize)", user)
	}
	if r.TLS == nil && !a.AllowInsecure && r.Method != http.MethodGet && r.Method != http.MethodHead {
		return httpapi.Errorf(http.StatusForbidden, "tls_required", "the console changes files only over TLS (https)")
	}
	switch kind {
	case bodySmall:
		r.Body = http.MaxBytesReader(w, r.Body, maxSmallBody)
	case bodyStream, bodyChunk:
		r.Body = a.idleBody(w, r)
	case bodyTus:
		r.Body = &verifiedBody{rc: a.idleBody(w, r), unsigned: true}
	}
	return h(w, r, user)
}

// territoryLister lists an account's territories (the gateway's chain view).
type territoryLister interface {
	Territories(ctx context.Context, owner types.Address) ([]ledger.Territory, error)
}

// consoleSpace answers the account's territories for the space page.
func (a *API) consoleSpace(w http.ResponseWriter, r *http.Request, user types.Address) error {
	tl, ok := a.Chain.(territoryLister)
	if !ok {
		return httpapi.Errorf(http.StatusNotImplemented, "no_territories", "this gateway cannot list territories")
	}
	ts, err := tl.Territories(r.Context(), user)
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []ledger.Territory{}
	}
	httpapi.WriteJSON(w, http.StatusOK, ts)
	return nil
}

// blockLister reads the chain's latest blocks (the gateway's chain view).
type blockLister interface {
	RecentBlocks(ctx context.Context, n int) ([]chain.Block, error)
}

// consoleChain answers the chain's height and its last ten blocks.
func (a *API) consoleChain(w http.ResponseWriter, r *http.Request, _ types.Address) error {
	bl, ok := a.Chain.(blockLister)
	if !ok {
		return httpapi.Errorf(http.StatusNotImplemented, "no_blocks", "this gateway cannot list blocks")
	}
	blocks, err := bl.RecentBlocks(r.Context(), 10)
	if err != nil {
		return err
	}
	var height int64
	if len(blocks) > 0 {
		height = blocks[0].Height
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"height": height, "blocks": blocks})
	return nil
}

// defaultShare is how long a console share link is good unless ?for= says.
const defaultShare = 24 * time.Hour

// consoleShare makes a share link to one of the account's files, signed
// by this gateway for them (auth.ShareForQuery): the console holds no user
// key, so the gateway the account authorized vouches for it, and the link
// stops reading when the account deauthorizes the gateway.
func (a *API) consoleShare(w http.ResponseWriter, r *http.Request, user types.Address) error {
	if a.ShareKey == nil {
		return httpapi.Errorf(http.StatusNotImplemented, "no_share", "this gateway does not make share links")
	}
	d := defaultShare
	if v := r.URL.Query().Get("for"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 || d > auth.MaxShareLifetime {
			return httpapi.Errorf(http.StatusBadRequest, "bad_duration", "for=%q: want a duration such as 24h, at most %s", v, auth.MaxShareLifetime)
		}
	}
	f, err := a.resolve(r)
	if err != nil {
		return err
	}
	if owners, _ := f.Access(); !slices.Contains(owners, user) {
		return httpapi.Errorf(http.StatusForbidden, "not_owner", "%s does not own %s", user, f.FID)
	}
	exp := a.now().Add(d).Truncate(time.Second)
	q := auth.ShareForQuery(a.ShareKey, user, f.FID, exp)
	httpapi.WriteJSON(w, http.StatusOK, struct {
		URL     string    `json:"url"`
		Expires time.Time `json:"expires"`
	}{"/file/download/" + f.FID.String() + "?" + q.Encode(), exp.UTC()})
	return nil
}
