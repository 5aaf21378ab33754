package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/sdk"
)

// TestPrivateFiles: a file put private is served, by every gateway, to its
// owner's signed requests and to share links the owner made, and to nobody
// else; a public file stays public by FID.
func TestPrivateFiles(t *testing.T) {
	n := Start(t, Options{Nodes: 12, Gateways: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := sdk.NewWithKey(n.Gateways[0].URL, n.User)
	data := randomBytes(51, 2<<20+99)
	fid, err := c.UploadReaderAt(ctx, bytes.NewReader(data), int64(len(data)), sdk.UploadOptions{Name: "private.bin", Private: true,
		Tuning: "-", StateFile: t.TempDir() + "/state"})
	if err != nil {
		t.Fatal(err)
	}
	f := n.WaitStored(fid, 2*time.Minute)
	if len(f.Owners) != 1 || !f.Owners[0].Private {
		t.Fatalf("on chain: %+v", f.Owners)
	}
	stranger, _ := auth.Generate()
	for _, gw := range n.Gateways {
		for _, path := range []string{"/file/download/", "/file/open/", "/file/metadata/"} {
			if st, _, body := get(t, gw.URL+path+fid.String(), nil); st != 401 || !bytes.Contains(body, []byte(`"private"`)) {
				t.Fatalf("%s%s unsigned: %d %s", gw.URL, path, st, body)
			}
		}
		resp := n.Do(stranger, "GET", gw.URL+"/file/download/"+fid.String(), nil, 0, nil)
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("%s: a stranger's signed download: %d", gw.URL, resp.StatusCode)
		}
		// The owner's signed requests (the SDK signs every request).
		oc := sdk.NewWithKey(gw.URL, n.User)
		var out bytes.Buffer
		if _, err := oc.Download(ctx, fid, &out, 1000, 5000, sdk.DownloadOptions{}); err != nil {
			t.Fatalf("%s: the owner's range: %v", gw.URL, err)
		}
		mustEqual(t, "owner's range", out.Bytes(), data[1000:6000])
	}
	// A share link: anyone reads with it, ranges too; not another file, not
	// with its expiry changed.
	link, err := c.ShareURL(fid, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	st, _, body := get(t, link, map[string]string{"Range": "bytes=0-99"})
	if st != 206 {
		t.Fatalf("share link: %d %s", st, body)
	}
	mustEqual(t, "through the share link", body, data[:100])
	other := n.Put(0, "public.bin", bytes.NewReader(data[:5000]), 5000, nil)
	resp := n.Do(nil, "PUT", n.Gateways[0].URL+"/object/second.bin?territory=home&private=true", bytes.NewReader(data[:7000]), 7000, nil)
	var rec struct {
		FID sdk.FID `json:"fid"`
	}
	json.NewDecoder(resp.Body).Decode(&rec)
	resp.Body.Close()
	u, _ := url.Parse(link)
	if st, _, _ := get(t, n.Gateways[0].URL+"/file/download/"+rec.FID.String()+"?"+u.RawQuery, nil); st != 403 {
		t.Fatalf("a link used for another private file: %d", st)
	}
	if st, _, _ := get(t, n.Gateways[0].URL+"/file/download/"+rec.FID.String(), nil); st != 401 {
		t.Fatalf("a private file pending at its gateway, unsigned: %d", st)
	}
	q := u.Query()
	q.Set("expires", "1999999999")
	if st, _, _ := get(t, n.Gateways[1].URL+u.Path+"?"+q.Encode(), nil); st != 403 {
		t.Fatalf("a link with its expiry pushed out: %d", st)
	}
	// The public file is public.
	resp, err = http.Get(n.Gateways[1].URL + "/file/download/" + other.String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(data), string(b)) {
		t.Fatalf("public file: %d", resp.StatusCode)
	}
}
