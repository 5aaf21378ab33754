package api

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"mime/multipart"
	"os"
	"path/filepath"
	"testing"

	"github.com/deoss/deoss/internal/gateway/work"
	"github.com/deoss/deoss/internal/types"
)

// multipartBody builds a form with the given fields in order; a field named
// "file" is a file part named filename.
func multipartBody(t *testing.T, filename string, fields ...[2]string) ([]byte, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		var w io.Writer
		var err error
		if f[0] == "file" {
			w, err = mw.CreateFormFile("file", filename)
		} else {
			w, err = mw.CreateFormField(f[0])
		}
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(f[1]))
	}
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

func TestMultipartFile(t *testing.T) {
	srv, user, _ := newAPI(t)
	c := &client{t: t, url: srv.URL, key: user}
	data := bytes.Repeat([]byte("multipart "), 300_000)
	st, obj := c.do("PUT", "/object/m.bin?territory=home", data, nil)
	if st != 201 {
		t.Fatalf("object: %d %v", st, obj)
	}
	body, ct := multipartBody(t, "m.bin", [2]string{"territory", "home"}, [2]string{"file", string(data)})
	st, got := c.do("PUT", "/file", body, map[string]string{"Content-Type": ct})
	if st != 201 || got["fid"] != obj["fid"] || got["name"] != "m.bin" || got["size"].(float64) != float64(len(data)) {
		t.Fatalf("multipart: %d %v, object gave %v", st, got, obj["fid"])
	}
	check := func(name string, st int, body map[string]any, want int, code string) {
		t.Helper()
		if st != want || body["code"] != code {
			t.Errorf("%s: %d %v, want %d %s", name, st, body, want, code)
		}
	}
	body, ct = multipartBody(t, "", [2]string{"territory", "home"})
	st, got = c.do("PUT", "/file", body, map[string]string{"Content-Type": ct})
	check("no file part", st, got, 400, "bad_multipart")
	body, ct = multipartBody(t, "../x", [2]string{"territory", "home"}, [2]string{"file", "abc"})
	st, got = c.do("PUT", "/file", body, map[string]string{"Content-Type": ct})
	check("path in filename", st, got, 400, "bad_name")
	st, got = c.do("PUT", "/file", []byte("plain"), map[string]string{"Content-Type": "text/plain"})
	check("not multipart", st, got, 400, "bad_multipart")
	body, ct = multipartBody(t, "big", [2]string{"territory", "tiny"}, [2]string{"file", string(bytes.Repeat([]byte{1}, 2<<20))})
	st, got = c.do("PUT", "/file", body, map[string]string{"Content-Type": ct})
	check("territory too small", st, got, 403, "insufficient_space")
}

func TestEncryptedSession(t *testing.T) {
	srv, user, _, root := newAPIRoot(t)
	c := &client{t: t, url: srv.URL, key: user}
	const secret = "correct horse battery staple"
	data := bytes.Repeat([]byte("secret data "), 100_000)
	st, body := c.do("POST", "/upload", []byte(fmt.Sprintf(`{"name":"s.bin","territory":"home","size":%d,"chunk_size":%d}`, len(data), len(data))), map[string]string{CipherHeader: secret})
	if st != 201 || body["encryption"] != types.EncryptionAES256GCM.String() {
		t.Fatalf("create: %d %v", st, body)
	}
	id := body["id"].(string)
	if st, _ := c.do("PUT", "/upload/"+id+"/0", data, map[string]string{ChunkHeader: fmt.Sprintf("%x", sha256.Sum256(data))}); st != 201 {
		t.Fatalf("chunk: %d", st)
	}
	if st, body := c.do("GET", "/upload/"+id, nil, nil); st != 200 || body["wrapped_key"] != nil {
		t.Fatalf("state shows the key: %d %v", st, body)
	}
	// Nothing under the gateway's folder holds the cipher or the file in
	// plaintext: not before complete (sealed chunks), not after (encrypted
	// fragments).
	noPlaintext := func(when string) {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte("secret data secret data")) {
					t.Errorf("%s: %s holds the cipher or the plaintext", when, p)
				}
			}
			return nil
		})
	}
	noPlaintext("before complete")
	st, body = c.do("POST", "/upload/"+id+"/complete", nil, nil)
	if st != 200 {
		t.Fatalf("complete: %d %v", st, body)
	}
	noPlaintext("after complete")
	fid, err := types.ParseFID(body["fid"].(string))
	if err != nil {
		t.Fatal(err)
	}
	area, _ := work.Open(filepath.Join(root, "work"))
	l, err := area.Layout(fid)
	if err != nil || l.Encryption != types.EncryptionAES256GCM || len(l.Salt) != types.SaltSize {
		t.Fatalf("layout: %+v %v", l, err)
	}
	// The plain upload of the same bytes is another file.
	if st, plain := c.do("PUT", "/object/s.bin?territory=home", data, nil); st != 201 || plain["fid"] == body["fid"] {
		t.Fatalf("plain: %d %v", st, plain)
	}
	// A one-shot upload with a cipher is encrypted too.
	if st, enc := c.do("PUT", "/object/s2.bin?territory=home", data, map[string]string{CipherHeader: secret}); st != 201 || enc["fid"] == body["fid"] {
		t.Fatalf("encrypted object: %d %v (fresh salt, so a new FID)", st, enc)
	}
}
