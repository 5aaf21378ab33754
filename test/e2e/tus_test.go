package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/testutil"
	"github.com/deoss/deoss/internal/types"
)

// tusClient runs test/e2e/tusjs/upload.mjs (tus-js-client under Node) for
// the network's user against gateway g; it returns the command and its
// output lines. Without Node or its packages the test is skipped (failed
// when DEOSS_NODE_TESTS=require, as .ci/run sets after npm ci).
func tusClient(t *testing.T, n *Network, g int, mode, file string) *exec.Cmd {
	t.Helper()
	if _, err := os.Stat(filepath.Join("tusjs", "node_modules", "tus-js-client")); err != nil || !hasNode() {
		if os.Getenv("DEOSS_NODE_TESTS") == "require" {
			t.Fatalf("tus-js-client is not installed (npm ci --prefix test/e2e/tusjs): %v", err)
		}
		t.Skip("no Node or no tus-js-client (npm ci --prefix test/e2e/tusjs)")
	}
	gw := n.Gateways[g]
	cmd := exec.Command("node", "upload.mjs", mode, file)
	cmd.Dir = "tusjs"
	cmd.Env = append(os.Environ(), "DEOSS_TUS="+gw.URL+"/tus/", "DEOSS_TARGET="+gw.Address.String(),
		"DEOSS_ACCOUNT="+n.User.Address().String(), "DEOSS_KEY_SEED="+hex.EncodeToString(n.User.Seed()))
	cmd.Stderr = os.Stderr
	return cmd
}

func hasNode() bool { _, err := exec.LookPath("node"); return err == nil }

// tusLines runs cmd, calling each(line) for every JSON line it prints, and
// returns the FID it ends with.
func tusLines(t *testing.T, cmd *exec.Cmd, each func(map[string]any)) types.FID {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var fid types.FID
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			continue
		}
		if s, ok := m["fid"].(string); ok {
			if fid, err = types.ParseFID(s); err != nil {
				t.Fatalf("tus-js-client got FID %q: %v", s, err)
			}
		}
		if each != nil {
			each(m)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("tus-js-client: %v", err)
	}
	return fid
}

// TestTusUploads: tus-js-client uploads a 64 MiB file three ways, each
// ending with the FID the native API gives the same bytes: aborted after
// about 8 MiB and resumed from its URL (the gateway reports what it kept);
// as four partial uploads concatenated; and in 4 MiB PATCHes with the
// gateway killed and restarted midway, the client resuming from the offset
// the gateway reports after its restart.
func TestTusUploads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 14 processes")
	}
	n := Start(t, Options{Nodes: 12})
	size := int64(64 << 20)
	data := randomBytes(8801, int(size))
	file := filepath.Join(t.TempDir(), "tus.bin")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	want := n.Put(0, "native.bin", bytes.NewReader(data), size, nil)

	offsetOf := func(m map[string]any) (int64, bool) {
		v, ok := m["offset"].(float64)
		return int64(v), ok
	}
	var resumedAt int64 = -1
	fid := tusLines(t, tusClient(t, n, 0, "abort-resume", file), func(m map[string]any) {
		if o, ok := offsetOf(m); ok && resumedAt < 0 {
			resumedAt = o
		}
	})
	if fid != want {
		t.Fatalf("aborted and resumed: FID %s, the native upload's is %s", fid, want)
	}
	if resumedAt <= 0 || resumedAt >= size {
		t.Fatalf("resumed at %d: the gateway kept none of the first bytes, or all", resumedAt)
	}
	t.Logf("aborted after about 8 MiB; resumed at %d", resumedAt)

	if fid := tusLines(t, tusClient(t, n, 0, "parallel", file), nil); fid != want {
		t.Fatalf("four partials concatenated: FID %s, want %s", fid, want)
	}

	gw := n.Gateways[0]
	killed := false
	var afterRestart []int64
	fid = tusLines(t, tusClient(t, n, 0, "chunked", file), func(m map[string]any) {
		if p, ok := m["progress"].(float64); ok && !killed && p >= 20<<20 {
			killed = true
			gw.Kill()
			gw.Restart()
			testutil.WaitHTTPWith(t, n.HTTP, gw.URL+"/version")
		}
		if o, ok := offsetOf(m); ok && killed {
			afterRestart = append(afterRestart, o)
		}
	})
	if !killed || fid != want {
		t.Fatalf("killed %v; FID %s, want %s", killed, fid, want)
	}
	if len(afterRestart) == 0 || afterRestart[0] < 4<<20 || afterRestart[0]%(4<<20) != 0 {
		t.Fatalf("after the restart the gateway reported offsets %v: not a whole number of the PATCHes before", afterRestart)
	}
	t.Logf("gateway killed at 20 MiB sent; it reported %d after its restart", afterRestart[0])
	n.WaitStored(want, 3*time.Minute)
}

// TestTusHostile: unsigned requests, a stranger's requests, wrong offsets,
// an overlong PATCH, a body that does not match its signed hash, and a
// final upload of another account's partials are refused, and none of
// them moves an upload's offset.
func TestTusHostile(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 6 processes")
	}
	n := Start(t, Options{Nodes: 4})
	bob := devAccount(t, n, "tus-bob")
	base := n.Gateways[0].URL + "/tus/"
	do := func(key *auth.Key, method, url string, body []byte, hdr map[string]string) *http.Response {
		h := map[string]string{"Tus-Resumable": "1.0.0"}
		for k, v := range hdr {
			h[k] = v
		}
		if body != nil {
			h["Content-Type"] = "application/offset+octet-stream"
			return n.Do(key, method, url, bytes.NewReader(body), int64(len(body)), h)
		}
		return n.Do(key, method, url, nil, 0, h)
	}
	create := func(key *auth.Key, hdr map[string]string) string {
		h := map[string]string{"Upload-Metadata": "filename " + b64("h.bin") + ",territory " + b64("home")}
		for k, v := range hdr {
			h[k] = v
		}
		resp := do(key, "POST", base, nil, h)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("create: %d", resp.StatusCode)
		}
		return n.Gateways[0].URL + resp.Header.Get("Location")[strings.Index(resp.Header.Get("Location"), "/tus/"):]
	}
	offset := func(url string) int64 {
		resp := do(nil, "HEAD", url, nil, nil)
		resp.Body.Close()
		o, _ := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
		return o
	}
	status := func(resp *http.Response) int { resp.Body.Close(); return resp.StatusCode }

	// Unsigned.
	req, _ := http.NewRequest("POST", base, nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", "10")
	resp, err := n.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if status(resp) != http.StatusUnauthorized {
		t.Fatalf("an unsigned creation: %d", resp.StatusCode)
	}

	url := create(nil, map[string]string{"Upload-Length": "1000"})
	body := bytes.Repeat([]byte("t"), 1000)
	if st := status(do(nil, "PATCH", url, body[:100], map[string]string{"Upload-Offset": "10"})); st != http.StatusConflict {
		t.Fatalf("a PATCH at the wrong offset: %d", st)
	}
	if st := status(do(nil, "PATCH", url, append(bytes.Clone(body), 'x'), map[string]string{"Upload-Offset": "0"})); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("a PATCH past the length: %d", st)
	}
	if st := status(do(bob, "PATCH", url, body[:100], map[string]string{"Upload-Offset": "0"})); st < 400 {
		t.Fatalf("a stranger's PATCH: %d", st)
	}
	if st := status(do(bob, "HEAD", url, nil, nil)); st < 400 {
		t.Fatalf("a stranger's HEAD: %d", st)
	}
	// A body that is not the one signed: signed for 100 bytes of "t", sent
	// 100 of "u".
	h := map[string]string{"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream",
		auth.HeaderContentSHA256: auth.BodyHash(body[:100])}
	if resp := n.Do(nil, "PATCH", url, bytes.NewReader(bytes.Repeat([]byte("u"), 100)), 100, h); resp.StatusCode != http.StatusBadRequest {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("a swapped body: %d %s", resp.StatusCode, b)
	}
	if o := offset(url); o != 0 {
		t.Fatalf("after the refused PATCHes the offset is %d", o)
	}
	if st := status(do(nil, "PATCH", url, body[:600], map[string]string{"Upload-Offset": "0"})); st != http.StatusNoContent {
		t.Fatalf("a good PATCH: %d", st)
	}
	if o := offset(url); o != 600 {
		t.Fatalf("offset %d, want 600", o)
	}

	// Another account's partials.
	part := create(nil, map[string]string{"Upload-Length": "10", "Upload-Concat": "partial"})
	if st := status(do(nil, "PATCH", part, body[:10], map[string]string{"Upload-Offset": "0"})); st != http.StatusNoContent {
		t.Fatalf("the partial's PATCH: %d", st)
	}
	resp = do(bob, "POST", base, nil, map[string]string{"Upload-Concat": "final;" + part[strings.Index(part, "/tus/"):],
		"Upload-Metadata": "filename " + b64("stolen.bin") + ",territory " + b64("home")})
	if status(resp) < 400 {
		t.Fatalf("bob concatenated alice's partial: %d", resp.StatusCode)
	}
	// Terminated: gone.
	if st := status(do(nil, "DELETE", url, nil, nil)); st != http.StatusNoContent {
		t.Fatalf("terminate: %d", st)
	}
	if st := status(do(nil, "HEAD", url, nil, nil)); st != http.StatusNotFound {
		t.Fatalf("a terminated upload: %d", st)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
