package api

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/types"
)

// send signs req for target with key (when not nil) and returns the status
// and the JSON body.
func send(t *testing.T, req *http.Request, key *auth.Key, target types.Address) (int, map[string]any) {
	t.Helper()
	if key != nil {
		if err := auth.SignRequest(req, key, target, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &m)
	if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After")
	}
	return resp.StatusCode, m
}

func mustReq(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// A request captured at (or made for) one gateway is refused at another.
func TestSignatureBindsTheGateway(t *testing.T) {
	srv, user, _ := newAPI(t)
	req := mustReq(t, "POST", srv.URL+"/upload", strings.NewReader(`{"name":"a","territory":"home","size":5}`))
	if st, m := send(t, req, user, types.Address{0x99}); st != 401 || !strings.Contains(m["error"].(string), "another server") {
		t.Fatalf("signed for another gateway: %d %v", st, m)
	}
}

// A captured request with another body is refused, and nothing of it is
// kept: not a JSON body, not a streamed one of the same or another length.
func TestSignatureBindsTheBody(t *testing.T) {
	var q *pipeline.Queue
	srv, user, _, _ := newAPIWith(t, func(d *Deps) { q = d.Queue })
	signedFor := func(method, path string, body []byte) *http.Request {
		req := mustReq(t, method, srv.URL+path, bytes.NewReader(body))
		if err := auth.SignRequest(req, user, gatewaySelf, time.Minute); err != nil {
			t.Fatal(err)
		}
		return req
	}
	swap := func(req *http.Request, body []byte) *http.Request {
		out := mustReq(t, req.Method, req.URL.String(), bytes.NewReader(body))
		out.Header = req.Header
		return out
	}
	st, m := send(t, swap(signedFor("POST", "/upload", []byte(`{"name":"a","territory":"home","size":5}`)), []byte(`{"name":"b","territory":"home","size":5}`)), nil, types.Address{})
	if st != 400 || m["code"] != "body_mismatch" {
		t.Fatalf("create with another body: %d %v", st, m)
	}
	good := bytes.Repeat([]byte("the user's file "), 10_000)
	for name, evil := range map[string][]byte{
		"same length": bytes.Repeat([]byte("the evil's file "), 10_000),
		"shorter":     []byte("evil"),
		"longer":      append(bytes.Clone(good), "evil"...),
	} {
		st, m := send(t, swap(signedFor("PUT", "/object/f.bin?territory=home", good), evil), nil, types.Address{})
		if st != 400 || m["code"] != "body_mismatch" {
			t.Errorf("object with a %s body: %d %v", name, st, m)
		}
	}
	// A multipart form whose file part is swapped (same boundary).
	form := func(content string) []byte {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		mw.SetBoundary("deoss-test-boundary")
		w, _ := mw.CreateFormFile("file", "m.bin")
		w.Write([]byte(content))
		mw.Close()
		return buf.Bytes()
	}
	fr := signedFor("PUT", "/file?territory=home", form(strings.Repeat("good", 5000)))
	fr.Header.Set("Content-Type", "multipart/form-data; boundary=deoss-test-boundary")
	if st, m := send(t, swap(fr, form(strings.Repeat("evil", 5000))), nil, types.Address{}); st != 400 || m["code"] != "body_mismatch" {
		t.Errorf("form with another file: %d %v", st, m)
	}
	if p, err := q.Pending(); err != nil || len(p) != 0 {
		t.Fatalf("a refused body was kept: %v %v", p, err)
	}
	// The same request as signed goes through.
	if st, m := send(t, signedFor("PUT", "/object/f.bin?territory=home", good), nil, types.Address{}); st != 201 {
		t.Fatalf("as signed: %d %v", st, m)
	}
}

// The Cipher header is signed (stripping it would store the file in the
// clear), and over plain HTTP it is refused unless the gateway allows it.
func TestCipherHeaderBoundAndNeedsTLS(t *testing.T) {
	srv, user, _ := newAPI(t)
	req := mustReq(t, "POST", srv.URL+"/upload", strings.NewReader(`{"name":"a","territory":"home","size":5}`))
	req.Header.Set(CipherHeader, "secret")
	if err := auth.SignRequest(req, user, gatewaySelf, time.Minute); err != nil {
		t.Fatal(err)
	}
	req.Header.Del(CipherHeader)
	if st, m := send(t, req, nil, types.Address{}); st != 401 || !strings.Contains(m["error"].(string), "Cipher") {
		t.Fatalf("stripped cipher: %d %v", st, m)
	}

	strict, user2, _, _ := newAPIWith(t, func(d *Deps) { d.AllowInsecure = false })
	req = mustReq(t, "POST", strict.URL+"/upload", strings.NewReader(`{"name":"a","territory":"home","size":5}`))
	req.Header.Set(CipherHeader, "secret")
	if st, m := send(t, req, user2, gatewaySelf); st != 403 || m["code"] != "tls_required" {
		t.Fatalf("cipher over plain HTTP: %d %v", st, m)
	}
	req = mustReq(t, "GET", strict.URL+"/file/download/"+strings.Repeat("0", 64), nil)
	req.Header.Set(CipherHeader, "secret")
	if st, m := send(t, req, nil, types.Address{}); st != 403 || m["code"] != "tls_required" {
		t.Fatalf("cipher on a plain HTTP download: %d %v", st, m)
	}
	// An unsigned streamed body is refused over plain HTTP too.
	req = mustReq(t, "PUT", strict.URL+"/object/s.bin?territory=home", io.MultiReader(strings.NewReader("streamed")))
	req.ContentLength = 8
	if st, m := send(t, req, user2, gatewaySelf); st != 403 || m["code"] != "tls_required" {
		t.Fatalf("unsigned payload over plain HTTP: %d %v", st, m)
	}
}

// Spent nonces outlive a restart of the gateway.
func TestReplayAfterRestartRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replay.db")
	open := func() *auth.ReplayCache {
		c, err := auth.OpenReplayCache(path, auth.ReplayLimits{}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := open()
	srv, user, _, _ := newAPIWith(t, func(d *Deps) { d.Replay = c })
	req := mustReq(t, "POST", srv.URL+"/upload", strings.NewReader(`{"name":"a","territory":"home","size":5}`))
	if st, m := send(t, req, user, gatewaySelf); st != 201 {
		t.Fatalf("first: %d %v", st, m)
	}
	c.Close()
	srv.Close()

	c = open()
	defer c.Close()
	srv2, _, ch, _ := newAPIWith(t, func(d *Deps) { d.Replay = c })
	ch.authorized[user.Address()] = true
	again := mustReq(t, "POST", srv2.URL+"/upload", strings.NewReader(`{"name":"a","territory":"home","size":5}`))
	again.Header = req.Header
	if st, m := send(t, again, nil, types.Address{}); st != 401 || !strings.Contains(m["error"].(string), "already used") {
		t.Fatalf("replayed after restart: %d %v", st, m)
	}
}

// Strangers spend no nonces, so they cannot fill the replay cache; an
// authorized account that sends too much is shed on its own (429), and
// another account is not touched.
func TestReplayCacheCannotBeFlooded(t *testing.T) {
	c := auth.NewReplayCache(auth.ReplayLimits{Capacity: 20, PerAccount: 5, PerClient: 1000})
	srv, user, ch, _ := newAPIWith(t, func(d *Deps) { d.Replay = c })
	create := func() *http.Request {
		return mustReq(t, "GET", srv.URL+"/upload/"+strings.Repeat("0", 32), nil)
	}
	stranger, _ := auth.Generate()
	for range 100 {
		if st, m := send(t, create(), stranger, gatewaySelf); st != 403 {
			t.Fatalf("stranger: %d %v", st, m)
		}
	}
	if c.Len() != 0 {
		t.Fatalf("strangers spent %d nonces", c.Len())
	}
	for range 5 {
		if st, m := send(t, create(), user, gatewaySelf); st != 404 {
			t.Fatalf("user: %d %v", st, m)
		}
	}
	if st, m := send(t, create(), user, gatewaySelf); st != 429 || m["code"] != "too_many_requests" {
		t.Fatalf("user over its share: %d %v", st, m)
	}
	other, _ := auth.Generate()
	ch.authorized[other.Address()] = true
	if st, m := send(t, create(), other, gatewaySelf); st != 404 {
		t.Fatalf("another account after the flood: %d %v", st, m)
	}
}
