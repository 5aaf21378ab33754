package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/deoss/deoss/sdk"
)

// TestTLSNetwork: every gateway and node of a network speaks https with a
// certificate of the network's CA; the gateway pushes to nodes over https,
// verifying them; a cipher goes over TLS (it is refused over plain HTTP
// elsewhere: TestCipherHeaderBoundAndNeedsTLS); the SDK trusts the CA file
// it is given and no other.
func TestTLSNetwork(t *testing.T) {
	n := Start(t, Options{Nodes: 12, TLS: true})
	gw := n.Gateways[0].URL
	if !strings.HasPrefix(gw, "https://") || !strings.HasPrefix(n.Nodes[0].URL, "https://") {
		t.Fatalf("not https: %s %s", gw, n.Nodes[0].URL)
	}
	// Plain HTTP to the TLS port gets no API.
	if resp, err := http.Get("http://" + strings.TrimPrefix(gw, "https://") + "/version"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP answered on the TLS port")
		}
	}

	// Encrypted at the gateway: the Cipher header is taken over TLS.
	data := randomBytes(41, 3<<20)
	secret := map[string]string{"Cipher": "over tls"}
	fid := n.Put(0, "tls.bin", bytes.NewReader(data), int64(len(data)), secret)
	n.WaitStored(fid, 2*time.Minute) // pushed to 12 nodes over https
	req, _ := http.NewRequest("GET", gw+"/file/download/"+fid.String(), nil)
	req.Header.Set("Cipher", "over tls")
	req.Header.Set("Range", "bytes=1000-1999")
	resp, err := n.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 {
		t.Fatalf("ranged download: %d %s", resp.StatusCode, got)
	}
	mustEqual(t, "range over TLS", got, data[1000:2000])

	// The SDK with the CA file: a chunked upload and a download.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := sdk.NewWithKey(gw, n.User)
	if err := c.Ping(ctx); err == nil {
		t.Fatal("the SDK trusted the network's CA without its file")
	}
	if err := c.UseCA(n.CA); err != nil {
		t.Fatal(err)
	}
	small := randomBytes(42, 1<<20+17)
	fid2, err := c.UploadReaderAt(ctx, bytes.NewReader(small), int64(len(small)), sdk.UploadOptions{Name: "sdk-tls.bin", Tuning: "-", StateFile: t.TempDir() + "/state"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := c.Download(ctx, fid2, &out, 0, -1, sdk.DownloadOptions{}); err != nil {
		t.Fatal(err)
	}
	mustEqual(t, "SDK round trip over TLS", out.Bytes(), small)
}
