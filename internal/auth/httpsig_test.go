package auth

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/types"
)

// server is the account the test requests are for.
var server = func() types.Address { k, _ := FromSeed(bytes.Repeat([]byte{9}, 32)); return k.Address() }()

func signed(t *testing.T, k *Key, method, target string, lifetime time.Duration) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if err := SignRequest(r, k, server, lifetime); err != nil {
		t.Fatal(err)
	}
	return r
}

func newVerifier() *Verifier {
	return NewVerifier(server, time.Minute, 5*time.Second, NewReplayCache(ReplayLimits{Capacity: 1000}))
}

func TestSignedRequests(t *testing.T) {
	k, _ := Generate()
	v := newVerifier()
	r := signed(t, k, "PUT", "/fragment/abc?x=1", 30*time.Second)
	s, err := v.Verify(r, "c")
	if err != nil || s.Account != k.Address() {
		t.Fatalf("good request: %v", err)
	}
	// The same headers again: replayed.
	if _, err := v.Verify(r, "c"); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay: %v", err)
	}
	// Moved to another path, method or query.
	for _, moved := range []*http.Request{
		httptest.NewRequest("PUT", "/fragment/abd?x=1", nil),
		httptest.NewRequest("GET", "/fragment/abc?x=1", nil),
		httptest.NewRequest("PUT", "/fragment/abc?x=2", nil),
	} {
		fresh := signed(t, k, "PUT", "/fragment/abc?x=1", 30*time.Second)
		moved.Header = fresh.Header
		if _, err := v.Verify(moved, "c"); !errors.Is(err, ErrWrongRequest) {
			t.Fatalf("moved to %s %s: %v", moved.Method, moved.URL, err)
		}
	}
	// Taken to another server: refused there, though it is well signed.
	other := NewVerifier(k.Address(), time.Minute, 5*time.Second, NewReplayCache(ReplayLimits{}))
	if _, err := other.Verify(signed(t, k, "GET", "/x", 30*time.Second), "c"); !errors.Is(err, ErrWrongTarget) {
		t.Fatalf("other server: %v", err)
	}
	// Expired, and too far ahead.
	if _, err := v.Verify(signed(t, k, "GET", "/x", -time.Minute), "c"); !errors.Is(err, ErrStale) {
		t.Fatalf("expired: %v", err)
	}
	if _, err := v.Verify(signed(t, k, "GET", "/x", time.Hour), "c"); !errors.Is(err, ErrStale) {
		t.Fatalf("far future: %v", err)
	}
	// Unsigned, forged, malformed.
	if _, err := v.Verify(httptest.NewRequest("GET", "/x", nil), "c"); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned: %v", err)
	}
	stranger, _ := Generate()
	forged := signed(t, k, "GET", "/x", 30*time.Second)
	forged.Header.Set(HeaderAccount, stranger.Address().String())
	if _, err := v.Verify(forged, "c"); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged: %v", err)
	}
	for name, mutate := range map[string]func(h http.Header){
		"account":   func(h http.Header) { h.Set(HeaderAccount, "deoss1xyz") },
		"signature": func(h http.Header) { h.Set(HeaderSignature, "zz") },
		"message":   func(h http.Header) { h.Set(HeaderMessage, "v2 1 2 GET /x") },
		"v1":        func(h http.Header) { h.Set(HeaderMessage, "v1 1700000000 0123456789abcdef0123456789abcdef GET /x") },
		"nonce":     func(h http.Header) { h.Set(HeaderMessage, strings.Replace(h.Get(HeaderMessage), " ", " 0", 1)) },
	} {
		r := signed(t, k, "GET", "/x", 30*time.Second)
		mutate(r.Header)
		if _, err := v.Verify(r, "c"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The Cipher header is signed: stripped, swapped or added, it is refused.
func TestCipherHeaderBound(t *testing.T) {
	k, _ := Generate()
	v := newVerifier()
	mk := func(c string) *http.Request {
		r := httptest.NewRequest("POST", "/upload", nil)
		if c != "" {
			r.Header.Set(HeaderCipher, c)
		}
		if err := SignRequest(r, k, server, time.Minute); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for name, tc := range map[string]struct{ signed, sent string }{
		"stripped": {"secret", ""}, "swapped": {"secret", "other"}, "added": {"", "secret"},
	} {
		r := mk(tc.signed)
		r.Header.Set(HeaderCipher, tc.sent)
		if tc.sent == "" {
			r.Header.Del(HeaderCipher)
		}
		if _, err := v.Verify(r, "c"); !errors.Is(err, ErrWrongCipher) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := v.Verify(mk("secret"), "c"); err != nil {
		t.Fatalf("as signed: %v", err)
	}
}

// The body is signed: another body of any length fails the read that would
// end it, before the reader sees success.
func TestBodyBound(t *testing.T) {
	k, _ := Generate()
	v := newVerifier()
	body := bytes.Repeat([]byte("deoss"), 10_000)
	req := func() *http.Request {
		r, _ := http.NewRequest("PUT", "http://gw/object/a", bytes.NewReader(body))
		if err := SignRequest(r, k, server, time.Minute); err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := req()
	s, err := v.Verify(r, "c")
	if err != nil || s.Unsigned() {
		t.Fatalf("verify: %v (unsigned %v)", err, s != nil && s.Unsigned())
	}
	got, err := io.ReadAll(s.CheckBody(io.NopCloser(bytes.NewReader(body)), int64(len(body))))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("signed body: %v", err)
	}
	swapped := bytes.Clone(body)
	swapped[len(swapped)-1] ^= 1
	for name, b := range map[string][]byte{"swapped": swapped, "shorter": body[:len(body)-1], "longer": append(bytes.Clone(body), 'x'), "empty": nil} {
		for _, n := range []int64{int64(len(b)), -1} {
			if _, err := io.ReadAll(s.CheckBody(io.NopCloser(bytes.NewReader(b)), n)); !errors.Is(err, ErrBodyMismatch) {
				t.Errorf("%s (length %d): %v", name, n, err)
			}
		}
		if _, err := s.ReadBody(bytes.NewReader(b), 1<<20); !errors.Is(err, ErrBodyMismatch) {
			t.Errorf("%s whole: %v", name, err)
		}
	}
	// A stream the signer could not read is declared unsigned.
	st := httptest.NewRequest("PUT", "/object/a", io.MultiReader(bytes.NewReader(body)))
	st.GetBody = nil
	if err := SignRequest(st, k, server, time.Minute); err != nil {
		t.Fatal(err)
	}
	if s, err := v.Verify(st, "c"); err != nil || !s.Unsigned() {
		t.Fatalf("stream: %v", err)
	}
}

func TestReplayCacheBounded(t *testing.T) {
	a, b := types.Address{1}, types.Address{2}
	c := NewReplayCache(ReplayLimits{Capacity: 3, PerAccount: 2, PerClient: 2})
	now := time.Unix(1000, 0)
	if c.Add(a, "x", "n1", now.Add(time.Second), now) != nil || c.Add(a, "y", "n2", now.Add(2*time.Second), now) != nil {
		t.Fatal("add")
	}
	// Account a holds its share; b is not touched by that.
	if err := c.Add(a, "z", "n3", now.Add(time.Second), now); !errors.Is(err, ErrTooMany) {
		t.Fatalf("a's share: %v", err)
	}
	if err := c.Add(b, "z", "n3", now.Add(time.Second), now); err != nil {
		t.Fatalf("b: %v", err)
	}
	// The whole cache is full now.
	if err := c.Add(types.Address{3}, "w", "n4", now.Add(time.Second), now); !errors.Is(err, ErrReplayFull) {
		t.Fatalf("full: %v", err)
	}
	// Once a's first nonce expires there is room, and it could not pass the
	// expiry check any more anyway.
	later := now.Add(1500 * time.Millisecond)
	if err := c.Add(a, "x", "n5", later.Add(time.Second), later); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if err := c.Add(a, "y", "n2", later.Add(time.Second), later); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replayed: %v", err)
	}
}

// One client address holds its share of nonces whatever accounts it signs
// with.
func TestReplayCachePerClient(t *testing.T) {
	c := NewReplayCache(ReplayLimits{PerClient: 2})
	now := time.Unix(1000, 0)
	for i := range 2 {
		if err := c.Add(types.Address{byte(i)}, "10.0.0.1", "n", now.Add(time.Minute), now); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Add(types.Address{7}, "10.0.0.1", "n", now.Add(time.Minute), now); !errors.Is(err, ErrTooMany) {
		t.Fatalf("third from one client: %v", err)
	}
	if err := c.Add(types.Address{7}, "10.0.0.2", "n", now.Add(time.Minute), now); err != nil {
		t.Fatalf("another client: %v", err)
	}
}

// A nonce spent before a restart is still spent after it; an expired one is
// gone from the file.
func TestReplayCacheSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replay.db")
	now := time.Unix(1_000_000, 0)
	c, err := OpenReplayCache(path, ReplayLimits{}, now)
	if err != nil {
		t.Fatal(err)
	}
	acc := types.Address{5}
	n1, n2 := strings.Repeat("a", 32), strings.Repeat("b", 32)
	if err := c.Add(acc, "x", n1, now.Add(time.Minute), now); err != nil {
		t.Fatal(err)
	}
	if err := c.Add(acc, "x", n2, now.Add(time.Second), now); err != nil {
		t.Fatal(err)
	}
	c.Close()
	later := now.Add(2 * time.Second)
	c, err = OpenReplayCache(path, ReplayLimits{}, later)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Add(acc, "y", n1, now.Add(time.Minute), later); !errors.Is(err, ErrReplayed) {
		t.Fatalf("after restart: %v", err)
	}
	if c.Len() != 1 {
		t.Fatalf("held %d nonces after restart, want 1 (the expired one dropped)", c.Len())
	}
}

// Through a verifier: a request seen before the restart is refused after it.
func TestReplayAfterRestartRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replay.db")
	k, _ := Generate()
	open := func() (*Verifier, *ReplayCache) {
		c, err := OpenReplayCache(path, ReplayLimits{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return NewVerifier(server, time.Minute, 5*time.Second, c), c
	}
	v, c := open()
	r := signed(t, k, "DELETE", "/file/x", 30*time.Second)
	if _, err := v.Verify(r, "c"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	v, c = open()
	defer c.Close()
	if _, err := v.Verify(r, "c"); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay after restart: %v", err)
	}
}

func FuzzParseMessage(f *testing.F) {
	f.Add("v2 1700000000 0123456789abcdef0123456789abcdef deoss1x PUT /fragment/x UNSIGNED-PAYLOAD -")
	f.Add("v2 1 00 t GET / " + strings.Repeat("a", 64) + " " + strings.Repeat("b", 64))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseMessage(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedAuth) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		// What parses is exactly what a signer writes.
		again := strings.Join([]string{"v2", strconv.FormatInt(m.expiry, 10), m.nonce, m.target, m.method, m.uri, m.body, m.cipher}, " ")
		if again != s {
			t.Fatalf("%q re-forms as %q", s, again)
		}
	})
}
