package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientCommands: after `deoss dev` in a fresh home, every client command
// finds the same configuration (the chain commands included, with no flag);
// --config and DEOSS_CONFIG are honoured; `put` of a folder creates nothing
// without -r and stores every file with it; `get` into an existing file
// never keeps or mixes in another file's bytes.
func TestClientCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole dev network")
	}
	d := startDev(t)
	var nw struct {
		User    string `json:"user"`
		Gateway string `json:"gateway"`
	}
	b, _ := os.ReadFile(filepath.Join(d.dir, "network.json"))
	if err := json.Unmarshal(b, &nw); err != nil || nw.User == "" {
		t.Fatalf("network.json: %v %s", err, b)
	}
	bare := func(env []string, a ...string) string {
		t.Helper()
		out, errs, code := d.runEnv(env, a...)
		if code != 0 {
			t.Fatalf("deoss %v: exit %d: %s", a, code, errs)
		}
		return out
	}

	// The chain commands of the README, with no flag and no environment.
	if out := bare(nil, "key", "show"); strings.TrimSpace(out) != nw.User {
		t.Fatalf("key show: %q, want the dev account %s", out, nw.User)
	}
	if out := bare(nil, "account", "balance"); !strings.Contains(out, `"balance"`) {
		t.Fatalf("account balance: %s", out)
	}
	if out := bare(nil, "territory", "show", "home"); !strings.Contains(out, `"name": "home"`) || !strings.Contains(out, nw.User) {
		t.Fatalf("territory show home: %s", out)
	}
	if out := bare(nil, "gateway", "list"); !strings.Contains(out, nw.Gateway) {
		t.Fatalf("gateway list: %s", out)
	}
	out := bare(nil, "config")
	for _, want := range []string{"gateway:   " + nw.Gateway, filepath.Join(d.dir, "client.yaml"), "ok   chain", "ok   account", "ok   territory home", "ok   authorized gateways"} {
		if !strings.Contains(out, want) {
			t.Errorf("config lacks %q:\n%s", want, out)
		}
	}
	var rep struct {
		Config struct {
			Chain struct{ Source string } `json:"chain"`
		} `json:"config"`
		Territories []struct {
			Name string `json:"name"`
		} `json:"territories"`
	}
	if err := json.Unmarshal([]byte(bare([]string{"DEOSS_CHAIN=" + chainOf(t, d)}, "config", "--json")), &rep); err != nil ||
		rep.Config.Chain.Source != "env DEOSS_CHAIN" || len(rep.Territories) != 1 {
		t.Fatalf("config --json with DEOSS_CHAIN: %+v %v", rep, err)
	}
	// A config that points nowhere is reported, with a failing exit code.
	if _, _, code := d.runEnv(nil, "config", "--chain", "http://127.0.0.1:1"); code == 0 {
		t.Fatal("config with a dead chain exited 0")
	}

	// Another config file, naming another key: --config and DEOSS_CONFIG
	// take it for every command.
	other := filepath.Join(d.home, "other.json")
	addr := strings.TrimSpace(bare(nil, "key", "new", "--key", other))
	alt := filepath.Join(d.home, "alt.yaml")
	os.WriteFile(alt, []byte("key: other.json\nterritory: elsewhere\n"), 0o600)
	if out := bare(nil, "--config", alt, "key", "show"); strings.TrimSpace(out) != addr {
		t.Fatalf("--config: key show %q, want %s", out, addr)
	}
	if out := bare([]string{"DEOSS_CONFIG=" + alt}, "account", "balance"); !strings.Contains(out, `"balance": 0`) {
		t.Fatalf("DEOSS_CONFIG: account balance of the other key: %s", out)
	}
	if _, errs, code := d.runEnv([]string{"DEOSS_CONFIG=" + alt}, "territory", "show", "home"); code != 3 {
		t.Fatalf("DEOSS_CONFIG: the other key has no territory: exit %d %s", code, errs)
	}
	if _, errs, code := d.runEnv(nil, "--config", filepath.Join(d.home, "none.yaml"), "ls"); code != 2 || !strings.Contains(errs, "none.yaml") {
		t.Fatalf("--config of a missing file: exit %d %s", code, errs)
	}

	// put of a folder: refused without -r before any session exists.
	gw := nw.Gateway
	tree := filepath.Join(d.home, "photos")
	files := map[string][]byte{"a.jpg": randomBytes(31, 1000), "sub/b.jpg": randomBytes(32, 3<<20), "sub/deeper/c.txt": randomBytes(33, 1)}
	for rel, data := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(tree, rel)), 0o700)
		os.WriteFile(filepath.Join(tree, rel), data, 0o600)
	}
	if _, errs, code := d.runEnv(nil, "put", tree); code != 2 || !strings.Contains(errs, "-r") {
		t.Fatalf("put of a folder: exit %d %s", code, errs)
	}
	if n := metric(t, gw, "deoss_gateway_sessions_total"); n != 0 {
		t.Fatalf("put of a folder without -r created %v sessions", n)
	}
	out = bare(nil, "put", "-r", tree)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(files) {
		t.Fatalf("put -r printed %d lines for %d files:\n%s", len(lines), len(files), out)
	}
	fids := map[string]string{}
	for _, l := range lines {
		fid, rel, ok := strings.Cut(l, "\t")
		if !ok || files[rel] == nil {
			t.Fatalf("put -r line %q", l)
		}
		fids[rel] = fid
	}
	for rel, data := range files {
		dst := filepath.Join(d.home, "back-"+filepath.Base(rel))
		bare(nil, "get", fids[rel], "-o", dst)
		got, _ := os.ReadFile(dst)
		mustEqual(t, "put -r "+rel, got, data)
	}
	// --json, for scripts.
	var listed []struct {
		FID string `json:"fid"`
	}
	if err := json.Unmarshal([]byte(bare(nil, "ls", "--json")), &listed); err != nil || len(listed) < len(files) {
		t.Fatalf("ls --json: %v %+v", err, listed)
	}
	var nodes []struct {
		Address string `json:"address"`
	}
	if err := json.Unmarshal([]byte(bare(nil, "nodes", "--json")), &nodes); err != nil || len(nodes) != 12 {
		t.Fatalf("nodes --json: %v %d nodes", err, len(nodes))
	}
	var st struct {
		FID  string `json:"fid"`
		Size int    `json:"size"`
	}
	if err := json.Unmarshal([]byte(bare(nil, "stat", fids["a.jpg"], "--json")), &st); err != nil || st.FID != fids["a.jpg"] || st.Size != 1000 {
		t.Fatalf("stat --json: %v %+v", err, st)
	}
	if out := bare(nil, "account", "balance", "--json"); !strings.Contains(out, `"balance"`) {
		t.Fatalf("account balance --json: %s", out)
	}

	// A second run stores the same files again: the same FIDs.
	if again := bare(nil, "put", "-r", tree); again != out {
		t.Fatalf("put -r again:\n%s\nfirst:\n%s", again, out)
	}

	// get into an existing file (the three commands).
	a1, a2, a3 := randomBytes(41, 1024), randomBytes(42, 1024), randomBytes(43, 2048)
	var f [3]string
	for i, data := range [][]byte{a1, a2, a3} {
		src := filepath.Join(d.home, "a"+string(rune('1'+i)))
		os.WriteFile(src, data, 0o600)
		f[i] = lastLine(bare(nil, "put", src))
	}
	dst := filepath.Join(d.home, "out")
	for i, want := range [][]byte{a1, a2, a3} {
		bare(nil, "get", f[i], "-o", dst)
		got, _ := os.ReadFile(dst)
		mustEqual(t, "get over another file's bytes", got, want)
	}
	// --no-clobber refuses and leaves the file alone.
	if _, errs, code := d.runEnv(nil, "get", f[0], "-o", dst, "--no-clobber"); code != 6 || !strings.Contains(errs, "no-clobber") {
		t.Fatalf("--no-clobber: exit %d %s", code, errs)
	}
	got, _ := os.ReadFile(dst)
	mustEqual(t, "after --no-clobber", got, a3)
	// A partial file of another FID is discarded, with a word, not continued.
	part := filepath.Join(d.home, "mixed")
	os.WriteFile(part+".deoss-partial", a1, 0o600)
	os.WriteFile(part+".deoss-partial.json", []byte(`{"fid":"`+f[0]+`","version":1,"size":1024,"synced":1024}`), 0o600)
	if _, errs, code := d.runEnv(nil, "get", f[2], "-o", part); code != 0 || !strings.Contains(errs, "discarded") {
		t.Fatalf("get beside another FID's partial file: exit %d %q", code, errs)
	}
	got, _ = os.ReadFile(part)
	mustEqual(t, "get beside another FID's partial file", got, a3)
	if _, err := os.Stat(part + ".deoss-partial"); !os.IsNotExist(err) {
		t.Fatalf("the partial file stayed: %v", err)
	}
	// -o - streams to standard output.
	cmd := exec.Command(deossBin, "get", f[1], "-o", "-")
	cmd.Env = append(os.Environ(), d.env()...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		t.Fatalf("get -o -: %v", err)
	}
	mustEqual(t, "get -o -", stdout.Bytes(), a2)

	runReadme(t, d)
}

func chainOf(t *testing.T, d *devNet) string {
	var nw struct {
		ChainRPC string `json:"chain_rpc"`
	}
	b, _ := os.ReadFile(filepath.Join(d.dir, "network.json"))
	if err := json.Unmarshal(b, &nw); err != nil {
		t.Fatal(err)
	}
	return nw.ChainRPC
}

// readmeBlock is the shell block of the README's "Store and read files".
func readmeBlock(t *testing.T) string {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## Store and read files")
	if !ok {
		t.Fatal("README has no \"Store and read files\"")
	}
	_, rest, _ = strings.Cut(rest, "```sh\n")
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("README's block is not closed")
	}
	return block
}

// runReadme runs the README's block in a fresh folder of d's home, with
// ./deoss the binary under test, the files it names made up, and checks
// what it says it does.
func runReadme(t *testing.T, d *devNet) {
	block := readmeBlock(t)
	work := filepath.Join(d.home, "readme")
	os.MkdirAll(filepath.Join(work, "photos", "2026"), 0o700)
	if err := os.Symlink(deossBin, filepath.Join(work, "deoss")); err != nil {
		t.Fatal(err)
	}
	movie, taxes := randomBytes(51, 5<<20), randomBytes(52, 70000)
	os.WriteFile(filepath.Join(work, "movie.mp4"), movie, 0o600)
	os.WriteFile(filepath.Join(work, "taxes.pdf"), taxes, 0o600)
	os.WriteFile(filepath.Join(work, "photos", "2026", "beach.jpg"), randomBytes(53, 3000), 0o600)
	lines := strings.Split(block, "\n")
	if !strings.HasPrefix(lines[0], "go build") {
		t.Fatalf("the block does not start with the build: %q", lines[0])
	}
	script := "set -ex\n" + strings.Join(lines[1:], "\n") // the binary is built already
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), d.env()...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("the README's block failed: %v\n%s", err, out.String())
	}
	for name, want := range map[string][]byte{"copy.mp4": movie, "taxes-copy.pdf": taxes} {
		got, _ := os.ReadFile(filepath.Join(work, name))
		mustEqual(t, "README "+name, got, want)
	}
	if !strings.Contains(out.String(), "\t2026/beach.jpg") {
		t.Errorf("put -r did not list photos/2026/beach.jpg:\n%s", out.String())
	}
}
