package console

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sync"
	"time"

	"github.com/deoss/deoss/internal/types"
)

// CookieName is the session cookie; Header must come with every request
// the cookie authenticates.
const (
	CookieName = "deoss_console"
	Header     = "X-Deoss-Console"
)

// SessionTTL is how long a console session lasts.
const SessionTTL = 12 * time.Hour

// Sessions are the signed-in browsers, in memory (a restart signs them
// out), keyed by the SHA-256 of their cookie.
type Sessions struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[[32]byte]session
}

type session struct {
	account types.Address
	expires time.Time
}

// NewSessions makes an empty set; now is the clock.
func NewSessions(now func() time.Time) *Sessions {
	return &Sessions{now: now, m: map[[32]byte]session{}}
}

// Start signs account in and sets the cookie on w.
func (s *Sessions) Start(w http.ResponseWriter, r *http.Request, account types.Address) {
	b := make([]byte, 32)
	rand.Read(b)
	id := hex.EncodeToString(b)
	exp := s.now().Add(SessionTTL)
	s.mu.Lock()
	for k, v := range s.m { // drop the expired ones as new ones come
		if !s.now().Before(v.expires) {
			delete(s.m, k)
		}
	}
	s.m[sha256.Sum256([]byte(id))] = session{account: account, expires: exp}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: id, Path: "/", Expires: exp, MaxAge: int(SessionTTL.Seconds()),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}

// Account is the signed-in account of a request that carries the cookie
// and the console header.
func (s *Sessions) Account(r *http.Request) (types.Address, bool) {
	c, err := r.Cookie(CookieName)
	if err != nil || r.Header.Get(Header) == "" {
		return types.Address{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[sha256.Sum256([]byte(c.Value))]
	if !ok || !s.now().Before(v.expires) {
		return types.Address{}, false
	}
	return v.account, true
}

// End signs the request's session out and clears the cookie.
func (s *Sessions) End(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		s.mu.Lock()
		delete(s.m, sha256.Sum256([]byte(c.Value)))
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
}
