package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/gateway/ingest"
	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/gateway/upload"
	"github.com/deoss/deoss/internal/gateway/work"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

type fakeChain struct {
	authorized  map[types.Address]bool
	territories map[string]*ledger.Territory // owner/name
}

func (c *fakeChain) Authorized(_ context.Context, u types.Address) (bool, error) {
	return c.authorized[u], nil
}

// Authorizes: the fake's users authorize only the gateway under test.
func (c *fakeChain) Authorizes(ctx context.Context, u, _ types.Address) (bool, error) {
	return c.Authorized(ctx, u)
}

func (c *fakeChain) Territory(_ context.Context, o types.Address, name string) (*ledger.Territory, error) {
	t, ok := c.territories[o.String()+"/"+name]
	if !ok {
		return nil, ledger.ErrNotFound
	}
	return t, nil
}

func (c *fakeChain) Nodes(context.Context) ([]ledger.Node, error) { return nil, nil }

func (c *fakeChain) Submit(context.Context, ledger.Msg) error { return errors.New("no chain here") }

// gatewaySelf is the account of the gateway under test.
var gatewaySelf = types.Address{0x6a}

type client struct {
	t   testing.TB
	url string
	key *auth.Key
}

func (c *client) do(method, path string, body []byte, hdr map[string]string) (int, map[string]any) {
	c.t.Helper()
	req, _ := http.NewRequest(method, c.url+path, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if c.key != nil {
		auth.SignRequest(req, c.key, gatewaySelf, time.Minute)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

func newAPI(t testing.TB) (*httptest.Server, *auth.Key, *fakeChain) {
	srv, user, ch, _ := newAPIRoot(t)
	return srv, user, ch
}

func newAPIRoot(t testing.TB) (*httptest.Server, *auth.Key, *fakeChain, string) {
	return newAPIWith(t, nil)
}

// newAPIWith is newAPIRoot with the dependencies edited by edit.
func newAPIWith(t testing.TB, edit func(*Deps)) (*httptest.Server, *auth.Key, *fakeChain, string) {
	user, _ := auth.Generate()
	ch := &fakeChain{authorized: map[types.Address]bool{user.Address(): true}, territories: map[string]*ledger.Territory{
		user.Address().String() + "/home": {Total: 1 << 30, Expires: time.Now().Add(time.Hour).Unix()},
		user.Address().String() + "/tiny": {Total: 1 << 20, Expires: time.Now().Add(time.Hour).Unix()},
		user.Address().String() + "/old":  {Total: 1 << 30, Expires: time.Now().Add(-time.Hour).Unix()},
	}}
	root := t.TempDir()
	var in *ingest.Ingest
	sess, err := upload.Open(root+"/sessions", upload.Options{TTL: time.Hour, MaxSize: 1 << 30, MaxChunkSize: 8 << 20, MinChunkSize: 1000, DefaultChunk: 1 << 20,
		ChunkKey: func(w []byte) ([]byte, error) { return ingest.ChunkKey(in, w) }})
	if err != nil {
		t.Fatal(err)
	}
	wa, _ := work.Open(root + "/work")
	q, _ := pipeline.Open(root)
	t.Cleanup(func() { sess.Close(); q.Close() })
	in = ingest.New(ingest.Config{SessionBytes: sess.PendingBytes}, ch, wa, q, nil)
	d := Deps{Chain: ch, Ingest: in, Sessions: sess, Work: wa, Queue: q,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Self: gatewaySelf, AllowInsecure: true}
	if edit != nil {
		edit(&d)
	}
	api := New(d)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	return srv, user, ch, root
}

func TestChunkedEqualsOneShot(t *testing.T) {
	srv, user, _ := newAPI(t)
	c := &client{t: t, url: srv.URL, key: user}
	data := bytes.Repeat([]byte("deoss chunked upload "), 250_000) // 5.25 MB
	const chunk = 1 << 20
	st, body := c.do("POST", "/upload", []byte(fmt.Sprintf(`{"name":"a.bin","territory":"home","size":%d,"chunk_size":%d}`, len(data), chunk)), nil)
	if st != 201 || body["chunks"].(float64) != 6 {
		t.Fatalf("create: %d %v", st, body)
	}
	id := body["id"].(string)
	// Complete too early: 409 listing what is missing.
	if st, body := c.do("POST", "/upload/"+id+"/complete", nil, nil); st != 409 || body["code"] != "incomplete" {
		t.Fatalf("early complete: %d %v", st, body)
	}
	// Chunks in reverse order, concurrently.
	var wg sync.WaitGroup
	for i := 5; i >= 0; i-- {
		wg.Go(func() {
			part := data[i*chunk : min((i+1)*chunk, len(data))]
			sum := sha256.Sum256(part)
			cc := &client{t: t, url: srv.URL, key: user}
			if st, _ := cc.do("PUT", fmt.Sprintf("/upload/%s/%d", id, i), part, map[string]string{ChunkHeader: fmt.Sprintf("%x", sum)}); st != 201 {
				t.Errorf("chunk %d: %d", i, st)
			}
		})
	}
	wg.Wait()
	// A repeat is a success; other bytes at a stored index a conflict.
	part := data[:chunk]
	if st, _ := c.do("PUT", "/upload/"+id+"/0", part, map[string]string{ChunkHeader: fmt.Sprintf("%x", sha256.Sum256(part))}); st != 200 {
		t.Fatalf("repeat: %d", st)
	}
	other := bytes.Repeat([]byte{1}, chunk)
	if st, body := c.do("PUT", "/upload/"+id+"/0", other, map[string]string{ChunkHeader: fmt.Sprintf("%x", sha256.Sum256(other))}); st != 409 || body["code"] != "chunk_conflict" {
		t.Fatalf("conflict: %d %v", st, body)
	}
	if st, body := c.do("GET", "/upload/"+id, nil, nil); st != 200 || len(body["missing"].([]any)) != 0 {
		t.Fatalf("state: %d %v", st, body)
	}
	st, body = c.do("POST", "/upload/"+id+"/complete", nil, nil)
	if st != 200 || body["state"] != pipeline.Processed {
		t.Fatalf("complete: %d %v", st, body)
	}
	chunked := body["fid"]
	// The same bytes in one request: the same FID.
	st, body = c.do("PUT", "/object/a.bin?territory=home", data, nil)
	if st != 201 || body["fid"] != chunked || body["fid"] == nil {
		t.Fatalf("one-shot: %d %v (chunked %v)", st, body, chunked)
	}
	// The completed session is gone.
	if st, _ := c.do("GET", "/upload/"+id, nil, nil); st != 404 {
		t.Fatalf("session after complete: %d", st)
	}
}

func TestUploadRejections(t *testing.T) {
	srv, user, ch := newAPI(t)
	c := &client{t: t, url: srv.URL, key: user}
	stranger, _ := auth.Generate()
	sc := &client{t: t, url: srv.URL, key: stranger}
	create := func(cl *client, body string) (int, map[string]any) {
		return cl.do("POST", "/upload", []byte(body), nil)
	}
	check := func(name string, st int, body map[string]any, want int, code string) {
		t.Helper()
		if st != want || body["code"] != code || body["error"] == nil {
			t.Errorf("%s: %d %v, want %d %s", name, st, body, want, code)
		}
	}
	st, body := (&client{t: t, url: srv.URL}).do("POST", "/upload", []byte(`{}`), nil)
	check("unsigned", st, body, 401, "unauthenticated")
	st, body = create(sc, `{"name":"a","territory":"home","size":1}`)
	check("not authorized", st, body, 403, "not_authorized")
	st, body = create(c, `{"name":"a","territory":"nope","size":1}`)
	check("no territory", st, body, 403, "no_territory")
	st, body = create(c, `{"name":"a","territory":"old","size":1}`)
	check("expired territory", st, body, 403, "territory_expired")
	st, body = create(c, `{"name":"a","territory":"tiny","size":2097152}`)
	check("not enough space", st, body, 403, "insufficient_space")
	for _, bad := range []string{"a/b", "..\\x", "a\nb", ""} {
		b, _ := json.Marshal(map[string]any{"name": bad, "territory": "home", "size": 1})
		st, body = create(c, string(b))
		check("name "+bad, st, body, 400, "bad_name")
	}
	st, body = create(c, `{"name":"a","territory":"home","size":1,"extra":1}`)
	check("unknown field", st, body, 400, "bad_json")
	st, body = create(c, `{"name":"a","territory":"home","size":-5}`)
	check("negative size", st, body, 400, "bad_size")
	st, body = create(c, `{"name":"a","territory":"home","size":1048576,"chunk_size":1}`)
	check("1-byte chunks", st, body, 400, "bad_size")

	st, body = create(c, `{"name":"a","territory":"home","size":2500,"chunk_size":1000}`)
	if st != http.StatusCreated {
		t.Fatalf("create: %d %v", st, body)
	}
	id := body["id"].(string)
	good := bytes.Repeat([]byte{2}, 1000)
	sum := map[string]string{ChunkHeader: fmt.Sprintf("%x", sha256.Sum256(good))}
	st, body = c.do("PUT", "/upload/"+id+"/7", good, sum)
	check("index out of range", st, body, 400, "bad_index")
	st, body = c.do("PUT", "/upload/"+id+"/x", good, sum)
	check("index not a number", st, body, 400, "bad_index")
	st, body = c.do("PUT", "/upload/"+id+"/0", bytes.Repeat([]byte{3}, 1000), sum)
	check("checksum", st, body, 400, "checksum_mismatch")
	st, body = c.do("PUT", "/upload/"+id+"/0", good, map[string]string{ChunkHeader: "XYZ"})
	check("malformed checksum", st, body, 400, "bad_checksum")
	big := bytes.Repeat([]byte{2}, 1001)
	st, body = c.do("PUT", "/upload/"+id+"/0", big, map[string]string{ChunkHeader: fmt.Sprintf("%x", sha256.Sum256(big))})
	check("chunk larger than declared", st, body, 400, "bad_chunk_size")
	st, body = c.do("PUT", "/upload/nosuch/0", good, sum)
	check("unknown session", st, body, 404, "no_session")
	ch.authorized[stranger.Address()] = true
	st, body = sc.do("PUT", "/upload/"+id+"/0", good, sum)
	check("another account's session", st, body, 403, "not_yours")
	// Abort: gone.
	if st, _ := c.do("DELETE", "/upload/"+id, nil, nil); st != 204 {
		t.Fatalf("abort: %d", st)
	}
	st, body = c.do("GET", "/upload/"+id, nil, nil)
	check("after abort", st, body, 404, "no_session")
	// One-shot: bad name, no territory, no length.
	st, body = c.do("PUT", "/object/a%2Fb?territory=home", good, nil)
	check("object name", st, body, 400, "bad_name")
	st, body = c.do("PUT", "/object/a?territory=none", good, nil)
	check("object territory", st, body, 403, "no_territory")
	req, _ := http.NewRequest("PUT", srv.URL+"/object/a?territory=home", io.NopCloser(strings.NewReader("streamed")))
	req.ContentLength = -1
	auth.SignRequest(req, user, gatewaySelf, time.Minute)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusLengthRequired {
		t.Fatalf("no length: %d", resp.StatusCode)
	}
	// GET /version needs no signature.
	r, _ := http.Get(srv.URL + "/version")
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("version: %d", r.StatusCode)
	}
}
