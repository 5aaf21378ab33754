package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/devnet"
	"github.com/deoss/deoss/internal/gateway"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/testutil"
	"github.com/deoss/deoss/internal/tlsutil"
	"github.com/deoss/deoss/internal/types"
)

// deossBin is the deoss binary, built once for the package.
var deossBin string

func TestMain(m *testing.M) {
	bin, err := testutil.BuildDeoss("../../cmd/deoss")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	deossBin = bin
	// The commands must not read (or write) the ~/.deoss of whoever runs
	// the tests: a dev network there would become their configuration.
	restore := testutil.IsolateHome(filepath.Dir(bin))
	code := m.Run()
	restore()
	os.RemoveAll(filepath.Dir(bin))
	os.Exit(code)
}

// cli runs the deoss binary to its end and returns standard output and the
// exit code.
func cli(t testing.TB, a ...string) (string, int) {
	t.Helper()
	return testutil.Run(t, deossBin, nil, a...)
}

// Proc is one deoss daemon process.
type Proc = testutil.Proc

func startProc(t testing.TB, dir, name string, a ...string) *Proc {
	t.Helper()
	return testutil.StartProc(t, deossBin, dir, name, nil, a...)
}

// startProcEnv starts a process with extra environment variables.
func startProcEnv(t testing.TB, dir, name string, env []string, a ...string) *Proc {
	t.Helper()
	return testutil.StartProc(t, deossBin, dir, name, env, a...)
}

func waitHTTP(t testing.TB, url string) { t.Helper(); testutil.WaitHTTP(t, url) }

// Gateway is a gateway process of a network.
type Gateway struct {
	*Proc
	Home    string
	URL     string
	S3URL   string // its S3 endpoint
	Address types.Address
}

// Node is a storage node process of a network.
type Node struct {
	*Proc
	Home    string
	URL     string
	Address types.Address
}

// Options shape a network.
type Options struct {
	// Validators: 1 (default) or more; the network talks to the first.
	Validators int
	// CacheOnly makes gateway i a cache node (registered as such).
	CacheOnly func(i int) bool
	Nodes     int // storage nodes (default 14; -1 for none)
	Gateways  int // default 1
	// Gateway edits each gateway's gateway.json before its first start.
	Gateway func(i int, cfg map[string]any)
	// NodeArgs adds arguments to node i's `deoss node run`.
	NodeArgs func(i int) []string
	// Capacity of each node in bytes (default 8 GiB).
	Capacity int64
	// TerritoryGiB is the user's territory size (default 4).
	TerritoryGiB uint64
	// TLS serves every gateway and node over https with a CA of the
	// network's own (Network.CA); Network.HTTP trusts it.
	TLS bool
	// Packs turns packing on: each gateway buys a territory "packs" and
	// seals a pack every 2 s.
	Packs bool
	// Proofs edits the chain's proof parameters. Without it proofs are
	// off: most tests stop and kill nodes, and must not see them turn
	// suspect or faulty when their test ran long on a loaded machine.
	Proofs func(*ledger.Params)
}

// Network is a validator, gateways and storage nodes, each its own process,
// and a funded user with a territory "home" who authorized every gateway.
type Network struct {
	t          testing.TB
	Dir        string
	RPC        string
	Chain      *chain.Client
	Validator  *Proc // the first validator
	Validators []*Proc
	RPCs       []string // each validator's RPC
	Nodes      []*Node
	Gateways   []*Gateway
	User       *auth.Key
	// HTTP is the client for the network's gateways and nodes (it trusts
	// CA, the network's CA file, on a TLS network).
	HTTP *http.Client
	CA   string
}

// Start starts a network (devnet.Assemble, every part a process) and waits
// until every part answers.
func Start(t testing.TB, o Options) *Network {
	t.Helper()
	switch o.Nodes {
	case 0:
		o.Nodes = 14
	case -1:
		o.Nodes = 0
	}
	if o.Gateways == 0 {
		o.Gateways = 1
	}
	if o.Validators == 0 {
		o.Validators = 1
	}
	if o.Capacity == 0 {
		o.Capacity = 8 << 30
	}
	if o.TerritoryGiB == 0 {
		o.TerritoryGiB = 4
	}
	dir := t.TempDir()
	layout := devnet.Layout{Dir: dir, Validators: o.Validators, Gateways: o.Gateways, Nodes: o.Nodes}
	layout.Base = testutil.FreePorts(t, layout.Ports())
	n := &Network{t: t, Dir: dir, RPC: layout.ValidatorRPC(0), HTTP: http.DefaultClient}
	for i := range o.Validators {
		n.RPCs = append(n.RPCs, layout.ValidatorRPC(i))
	}
	t.Cleanup(func() {
		if t.Failed() {
			n.dumpLogs("gateway")
		}
		if keep := os.Getenv("DEOSS_E2E_KEEP_LOGS"); keep != "" {
			// Copy every log out of the test's folder before it goes.
			os.MkdirAll(keep, 0o755)
			logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				os.WriteFile(filepath.Join(keep, filepath.Base(l)), b, 0o644)
			}
		}
	})
	commit := 10 * time.Millisecond
	if o.Validators > 1 {
		commit = 100 * time.Millisecond
	}
	params := func(p *ledger.Params) { p.EpochSeconds = 0 }
	if o.Proofs != nil {
		params = o.Proofs
	}
	spec := devnet.Spec{Layout: layout, TimeoutCommit: commit, NodeCapacity: uint64(o.Capacity), Params: params,
		Gateway: func(i int, cfg *gateway.Config) {
			cfg.CacheOnly = o.CacheOnly != nil && o.CacheOnly(i)
			if o.Packs {
				cfg.PackTerritory, cfg.PackMaxAge = "packs", chain.Duration(2*time.Second)
			}
		}}
	if o.TLS {
		files, err := tlsutil.EnsureDev(filepath.Join(dir, "tls"))
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := tlsutil.ClientConfig(files.CA)
		if err != nil {
			t.Fatal(err)
		}
		spec.TLS, n.CA, n.HTTP = &files, files.CA, &http.Client{Transport: tlsutil.Transport(cfg, 16)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r := &testutil.Processes{T: t, Bin: deossBin, Dir: dir, NodeArgs: o.NodeArgs}
	net, err := devnet.Assemble(ctx, spec, r, func(net *devnet.Network) error {
		n.Nodes = make([]*Node, o.Nodes)
		for i, k := range net.NodeKeys {
			n.Nodes[i] = &Node{Home: layout.NodeHome(i), URL: spec.Scheme() + layout.NodeListen(i), Address: k.Address()}
		}
		n.Gateways = make([]*Gateway, o.Gateways)
		for i, k := range net.GatewayKeys {
			n.Gateways[i] = &Gateway{Home: layout.GatewayHome(i), URL: spec.Scheme() + layout.GatewayListen(i), S3URL: spec.Scheme() + layout.S3Listen(i), Address: k.Address()}
			if o.Gateway != nil {
				editJSON(t, filepath.Join(layout.GatewayHome(i), "gateway.json"), func(cfg map[string]any) { o.Gateway(i, cfg) })
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("assemble the network: %v", err)
	}
	n.Validators, n.Validator, n.Chain = r.Validators, r.Validators[0], net.Chain
	for i, p := range r.Nodes {
		n.Nodes[i].Proc = p
	}
	for i, p := range r.Gateways {
		n.Gateways[i].Proc = p
	}
	n.User = chain.DevAccount("e2e-user")
	var gws []types.Address
	for _, g := range n.Gateways {
		gws = append(gws, g.Address)
	}
	if err := devnet.SetupUser(ctx, n.Chain, n.User, "home", o.TerritoryGiB, 1, gws...); err != nil {
		t.Fatalf("the user: %v", err)
	}
	for _, nd := range n.Nodes {
		testutil.WaitHTTPWith(t, n.HTTP, nd.URL+"/healthz")
	}
	for _, g := range n.Gateways {
		testutil.WaitHTTPWith(t, n.HTTP, g.URL+"/version")
	}
	return n
}

// Kill kills every process of the network (gateways, nodes, validators).
func (n *Network) Kill() {
	for _, g := range n.Gateways {
		g.Kill()
	}
	for _, nd := range n.Nodes {
		nd.Kill()
	}
	for _, v := range n.Validators {
		v.Kill()
	}
}

// Do sends a request signed by the network's user (or by key, when given)
// and returns the response, whose body the caller closes.
func (n *Network) Do(key *auth.Key, method, url string, body io.Reader, size int64, hdr map[string]string) *http.Response {
	n.t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		n.t.Fatal(err)
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if key == nil {
		key = n.User
	}
	if err := auth.SignRequest(req, key, n.Target(url), 5*time.Minute); err != nil {
		n.t.Fatal(err)
	}
	resp, err := n.HTTP.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	return resp
}

// Target is the account of the gateway or node a URL is on: what requests
// to it are signed for.
func (n *Network) Target(url string) types.Address {
	for _, g := range n.Gateways {
		if strings.HasPrefix(url, g.URL) {
			return g.Address
		}
	}
	for _, nd := range n.Nodes {
		if strings.HasPrefix(url, nd.URL) {
			return nd.Address
		}
	}
	n.t.Fatalf("no gateway or node at %s", url)
	return types.Address{}
}

// Call is Do with a byte body and a JSON answer.
func (n *Network) Call(method, url string, body []byte, hdr map[string]string) (int, map[string]any) {
	n.t.Helper()
	resp := n.Do(nil, method, url, bytes.NewReader(body), int64(len(body)), hdr)
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// Put uploads data as one object through gateway g and returns its FID.
func (n *Network) Put(g int, name string, r io.Reader, size int64, hdr map[string]string) types.FID {
	n.t.Helper()
	resp := n.Do(nil, "PUT", n.Gateways[g].URL+"/object/"+name+"?territory=home", r, size, hdr)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var rec struct {
		FID types.FID `json:"fid"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(b, &rec) != nil {
		n.t.Fatalf("put %s: %d %s", name, resp.StatusCode, b)
	}
	return rec.FID
}

// File returns the chain's record of fid.
func (n *Network) File(fid types.FID) (*ledger.File, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.Chain.File(ctx, fid)
}

// WaitDeclared waits until the chain has an order for fid.
func (n *Network) WaitDeclared(fid types.FID, within time.Duration) *ledger.File {
	n.t.Helper()
	deadline := time.Now().Add(within)
	for {
		f, err := n.File(fid)
		if err == nil {
			return f
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s not declared within %v: %v", fid, within, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WaitStored waits until the chain says fid is stored.
func (n *Network) WaitStored(fid types.FID, within time.Duration) *ledger.File {
	n.t.Helper()
	deadline := time.Now().Add(within)
	for {
		f, err := n.File(fid)
		if err == nil && f.State == ledger.FileStored {
			return f
		}
		if time.Now().After(deadline) {
			if err != nil {
				n.t.Fatalf("%s not stored within %v: %v", fid, within, err)
			}
			n.t.Fatalf("%s not stored within %v: %+v", fid, within, f.Columns)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dumpLogs logs the tails of the logs whose names start with prefix.
func (n *Network) dumpLogs(prefix string) {
	entries, _ := os.ReadDir(n.Dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) && strings.HasSuffix(e.Name(), ".log") {
			b, _ := os.ReadFile(filepath.Join(n.Dir, e.Name()))
			var keep []string
			for _, line := range strings.Split(string(b), "\n") {
				if !strings.Contains(line, "level=INFO") && !strings.Contains(line, "level=DEBUG") {
					keep = append(keep, line)
				}
			}
			s := strings.Join(keep, "\n")
			if len(s) > 12000 {
				s = s[len(s)-12000:]
			}
			n.t.Logf("%s (warnings and errors, tail):\n%s", e.Name(), s)
		}
	}
}

// NodeByAddress finds a node of the network.
func (n *Network) NodeByAddress(a types.Address) *Node {
	for _, nd := range n.Nodes {
		if nd.Address == a {
			return nd
		}
	}
	return nil
}

// editJSON rewrites a JSON file through f.
func editJSON(t testing.TB, path string, f func(map[string]any)) {
	t.Helper()
	var m map[string]any
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, _ = json.Marshal(m)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// parallel runs f(0) ... f(count-1) on workers goroutines. (Eight at most
// where they download: a gateway serves one address eight at once.)
func parallel(workers, count int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range count {
		next <- i
	}
	close(next)
	wg.Wait()
}
