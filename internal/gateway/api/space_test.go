package api

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/gateway/ingest"
	"github.com/deoss/deoss/internal/gateway/pipeline"
)

// Open sessions hold their space: a second session that the territory
// cannot take beside the first is refused, and taken once the first is
// aborted; one account's bytes in flight are capped.
func TestSessionsHoldSpace(t *testing.T) {
	srv, user, _ := newAPI(t)
	c := &client{t: t, url: srv.URL, key: user}
	create := func(territory string, size int) (int, map[string]any) {
		return c.do("POST", "/upload", fmt.Appendf(nil, `{"name":"a","territory":%q,"size":%d}`, territory, size), nil)
	}
	st, first := create("tiny", 600_000) // "tiny" has 1 MiB
	if st != 201 {
		t.Fatalf("first: %d %v", st, first)
	}
	if st, m := create("tiny", 600_000); st != 403 || m["code"] != "insufficient_space" {
		t.Fatalf("second beside the first: %d %v", st, m)
	}
	if st, _ := c.do("DELETE", "/upload/"+first["id"].(string), nil, nil); st != 204 {
		t.Fatalf("abort: %d", st)
	}
	if st, m := create("tiny", 600_000); st != 201 {
		t.Fatalf("second after the abort: %d %v", st, m)
	}

	srv2, user2, _, _ := newAPIWith(t, func(d *Deps) {
		d.Ingest = ingest.New(ingest.Config{MaxPending: 2 << 20, SessionBytes: d.Sessions.PendingBytes}, d.Chain.(*fakeChain), d.Work, d.Queue, nil)
	})
	c2 := &client{t: t, url: srv2.URL, key: user2}
	if st, m := c2.do("POST", "/upload", []byte(`{"name":"a","territory":"home","size":1500000}`), nil); st != 201 {
		t.Fatalf("under the cap: %d %v", st, m)
	}
	if st, m := c2.do("POST", "/upload", []byte(`{"name":"b","territory":"home","size":1500000}`), nil); st != 507 || m["code"] != "pending_cap" {
		t.Fatalf("past the account's pending cap: %d %v", st, m)
	}
}

// A streamed body of unknown length is cut off as soon as it passes what
// the territory can take, not read to its end, and nothing of it is kept.
func TestStreamCutAtTerritory(t *testing.T) {
	var q *pipeline.Queue
	var root string
	srv, user, _, r := newAPIWith(t, func(d *Deps) { q = d.Queue })
	root = r
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	var sent atomic.Int64
	go func() {
		fw, _ := mw.CreateFormFile("file", "big.bin")
		chunk := make([]byte, 64<<10)
		for sent.Load() < 256<<20 {
			if _, err := fw.Write(chunk); err != nil {
				pw.CloseWithError(err)
				return
			}
			sent.Add(int64(len(chunk)))
		}
		mw.Close()
		pw.Close()
	}()
	req := mustReq(t, "PUT", srv.URL+"/file?territory=tiny", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	st, m := send(t, req, user, gatewaySelf) // unsigned payload: allowed (AllowInsecure)
	pr.CloseWithError(io.ErrClosedPipe)
	if st != 413 || m["code"] != "past_space" {
		t.Fatalf("a 256 MiB stream into a 1 MiB territory: %d %v", st, m)
	}
	if n := sent.Load(); n > 32<<20 {
		t.Fatalf("the gateway took %d bytes of a body it could not keep", n)
	}
	if p, _ := q.Pending(); len(p) != 0 {
		t.Fatalf("kept: %v", p)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "work"))
	for _, e := range entries {
		t.Errorf("left in the work area: %s", e.Name())
	}
}

// An uploader that stops sending is cut off after IOIdle (instead of
// holding its request, and what it holds, for ever), and nothing of its
// upload is kept.
func TestStalledUploaderCutOff(t *testing.T) {
	var q *pipeline.Queue
	srv, user, _, _ := newAPIWith(t, func(d *Deps) { q, d.IOIdle = d.Queue, 300*time.Millisecond })
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write(make([]byte, 1000)) // then nothing more, never the end
	req := mustReq(t, "PUT", srv.URL+"/object/stalled.bin?territory=home", pr)
	req.ContentLength = 1 << 20
	if err := auth.SignRequest(req, user, gatewaySelf, time.Minute); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0 // cut off
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	select {
	case st := <-done:
		if st != 0 && st < 400 {
			t.Fatalf("a stalled upload was accepted: %d", st)
		}
	case <-time.After(time.Minute):
		t.Fatal("a stalled uploader held its request for a minute")
	}
	if p, _ := q.Pending(); len(p) != 0 {
		t.Fatalf("kept: %v", p)
	}
}

// Key derivations are rate-limited per client address.
func TestKDFRateLimited(t *testing.T) {
	a := New(Deps{})
	for i := range kdfBurst {
		if !a.kdfAllowed("10.0.0.1") {
			t.Fatalf("derivation %d of the burst refused", i+1)
		}
	}
	if a.kdfAllowed("10.0.0.1") {
		t.Fatal("a derivation past the burst allowed")
	}
	if !a.kdfAllowed("10.0.0.2") {
		t.Fatal("another address held back")
	}
}

// A download whose client takes nothing is cut off after IOIdle: the
// handler's writes fail instead of blocking for ever.
func TestStalledReaderCutOff(t *testing.T) {
	ended := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lw := &lazyWriter{w: w, rc: http.NewResponseController(w), idle: 300 * time.Millisecond, status: 200}
		chunk := make([]byte, 1<<20)
		for {
			if _, err := lw.Write(chunk); err != nil {
				ended <- err
				return
			}
		}
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	select {
	case err := <-ended:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Logf("cut off with %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("a reader that never reads held its download for a minute")
	}
}
