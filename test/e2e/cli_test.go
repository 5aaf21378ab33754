package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/testutil"
)

// devNet runs `deoss dev` as a process with HOME in a fresh folder of the
// test's, so that its network is in the default place (HOME/.deoss/dev),
// and waits for its ready line.
type devNet struct {
	t    *testing.T
	root string // the test's folder: process logs
	dir  string
	home string
	proc *Proc
}

func startDev(t *testing.T, args ...string) *devNet {
	root := t.TempDir()
	home := filepath.Join(root, "home")
	d := &devNet{t: t, root: root, dir: filepath.Join(home, ".deoss", "dev"), home: home}
	os.MkdirAll(d.home, 0o700)
	// The ports are reserved for the test, so that no other test process
	// takes them while deoss dev starts.
	base := testutil.FreePorts(t, 68) // chain, gateway, 64 nodes, the S3 port
	d.proc = startProcEnv(t, root, "dev", d.env(), append([]string{"dev", "--base-port", fmt.Sprint(base)}, args...)...)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		b, _ := os.ReadFile(filepath.Join(root, "dev.log"))
		if bytes.Contains(b, []byte("deoss dev: ready")) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("deoss dev never ready:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *devNet) env() []string { return []string{"HOME=" + d.home, "DEOSS_CONFIG="} }

// run runs a client command against the dev network's client.yaml.
func (d *devNet) run(a ...string) (string, string, int) {
	d.t.Helper()
	return d.runEnv(nil, append(a, "--config", filepath.Join(d.dir, "client.yaml"))...)
}

// runEnv runs a client command as it is, with extra environment variables
// (and HOME that of the dev network).
func (d *devNet) runEnv(env []string, a ...string) (string, string, int) {
	d.t.Helper()
	cmd := exec.Command(deossBin, a...)
	cmd.Env = append(append(os.Environ(), d.env()...), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestNewcomer: a fresh folder, `deoss dev`, put 100 MiB, get it back, the
// same bytes; then stat, ls, nodes, rm and the exit codes of bad input.
func TestNewcomer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole dev network")
	}
	d := startDev(t)
	src := filepath.Join(d.home, "hundred.bin")
	data := randomBytes(7, 100<<20)
	os.WriteFile(src, data, 0o600)
	out, errs, code := d.run("put", src)
	if code != 0 {
		t.Fatalf("put: %d %s", code, errs)
	}
	fid := lastLine(out)
	dst := filepath.Join(d.home, "back.bin")
	if _, errs, code := d.run("get", fid, "-o", dst); code != 0 {
		t.Fatalf("get: %d %s", code, errs)
	}
	got, _ := os.ReadFile(dst)
	mustEqual(t, "get", got, data)
	// An existing output is replaced, not taken for a partial download.
	os.WriteFile(dst, data[:12345], 0o600)
	if _, errs, code := d.run("get", fid, "-o", dst); code != 0 {
		t.Fatalf("get over a shorter file: %d %s", code, errs)
	}
	got, _ = os.ReadFile(dst)
	mustEqual(t, "get over a shorter file", got, data)
	if out, _, code := d.run("stat", fid); code != 0 || !strings.Contains(out, "size:       104857600") {
		t.Fatalf("stat: %d %s", code, out)
	}
	if out, _, code := d.run("ls"); code != 0 || !strings.Contains(out, fid) {
		t.Fatalf("ls: %d %s", code, out)
	}
	if out, _, code := d.run("nodes"); code != 0 || strings.Count(out, "active") != 12 {
		t.Fatalf("nodes: %d %s", code, out)
	}
	// deoss api: any request, signed; the status line, then the body.
	acct, _, _ := d.run("key", "show")
	if out, errs, code := d.run("api", "GET", "/files/"+strings.TrimSpace(acct)); code != 0 || !strings.HasPrefix(out, "HTTP/1.1 200 OK") || !strings.Contains(out, fid) {
		t.Fatalf("api list: %d %s %s", code, out, errs)
	}
	session := filepath.Join(d.home, "session.json")
	os.WriteFile(session, []byte(`{"name":"by-hand.bin","territory":"home","size":5}`), 0o600)
	if out, errs, code := d.run("api", "POST", "/upload", "--data", session); code != 0 || !strings.Contains(out, "201 Created") || !strings.Contains(out, `"chunks":1`) {
		t.Fatalf("api create: %d %s %s", code, out, errs)
	}
	if out, _, code := d.run("api", "DELETE", "/upload/"+strings.Repeat("0", 32)); code != 1 || !strings.Contains(out, "404 Not Found") || !strings.Contains(out, "no_session") {
		t.Fatalf("api 404: %d %s", code, out)
	}
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"get", "nothex"}, 2},
		{[]string{"stat", strings.Repeat("ab", 32)}, 3},
		{[]string{"put", filepath.Join(d.home, "missing")}, 1},
		{[]string{"put"}, 2},
	} {
		if _, errs, code := d.run(c.args...); code != c.code || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("deoss %v: exit %d (%q), want %d and one line", c.args, code, errs, c.code)
		}
	}
	out, errs, code = d.run("bench", "--size", fmt.Sprint(8<<20), "--ranges", "5", "--downloads", "2", "--json")
	var br struct {
		Upload   float64 `json:"upload_mb_per_s"`
		Download float64 `json:"download_mb_per_s"`
		Codec    float64 `json:"codec_encode_mb_per_s"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &br) != nil || br.Upload <= 0 || br.Download <= 0 || br.Codec <= 0 {
		t.Fatalf("bench: %d %s %s", code, out, errs)
	}
	if _, errs, code := d.run("rm", fid); code != 0 {
		t.Fatalf("rm: %d %s", code, errs)
	}
	if _, _, code := d.run("get", fid, "-o", filepath.Join(d.home, "gone")); code != 3 {
		t.Fatalf("get after rm: exit %d, want 3", code)
	}
	// Ctrl-C ends deoss dev cleanly; a second run reuses the folder.
	d.proc.Signal(os.Interrupt)
	if code := d.proc.Wait(); code != 0 {
		b, _ := os.ReadFile(filepath.Join(d.root, "dev.log"))
		t.Fatalf("deoss dev after Ctrl-C: exit %d\n%s", code, b)
	}
}

// TestUploadResume: the upload process is killed halfway; a re-run of the
// same command finishes it, and the gateway received each chunk once.
func TestUploadResume(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole dev network")
	}
	d := startDev(t)
	src := filepath.Join(d.home, "resume.bin")
	data := randomBytes(8, 64<<20)
	os.WriteFile(src, data, 0o600)
	gw := "http://" + readGateway(t, d)
	args := []string{"put", src, "--chunk-size", fmt.Sprint(1 << 20), "--concurrency", "1", "--config", filepath.Join(d.dir, "client.yaml")}
	p := startProcEnv(t, d.root, "put", d.env(), args...)
	deadline := time.Now().Add(2 * time.Minute)
	for metric(t, gw, `deoss_gateway_chunks_total{result="created"}`) < 16 {
		if time.Now().After(deadline) {
			t.Fatal("the upload never got going")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Kill()
	half := metric(t, gw, `deoss_gateway_chunks_total{result="created"}`)
	if half >= 64 {
		t.Fatalf("killed too late: %v chunks already stored", half)
	}
	out, errs, code := d.run("put", src, "--chunk-size", fmt.Sprint(1<<20), "--concurrency", "1")
	if code != 0 {
		t.Fatalf("re-run: %d %s", code, errs)
	}
	created := metric(t, gw, `deoss_gateway_chunks_total{result="created"}`)
	repeats := metric(t, gw, `deoss_gateway_chunks_total{result="repeat"}`)
	if created != 64 || repeats != 0 {
		t.Fatalf("gateway received %v new chunks and %v repeats, want 64 and 0 (killed after %v)", created, repeats, half)
	}
	dst := filepath.Join(d.home, "resumed.out")
	if _, errs, code := d.run("get", lastLine(out), "-o", dst); code != 0 {
		t.Fatalf("get: %s", errs)
	}
	got, _ := os.ReadFile(dst)
	mustEqual(t, "resumed upload", got, data)
}

func readGateway(t *testing.T, d *devNet) string {
	b, err := os.ReadFile(filepath.Join(d.dir, "client.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "gateway: "); ok {
			return strings.TrimPrefix(strings.TrimSpace(v), "http://")
		}
	}
	t.Fatal("no gateway in client.yaml")
	return ""
}

// TestDevWithSeparateNodes: `deoss dev --nodes 0` runs the chain and the
// gateway; twelve `deoss node` processes join it through the faucet, store a
// file, and four of them are killed: the file still reads back.
func TestDevWithSeparateNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a dev network and 12 node processes")
	}
	d := startDev(t, "--nodes", "0")
	var nw struct {
		ChainRPC string `json:"chain_rpc"`
	}
	b, _ := os.ReadFile(filepath.Join(d.dir, "network.json"))
	if err := json.Unmarshal(b, &nw); err != nil || nw.ChainRPC == "" {
		t.Fatalf("network.json: %s %v", b, err)
	}
	base := testutil.FreePorts(t, 12)
	nodes := make([]*Proc, 12)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			home := filepath.Join(d.home, fmt.Sprintf("node%02d", i))
			if _, code := cli(t, "node", "init", "--home", home, "--chain", nw.ChainRPC, "--listen", fmt.Sprintf("127.0.0.1:%d", base+i), "--capacity", fmt.Sprint(4<<30)); code != 0 {
				t.Errorf("node %d init", i)
			}
		})
	}
	wg.Wait()
	for i := range nodes {
		nodes[i] = startProc(t, d.home, fmt.Sprintf("node%02d", i), "node", "run", "--home", filepath.Join(d.home, fmt.Sprintf("node%02d", i)), "--log-level", "warn")
		waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", base+i))
	}
	src := filepath.Join(d.home, "joined.bin")
	data := randomBytes(9, 10<<20)
	os.WriteFile(src, data, 0o600)
	out, errs, code := d.run("put", src)
	if code != 0 {
		t.Fatalf("put: %s", errs)
	}
	fid := lastLine(out)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out, _, _ := d.run("stat", fid)
		if strings.Contains(out, "state:      stored") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not stored: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, p := range nodes[:4] {
		p.Kill()
	}
	dst := filepath.Join(d.home, "joined.out")
	if _, errs, code := d.run("get", fid, "-o", dst); code != 0 {
		t.Fatalf("get with 4 nodes dead: %s", errs)
	}
	got, _ := os.ReadFile(dst)
	mustEqual(t, "after 4 nodes died", got, data)
}

// TestDevTLS: `deoss dev --tls` serves the gateway and nodes over https with
// a CA of its own, and the client commands trust it through client.yaml:
// put with a cipher (taken over TLS only) and get it back.
func TestDevTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole dev network")
	}
	d := startDev(t, "--tls")
	var nw struct {
		Gateway string   `json:"gateway"`
		Nodes   []string `json:"node_urls"`
		TLS     bool     `json:"tls"`
	}
	b, _ := os.ReadFile(filepath.Join(d.dir, "network.json"))
	if json.Unmarshal(b, &nw) != nil || !nw.TLS || !strings.HasPrefix(nw.Gateway, "https://") || !strings.HasPrefix(nw.Nodes[0], "https://") {
		t.Fatalf("network.json: %s", b)
	}
	if out, _, code := d.run("config"); code != 0 || !strings.Contains(out, filepath.Join(d.dir, "tls", "ca.pem")) {
		t.Fatalf("config: %d %s", code, out)
	}
	src := filepath.Join(d.home, "secret.bin")
	data := randomBytes(8, 3<<20)
	os.WriteFile(src, data, 0o600)
	out, errs, code := d.run("put", src, "--cipher", "tls only")
	if code != 0 {
		t.Fatalf("put over TLS: %d %s", code, errs)
	}
	fid := lastLine(out)
	dst := filepath.Join(d.home, "back.bin")
	if _, errs, code := d.run("get", fid, "-o", dst, "--cipher", "tls only"); code != 0 {
		t.Fatalf("get over TLS: %d %s", code, errs)
	}
	got, _ := os.ReadFile(dst)
	mustEqual(t, "get over TLS", got, data)
	// Without the CA the client does not trust the gateway.
	if _, errs, code := d.run("stat", fid, "--ca-file", filepath.Join(d.dir, "user.json")); code == 0 {
		t.Fatalf("a key file taken as the CA: %s", errs)
	}
}
