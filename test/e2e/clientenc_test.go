package e2e

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deoss/deoss/sdk"
)

// TestClientSideEncryption: a file sealed by the SDK before it leaves
// round-trips whole and by ranges, the gateway serves only ciphertext, a
// wrong passphrase opens nothing, and no folder or log of the gateway holds
// a byte of the plaintext or the passphrase.
func TestClientSideEncryption(t *testing.T) {
	n := Start(t, Options{Nodes: 12})
	gw := n.Gateways[0]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := sdk.NewWithKey(gw.URL, n.User)
	const pass = "client side passphrase 7f3a"
	marker := []byte("CLIENT-SIDE-PLAINTEXT ")
	data := append(bytes.Repeat(marker, (5<<20)/len(marker)), randomBytes(43, 12345)...)
	fid, err := c.UploadReaderAt(ctx, bytes.NewReader(data), int64(len(data)), sdk.UploadOptions{Name: "sealed.bin", Encrypt: pass,
		ChunkSize: 1 << 20, Tuning: "-", StateFile: filepath.Join(t.TempDir(), "state")})
	if err != nil {
		t.Fatal(err)
	}
	n.WaitStored(fid, 2*time.Minute)

	var whole bytes.Buffer
	if size, err := c.Download(ctx, fid, &whole, 0, -1, sdk.DownloadOptions{Decrypt: pass}); err != nil || size != int64(len(data)) {
		t.Fatalf("whole: %v (size %d)", err, size)
	}
	mustEqual(t, "decrypted whole", whole.Bytes(), data)
	for _, r := range [][2]int64{{0, 1}, {65519, 2}, {1 << 20, 3 << 20}, {int64(len(data)) - 10, 10}, {12345, 1}} {
		var out bytes.Buffer
		if _, err := c.Download(ctx, fid, &out, r[0], r[1], sdk.DownloadOptions{Decrypt: pass}); err != nil {
			t.Fatalf("range %v: %v", r, err)
		}
		mustEqual(t, "decrypted range", out.Bytes(), data[r[0]:r[0]+r[1]])
	}
	dst := filepath.Join(t.TempDir(), "back.bin")
	if err := c.DownloadFile(ctx, fid, dst, sdk.DownloadOptions{Decrypt: pass}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dst)
	mustEqual(t, "DownloadFile decrypted", got, data)
	if _, err := c.Download(ctx, fid, &bytes.Buffer{}, 0, 100, sdk.DownloadOptions{Decrypt: "wrong"}); err == nil {
		t.Fatal("a wrong passphrase opened the file")
	}
	// What the gateway serves is the sealed stream.
	var raw bytes.Buffer
	if _, err := c.Download(ctx, fid, &raw, 0, -1, sdk.DownloadOptions{}); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw.Bytes(), []byte("DEOSSCE1")) || bytes.Contains(raw.Bytes(), marker) {
		t.Fatal("the gateway served something other than ciphertext")
	}
	// Nothing of the plaintext or the passphrase under the gateway's home or
	// in its log.
	roots := []string{gw.Home, filepath.Join(n.Dir, "gateway0.log")}
	for _, root := range roots {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, marker) || bytes.Contains(b, []byte(pass)) {
				t.Errorf("%s holds plaintext or the passphrase", p)
			}
			return nil
		})
	}
}
