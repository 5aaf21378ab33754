package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/ledger"
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

// TestGatewayShareLinks: the console's share links, which the gateway
// signs for an owner (POST /console/share), read the owner's private file
// without a key, are refused with their owner swapped, are made only for
// owners and for at most 7 days, and stop reading once the owner revokes
// the gateway.
func TestGatewayShareLinks(t *testing.T) {
	n := Start(t, Options{Nodes: -1})
	gw := n.Gateways[0]
	data := randomBytes(2121, 9000)
	resp := n.Do(nil, "PUT", gw.URL+"/object/shared.bin?territory=home&private=true", bytes.NewReader(data), int64(len(data)), nil)
	var rec struct {
		FID sdk.FID `json:"fid"`
	}
	json.NewDecoder(resp.Body).Decode(&rec)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put: %d", resp.StatusCode)
	}
	share := func(who *auth.Key, d string) (int, string) {
		t.Helper()
		resp := n.Do(who, "POST", gw.URL+"/console/share/"+rec.FID.String()+"?for="+d, nil, 0, nil)
		defer resp.Body.Close()
		var m struct {
			URL  string `json:"url"`
			Code string `json:"code"`
		}
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m.URL + m.Code
	}
	st, link := share(nil, "1h")
	if st != 200 || !strings.HasPrefix(link, "/file/download/"+rec.FID.String()+"?") {
		t.Fatalf("share: %d %s", st, link)
	}
	st, _, body := get(t, gw.URL+link, nil)
	if st != 200 {
		t.Fatalf("the gateway's link: %d %s", st, body)
	}
	mustEqual(t, "through the gateway's link", body, data)

	// The owner swapped for another account: the signature no longer holds.
	other := chain.DevAccount("e2e-share-other")
	for _, m := range []ledger.Msg{{Faucet: &ledger.Faucet{}}, {Authorize: &ledger.Authorize{Gateway: gw.Address}}} {
		if _, err := n.Chain.Signer(other).Submit(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	u, _ := url.Parse(link)
	q := u.Query()
	q.Set("for", other.Address().String())
	if st, _, body := get(t, gw.URL+u.Path+"?"+q.Encode(), nil); st != 403 || !bytes.Contains(body, []byte("bad_share_link")) {
		t.Fatalf("a link with its owner swapped: %d %s", st, body)
	}
	if st, msg := share(other, "1h"); st != 403 || msg != "not_owner" {
		t.Fatalf("a link asked for by a non-owner: %d %s", st, msg)
	}
	if st, msg := share(nil, "169h"); st != 400 || msg != "bad_duration" {
		t.Fatalf("a link for longer than 7 days: %d %s", st, msg)
	}

	// The owner revokes the gateway: its links stop (its authorization
	// answers are kept up to 10 s).
	if _, err := n.Chain.Signer(n.User).Submit(context.Background(), ledger.Msg{Revoke: &ledger.Revoke{Gateway: gw.Address}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, func() error {
		st, _, body := get(t, gw.URL+link, nil)
		if st == 403 && bytes.Contains(body, []byte("bad_share_link")) {
			return nil
		}
		if st != 200 {
			t.Fatalf("the link after the owner revoked the gateway: %d %s", st, body)
		}
		return fmt.Errorf("the link still reads after the owner revoked the gateway")
	})
}
