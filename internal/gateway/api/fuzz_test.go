package api

import (
	"net/http"
	"testing"
)

// FuzzUploadRequests sends arbitrary session bodies, chunk indexes and
// checksums through the signed API: every answer is a 4xx or a success,
// never a 5xx or a panic.
func FuzzUploadRequests(f *testing.F) {
	f.Add(`{"name":"a","territory":"home","size":10,"chunk_size":5}`, "0", "00")
	f.Add(`{"name":"../x","territory":"home","size":-1}`, "-1", "zz")
	f.Add(`{"name":"a","territory":"home","size":1e30}`, "99999999999999999999", "")
	f.Add(`[]`, "1", "ab")
	srv, user, _ := newAPI(f) // one gateway for every input: it must stay sane
	f.Fuzz(func(t *testing.T, body, index, sum string) {
		c := &client{t: t, url: srv.URL, key: user}
		st, m := c.do("POST", "/upload", []byte(body), nil)
		if st >= 500 {
			t.Fatalf("create %q: %d %v", body, st, m)
		}
		id := "nosuch"
		if st == http.StatusCreated {
			id = m["id"].(string)
		}
		req, err := http.NewRequest("PUT", srv.URL+"/upload/"+id+"/"+index, nil)
		if err != nil || req.URL.Path != "/upload/"+id+"/"+index {
			return // not a path a client can send
		}
		if st, m := c.do("PUT", "/upload/"+id+"/"+index, []byte(body), map[string]string{ChunkHeader: sum}); st >= 500 {
			t.Fatalf("chunk %q %q: %d %v", index, sum, st, m)
		}
		if st, m := c.do("POST", "/upload/"+id+"/complete", nil, nil); st >= 500 {
			t.Fatalf("complete: %d %v", st, m)
		}
	})
}
