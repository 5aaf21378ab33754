package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func signed(t *testing.T, k *Key, method, target string, lifetime time.Duration) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if err := SignRequest(r, k, lifetime); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSignedRequests(t *testing.T) {
	k, _ := Generate()
	v := NewVerifier(time.Minute, 5*time.Second, 1000)
	r := signed(t, k, "PUT", "/fragment/abc?x=1", 30*time.Second)
	addr, err := v.Verify(r)
	if err != nil || addr != k.Address() {
		t.Fatalf("good request: %v", err)
	}
	// The same headers again: replayed.
	if _, err := v.Verify(r); !errors.Is(err, ErrReplayed) {
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
		if _, err := v.Verify(moved); !errors.Is(err, ErrWrongRequest) {
			t.Fatalf("moved to %s %s: %v", moved.Method, moved.URL, err)
		}
	}
	// Expired, and too far ahead.
	if _, err := v.Verify(signed(t, k, "GET", "/x", -time.Minute)); !errors.Is(err, ErrStale) {
		t.Fatalf("expired: %v", err)
	}
	if _, err := v.Verify(signed(t, k, "GET", "/x", time.Hour)); !errors.Is(err, ErrStale) {
		t.Fatalf("far future: %v", err)
	}
	// Unsigned, forged, malformed.
	if _, err := v.Verify(httptest.NewRequest("GET", "/x", nil)); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned: %v", err)
	}
	other, _ := Generate()
	forged := signed(t, k, "GET", "/x", 30*time.Second)
	forged.Header.Set(HeaderAccount, other.Address().String())
	if _, err := v.Verify(forged); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged: %v", err)
	}
	for name, mutate := range map[string]func(h http.Header){
		"account":   func(h http.Header) { h.Set(HeaderAccount, "deoss1xyz") },
		"signature": func(h http.Header) { h.Set(HeaderSignature, "zz") },
		"message":   func(h http.Header) { h.Set(HeaderMessage, "v2 1 2 GET /x") },
		"nonce":     func(h http.Header) { h.Set(HeaderMessage, strings.Replace(h.Get(HeaderMessage), " ", " 0", 1)) },
	} {
		r := signed(t, k, "GET", "/x", 30*time.Second)
		mutate(r.Header)
		if _, err := v.Verify(r); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestReplayCacheBounded(t *testing.T) {
	c := NewReplayCache(2)
	now := time.Unix(1000, 0)
	if c.Add("a", now.Add(time.Second), now) != nil || c.Add("b", now.Add(2*time.Second), now) != nil {
		t.Fatal("add")
	}
	if err := c.Add("c", now.Add(time.Second), now); !errors.Is(err, ErrReplayFull) {
		t.Fatalf("full: %v", err)
	}
	// Once "a" expires there is room, and "a" could not pass the expiry
	// check any more anyway.
	later := now.Add(1500 * time.Millisecond)
	if err := c.Add("c", later.Add(time.Second), later); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if err := c.Add("b", later.Add(time.Second), later); !errors.Is(err, ErrReplayed) {
		t.Fatalf("b replayed: %v", err)
	}
}

func FuzzParseMessage(f *testing.F) {
	f.Add("v1 1700000000 0123456789abcdef0123456789abcdef PUT /fragment/x")
	f.Add("v1 1 00 GET /")
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
		again := "v1 " + strconv.FormatInt(m.expiry, 10) + " " + m.nonce + " " + m.method + " " + m.uri
		if again != s {
			t.Fatalf("%q re-forms as %q", s, again)
		}
	})
}
