package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Operators' routes on a users' listener: loopback only without a token;
// with one, only its holders, wherever they are.
func TestOpsGuard(t *testing.T) {
	ops := OpsHandler(prometheus.NewRegistry(), false)
	get := func(h http.Handler, remote, auth string) int {
		r := httptest.NewRequest("GET", "/metrics", nil)
		r.RemoteAddr = remote
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	open := OpsGuard("", ops)
	for remote, want := range map[string]int{"127.0.0.1:5000": 200, "[::1]:5000": 200, "10.1.2.3:5000": 403, "203.0.113.9:80": 403} {
		if got := get(open, remote, ""); got != want {
			t.Errorf("no token, from %s: %d, want %d", remote, got, want)
		}
	}
	tok := OpsGuard("s3cret", ops)
	for _, c := range []struct {
		remote, auth string
		want         int
	}{
		{"10.1.2.3:5000", "Bearer s3cret", 200},
		{"127.0.0.1:5000", "", 401},
		{"10.1.2.3:5000", "Bearer wrong", 401},
		{"10.1.2.3:5000", "s3cret", 401},
	} {
		if got := get(tok, c.remote, c.auth); got != c.want {
			t.Errorf("token, from %s with %q: %d, want %d", c.remote, c.auth, got, c.want)
		}
	}
}
