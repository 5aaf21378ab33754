// Package httpapi is what deoss's HTTP servers share: errors that carry their
// status and a machine-readable code, written once at the edge as JSON
// {"error": "...", "code": "..."}.
package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"golang.org/x/sync/errgroup"
)

// Error is an API error: its HTTP status, a stable code and a message that
// says what was wrong.
type Error struct {
	Status int
	Code   string
	Msg    string
	// RetryAfter, when set, is sent as Retry-After (whole seconds): when a
	// refused client (429, 503) may try again.
	RetryAfter time.Duration
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
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
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

// OpsGuard guards operators' routes (metrics, pprof) on a listener users
// reach: with a token, a request must carry "Authorization: Bearer <token>";
// without one, only loopback clients are served. A separate operators'
// listener needs no guard.
func OpsGuard(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				WriteError(w, Errorf(http.StatusUnauthorized, "ops_token", "send the operators' token: Authorization: Bearer <metrics_token>"))
				return
			}
		} else if !loopback(r.RemoteAddr) {
			WriteError(w, Errorf(http.StatusForbidden, "ops_local_only", "metrics are served to local clients only here: set metrics_token or metrics_listen"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func loopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// OpsHandler serves the operators' routes: GET /metrics of reg and, when
// pprof is on, Go's profiler under /debug/pprof/.
func OpsHandler(reg *prometheus.Registry, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	}
	return mux
}
