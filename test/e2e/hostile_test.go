package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/devnet"
	"github.com/deoss/deoss/internal/types"
)

// hostile is one malformed or hostile request and the status it must get.
type hostile struct {
	name   string
	method string
	path   string
	body   []byte
	hdr    map[string]string
	sign   string // "", "user", "stranger", "bad-sig", "expired", "far-future", "other-path", "malformed", "replay",
	// "other-gateway", "swap-body", "strip-cipher", "stranger-authorized"
	want int
}

// TestHostileRequests sends a table of malformed and hostile requests to a
// gateway: each gets its status and a JSON error, and none changes what the
// gateway holds.
func TestHostileRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a validator and a gateway")
	}
	n := Start(t, Options{Nodes: -1})
	gw := n.Gateways[0].URL
	// A session to aim at, a pending file and an encrypted one.
	st, sess := n.Call("POST", gw+"/upload", []byte(`{"name":"s.bin","territory":"home","size":3145728,"chunk_size":1048576}`), nil)
	if st != 201 {
		t.Fatalf("session: %d %v", st, sess)
	}
	id := sess["id"].(string)
	data := randomBytes(21, 5000)
	fid := n.Put(0, "plain.bin", bytes.NewReader(data), int64(len(data)), nil)
	efid := n.Put(0, "secret.bin", bytes.NewReader(data), int64(len(data)), map[string]string{"Cipher": "right"})
	presp := n.Do(nil, "PUT", gw+"/object/private.bin?territory=home&private=true", bytes.NewReader(data[:3000]), 3000, nil)
	var prec struct {
		FID types.FID `json:"fid"`
	}
	if err := json.NewDecoder(presp.Body).Decode(&prec); err != nil || presp.StatusCode != 201 {
		t.Fatalf("private file: %d %v", presp.StatusCode, err)
	}
	presp.Body.Close()
	pfid := prec.FID
	chunk := bytes.Repeat([]byte{1}, 1<<20)
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	mw.WriteField("territory", "home")
	mw.Close()

	cases := []hostile{
		{"unsigned create", "POST", "/upload", []byte(`{}`), nil, "", 401},
		{"bad signature", "POST", "/upload", []byte(`{"name":"a","territory":"home","size":1}`), nil, "bad-sig", 401},
		{"expired message", "POST", "/upload", []byte(`{"name":"a","territory":"home","size":1}`), nil, "expired", 401},
		{"expiry too far ahead", "POST", "/upload", []byte(`{"name":"a","territory":"home","size":1}`), nil, "far-future", 401},
		{"signed for another path", "POST", "/upload", []byte(`{"name":"a","territory":"home","size":1}`), nil, "other-path", 401},
		{"malformed message", "POST", "/upload", []byte(`{"name":"a","territory":"home","size":1}`), nil, "malformed", 401},
		{"replayed message", "POST", "/upload", []byte(`{"name":"a","territory":"home","size":1}`), nil, "replay", 401},
		{"gateway not authorized", "POST", "/upload", []byte(`{"name":"a","territory":"home","size":1}`), nil, "stranger", 403},
		{"signed for another gateway", "POST", "/upload", []byte(`{"name":"a","territory":"home","size":1}`), nil, "other-gateway", 401},
		{"body swapped after signing", "POST", "/upload", []byte(`{"name":"a","territory":"home","size":1}`), nil, "swap-body", 400},
		{"object body swapped after signing", "PUT", "/object/evil.bin?territory=home", []byte("the evil's content"), nil, "swap-body", 400},
		{"cipher header stripped after signing", "POST", "/upload", []byte(`{"name":"a","territory":"home","size":1}`), nil, "strip-cipher", 401},
		{"tiny chunks", "POST", "/upload", []byte(`{"name":"a","territory":"home","size":1073741824,"chunk_size":1}`), nil, "user", 400},
		{"too many chunks", "POST", "/upload", []byte(`{"name":"a","territory":"home","size":21474836480,"chunk_size":1048576}`), nil, "user", 400},
		{"list unsigned", "GET", "/files/" + n.User.Address().String(), nil, nil, "", 401},
		{"list another account's files", "GET", "/files/" + n.User.Address().String(), nil, nil, "stranger-authorized", 403},
		{"body not JSON", "POST", "/upload", []byte(`{name:`), nil, "user", 400},
		{"unknown field", "POST", "/upload", []byte(`{"name":"a","territory":"home","size":1,"admin":true}`), nil, "user", 400},
		{"name with a slash", "POST", "/upload", []byte(`{"name":"a/b","territory":"home","size":1}`), nil, "user", 400},
		{"name climbing up", "POST", "/upload", []byte(`{"name":"..\\\\etc","territory":"home","size":1}`), nil, "user", 400},
		{"name dot-dot", "POST", "/upload", []byte(`{"name":"..","territory":"home","size":1}`), nil, "user", 400},
		{"name with NUL", "POST", "/upload", []byte(`{"name":"a\u0000b","territory":"home","size":1}`), nil, "user", 400},
		{"name with newline", "POST", "/upload", []byte(`{"name":"a\nb","territory":"home","size":1}`), nil, "user", 400},
		{"name too long", "POST", "/upload", []byte(`{"name":"` + strings.Repeat("x", 300) + `","territory":"home","size":1}`), nil, "user", 400},
		{"negative size", "POST", "/upload", []byte(`{"name":"a","territory":"home","size":-1}`), nil, "user", 400},
		{"size past the territory", "POST", "/upload", []byte(`{"name":"a","territory":"home","size":10737418240}`), nil, "user", 403},
		{"huge chunk size", "POST", "/upload", []byte(`{"name":"a","territory":"home","size":10,"chunk_size":1073741824}`), nil, "user", 400},
		{"unknown territory", "POST", "/upload", []byte(`{"name":"a","territory":"nope","size":1}`), nil, "user", 403},
		{"chunk index negative", "PUT", "/upload/" + id + "/-1", chunk, map[string]string{"Chunk-Sha256": sum(chunk)}, "user", 400},
		{"chunk index past the end", "PUT", "/upload/" + id + "/99999", chunk, map[string]string{"Chunk-Sha256": sum(chunk)}, "user", 400},
		{"chunk index huge", "PUT", "/upload/" + id + "/99999999999999999999999", chunk, map[string]string{"Chunk-Sha256": sum(chunk)}, "user", 400},
		{"chunk without checksum", "PUT", "/upload/" + id + "/0", chunk, nil, "user", 400},
		{"chunk with a wrong checksum", "PUT", "/upload/" + id + "/0", chunk, map[string]string{"Chunk-Sha256": sum([]byte("x"))}, "user", 400},
		{"chunk larger than declared", "PUT", "/upload/" + id + "/0", append(chunk, 1), map[string]string{"Chunk-Sha256": sum(append(chunk, 1))}, "user", 400},
		{"chunk of an unknown session", "PUT", "/upload/0000/0", chunk, map[string]string{"Chunk-Sha256": sum(chunk)}, "user", 404},
		{"complete with chunks missing", "POST", "/upload/" + id + "/complete", nil, nil, "user", 409},
		{"another account's session", "GET", "/upload/" + id, nil, nil, "stranger", 403},
		{"delete the session database", "DELETE", "/upload/sessions.db", nil, nil, "user", 404},
		{"delete through an encoded slash", "DELETE", "/upload/..%2Fsessions.db", nil, nil, "user", 404},
		{"delete an unknown session", "DELETE", "/upload/" + strings.Repeat("0", 32), nil, nil, "user", 404},
		{"delete another account's session", "DELETE", "/upload/" + id, nil, nil, "stranger", 403},
		{"object name with encoded slash", "PUT", "/object/a%2Fb?territory=home", chunk, nil, "user", 400},
		{"object name dot-dot", "PUT", "/object/..?territory=home", chunk, nil, "user", 404},
		{"multipart without a file", "PUT", "/file", form.Bytes(), map[string]string{"Content-Type": mw.FormDataContentType()}, "user", 400},
		{"malformed FID", "GET", "/file/download/xyz", nil, nil, "", 400},
		{"unknown FID", "GET", "/file/download/" + strings.Repeat("0", 64), nil, nil, "", 404},
		{"range past the end", "GET", "/file/download/" + fid.String(), nil, map[string]string{"Range": "bytes=5000-"}, "", 416},
		{"negative range", "GET", "/file/download/" + fid.String(), nil, map[string]string{"Range": "bytes=--5"}, "", 400},
		{"huge range", "GET", "/file/download/" + fid.String(), nil, map[string]string{"Range": "bytes=99999999999999999999-"}, "", 400},
		{"reversed range", "GET", "/file/download/" + fid.String(), nil, map[string]string{"Range": "bytes=9-3"}, "", 400},
		{"several ranges", "GET", "/file/download/" + fid.String(), nil, map[string]string{"Range": "bytes=0-1,4-5"}, "", 416},
		{"empty suffix range", "GET", "/file/download/" + fid.String(), nil, map[string]string{"Range": "bytes=-0"}, "", 416},
		{"no cipher for an encrypted file", "GET", "/file/download/" + efid.String(), nil, nil, "", 401},
		{"wrong cipher", "GET", "/file/download/" + efid.String(), nil, map[string]string{"Cipher": "wrong"}, "", 403},
		{"overlong header", "GET", "/version", nil, map[string]string{"X-Junk": strings.Repeat("a", 100<<10)}, "", 431},
		{"delete unsigned", "DELETE", "/file/" + fid.String(), nil, nil, "", 401},
		{"delete by a stranger", "DELETE", "/file/" + fid.String(), nil, nil, "stranger", 403},
		{"peer fragment index out of range", "GET", "/peer/fragment/" + fid.String() + "/0/99?hash=" + strings.Repeat("0", 64), nil, nil, "", 400},
		{"peer slice with a negative offset", "GET", "/peer/fragment/" + fid.String() + "/0/0?hash=" + strings.Repeat("0", 64) + "&offset=-1&length=5", nil, nil, "", 400},
		{"peer slice without a length", "GET", "/peer/fragment/" + fid.String() + "/0/0?hash=" + strings.Repeat("0", 64) + "&offset=0", nil, nil, "", 400},
		{"peer slice of a fragment not held", "GET", "/peer/fragment/" + strings.Repeat("0", 64) + "/0/0?hash=" + strings.Repeat("0", 64) + "&offset=0&length=5", nil, nil, "", 404},
		{"list of a malformed address", "GET", "/files/deoss1nothing", nil, nil, "user", 400},
		{"private file unsigned", "GET", "/file/download/" + pfid.String(), nil, nil, "", 401},
		{"private file opened unsigned", "GET", "/file/open/" + pfid.String(), nil, nil, "", 401},
		{"private file's metadata unsigned", "GET", "/file/metadata/" + pfid.String(), nil, nil, "", 401},
		{"private file signed by a stranger", "GET", "/file/download/" + pfid.String(), nil, nil, "stranger", 403},
		{"private file with a forged share link", "GET", "/file/download/" + pfid.String() + "?expires=1999999999&by=" + n.User.Address().String() + "&sig=" + strings.Repeat("ab", 64), nil, nil, "", 403},
	}
	stranger, _ := auth.Generate()
	// Another user who authorized the gateway too.
	other := chain.DevAccount("e2e-other")
	sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := devnet.SetupUser(sctx, n.Chain, other, "home", 1, 1, n.Gateways[0].Address); err != nil {
		t.Fatal(err)
	}
	before := gatewayState(t, n)
	var replay http.Header
	checked := 0 // cases that got their status and their body checked
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, gw+c.path, bytes.NewReader(c.body))
		for k, v := range c.hdr {
			req.Header.Set(k, v)
		}
		switch c.sign {
		case "user":
			auth.SignRequest(req, n.User, n.Target(gw), time.Minute)
		case "stranger":
			auth.SignRequest(req, stranger, n.Target(gw), time.Minute)
		case "bad-sig":
			auth.SignRequest(req, n.User, n.Target(gw), time.Minute)
			s := []byte(req.Header.Get(auth.HeaderSignature))
			s[0] ^= 1
			req.Header.Set(auth.HeaderSignature, string(s))
		case "expired":
			auth.SignRequest(req, n.User, n.Target(gw), -time.Minute)
		case "far-future":
			auth.SignRequest(req, n.User, n.Target(gw), time.Hour)
		case "other-path":
			other, _ := http.NewRequest(c.method, gw+"/upload/x", nil)
			auth.SignRequest(other, n.User, n.Target(gw), time.Minute)
			for _, h := range []string{auth.HeaderAccount, auth.HeaderMessage, auth.HeaderSignature} {
				req.Header.Set(h, other.Header.Get(h))
			}
		case "other-gateway":
			auth.SignRequest(req, n.User, types.Address{0x99}, time.Minute)
		case "swap-body":
			// Signed with the user's body; sent with another of the same
			// length.
			auth.SignRequest(req, n.User, n.Target(gw), time.Minute)
			evil := bytes.Clone(c.body)
			evil[len(evil)/2] ^= 0x20
			hdr := req.Header
			req, _ = http.NewRequest(c.method, gw+c.path, bytes.NewReader(evil))
			req.Header = hdr
		case "strip-cipher":
			req.Header.Set(auth.HeaderCipher, "the user's cipher")
			auth.SignRequest(req, n.User, n.Target(gw), time.Minute)
			req.Header.Del(auth.HeaderCipher)
		case "stranger-authorized":
			auth.SignRequest(req, other, n.Target(gw), time.Minute)
		case "malformed":
			auth.SignRequest(req, n.User, n.Target(gw), time.Minute)
			req.Header.Set(auth.HeaderMessage, "v1 soon")
		case "replay":
			if replay == nil {
				// Send one good request first; then the same headers again.
				first, _ := http.NewRequest(c.method, gw+c.path, bytes.NewReader([]byte(`{"name":"r","territory":"nope","size":1}`)))
				auth.SignRequest(first, n.User, n.Target(gw), time.Minute)
				resp, err := http.DefaultClient.Do(first)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				replay = first.Header
			}
			for _, h := range []string{auth.HeaderAccount, auth.HeaderMessage, auth.HeaderSignature} {
				req.Header.Set(h, replay.Get(h))
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, resp.StatusCode, body, c.want)
			continue
		}
		if c.want != 431 && c.want != 404 && !bytes.Contains(body, []byte(`"code"`)) && !strings.Contains(c.name, "dot-dot") {
			t.Errorf("%s: no JSON error: %s", c.name, body)
			continue
		}
		checked++
	}
	if checked != len(cases) || checked < 30 {
		t.Fatalf("%d of %d cases passed their checks (at least 30 must run)", checked, len(cases))
	}
	if after := gatewayState(t, n); after != before {
		t.Fatalf("state changed:\nbefore %s\nafter  %s", before, after)
	}

	// Guessing ciphers online: wrong ciphers against one file back off its
	// key derivations (doubling), so a guesser soon gets 429s with a
	// Retry-After instead of answers, whatever cipher it tries next.
	backedOff := false
	for i := range 12 {
		st, hdr, body := get(t, gw+"/file/download/"+efid.String(), map[string]string{"Cipher": fmt.Sprintf("guess-%d", i)})
		if st == 429 {
			if hdr.Get("Retry-After") == "" || !bytes.Contains(body, []byte("wrong ciphers")) {
				t.Fatalf("429 without Retry-After or reason: %v %s", hdr, body)
			}
			backedOff = true
			break
		}
		if st != 403 {
			t.Fatalf("guess %d: %d %s", i, st, body)
		}
	}
	if !backedOff {
		t.Fatal("12 wrong ciphers in a row and no back-off")
	}
}

// gatewayState summarises what a gateway holds: the user's files, the
// queue, the sessions and the chunks received.
func gatewayState(t *testing.T, n *Network) string {
	g := n.Gateways[0]
	_, files := n.Call("GET", g.URL+"/files/"+n.User.Address().String(), nil, nil)
	entries, _ := os.ReadDir(filepath.Join(g.Home, "sessions"))
	return fmt.Sprintf("files=%s queue=%v chunks=%v sessions=%d", files, metric(t, g.URL, "deoss_gateway_queue_files"),
		metric(t, g.URL, "deoss_gateway_chunks_total"), len(entries))
}
