// Package httpapi is what deoss's HTTP servers share: errors that carry their
// status and a machine-readable code, written once at the edge as JSON
// {"error": "...", "code": "..."}.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
)

// Error is an API error: its HTTP status, a stable code and a message that
// says what was wrong.
type Error struct {
	Status int
	Code   string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Errorf makes an Error.
func Errorf(status int, code, format string, a ...any) *Error {
	return &Error{Status: status, Code: code, Msg: fmt.Sprintf(format, a...)}
}

// WriteJSON writes v as JSON with a status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes e as the JSON error body.
func WriteError(w http.ResponseWriter, e *Error) {
	WriteJSON(w, e.Status, map[string]string{"error": e.Msg, "code": e.Code})
}

// Serve runs hs on ln in eg until ctx ends, then shuts it down, letting
// requests in flight finish for up to 10 s. Both goroutines are eg's, so
// eg.Wait joins them.
func Serve(ctx context.Context, eg *errgroup.Group, hs *http.Server, ln net.Listener) {
	eg.Go(func() error {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	eg.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return hs.Shutdown(sctx)
	})
}
