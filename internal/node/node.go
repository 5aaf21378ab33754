package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/backoff"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/fsutil"
	"github.com/deoss/deoss/internal/httpapi"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node/store"
	"github.com/deoss/deoss/internal/tlsutil"
	"github.com/deoss/deoss/internal/types"
)

// Config is a node's configuration, kept in <home>/node.json.
type Config struct {
	// Chain is the RPC address of a validator.
	Chain string `json:"chain"`
	// Endpoint is the URL gateways reach this node at (registered on chain).
	Endpoint string `json:"endpoint"`
	// Listen is the address the HTTP API listens on.
	Listen string `json:"listen"`
	// Capacity is the bytes of fragments the node keeps at most.
	Capacity uint64 `json:"capacity_bytes"`
	// ReadTimeout bounds receiving one request (a fragment upload).
	ReadTimeout Duration `json:"read_timeout"`
	// MetricsListen serves /metrics on this address only; without it
	// /metrics is on the API's listener, for holders of MetricsToken
	// (Authorization: Bearer), or without a token for loopback clients.
	MetricsListen string `json:"metrics_listen,omitempty"`
	MetricsToken  string `json:"metrics_token,omitempty"`
	// TLSCert and TLSKey (PEM files) make the API's listener speak TLS.
	TLSCert string `json:"tls_cert,omitempty"`
	TLSKey  string `json:"tls_key,omitempty"`
	// ScrubRate bounds the scrubber's reads (bytes a second; 0 turns it
	// off); ScrubEvery is the time between its passes over every column.
	ScrubRate  int64    `json:"scrub_rate"`
	ScrubEvery Duration `json:"scrub_every"`
	// RepairRate bounds the repairer's reads of other nodes (bytes a
	// second) when it rebuilds columns for restoral orders; 0 turns
	// repair off for this node.
	RepairRate int64 `json:"repair_rate"`
}

// Option changes how NewNode builds a node.
type Option func(*Node)

// WithConfig runs the node with cfg instead of the home's saved config (the
// saved file is not changed).
func WithConfig(cfg *Config) Option { return func(n *Node) { n.cfg = cfg } }

// WithFault makes the node misbehave on purpose, for tests of gateways:
// "no-report" stores fragments but never reports columns, "full" refuses
// every fragment (507), "slow" delays reads and writes, "corrupt" flips a
// bit of what it reads back. It is never written to a config file.
func WithFault(f string) Option { return func(n *Node) { n.fault = f } }

// Duration is a time.Duration written as "1m30s" in JSON.
type Duration = chain.Duration

const configFile = "node.json"

// DefaultConfig is a node's configuration before `node init` sets its
// chain, addresses and capacity: the one place of the defaults.
func DefaultConfig() Config {
	return Config{Capacity: 64 << 30, ReadTimeout: Duration(time.Minute), ScrubRate: 4 << 20, ScrubEvery: Duration(24 * time.Hour),
		RepairRate: 32 << 20}
}

// Listening sets the listen address and the endpoint that follows from it
// (https when the node has a certificate).
func (c *Config) Listening(listen string) {
	scheme := "http://"
	if c.TLSCert != "" {
		scheme = "https://"
	}
	c.Listen, c.Endpoint = listen, scheme+listen
}

// LoadConfig reads <home>/node.json over the defaults.
func LoadConfig(home string) (*Config, error) {
	c := DefaultConfig()
	if err := fsutil.ReadJSON(filepath.Join(home, configFile), &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// SaveConfig writes <home>/node.json.
func SaveConfig(home string, c *Config) error {
	return fsutil.WriteJSON(filepath.Join(home, configFile), c)
}

// KeyPath is where a node home keeps its key.
func KeyPath(home string) string { return filepath.Join(home, "key.json") }

// Node is a storage node daemon. NewNode does nothing but remember; Run opens
// the store, reconciles with the chain, serves, reports and collects until its
// context ends.
type Node struct {
	home  string
	cfg   *Config
	key   *auth.Key
	pass  []byte
	log   *slog.Logger
	fault string
}

// WithPassphrase opens a sealed key file with passphrase.
func WithPassphrase(passphrase []byte) Option { return func(n *Node) { n.pass = passphrase } }

// NewNode prepares the node of a home written by `deoss node init`.
func NewNode(home string, log *slog.Logger, opts ...Option) (*Node, error) {
	n := &Node{home: home}
	for _, o := range opts {
		o(n)
	}
	k, err := auth.Load(KeyPath(home), n.pass)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	n.key, n.log = k, log.With("node", k.Address().String()[:14])
	if n.cfg == nil {
		if n.cfg, err = LoadConfig(home); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Address is the node's account.
func (n *Node) Address() types.Address { return n.key.Address() }

// Run serves until ctx ends. ready, if not nil, receives the listen address
// once the HTTP API accepts connections.
func (n *Node) Run(ctx context.Context, ready chan<- string) error {
	st, err := store.OpenDisk(filepath.Join(n.home, "store"), n.cfg.Capacity, types.FragmentSize)
	if err != nil {
		return err
	}
	defer st.Close()
	cl, err := chain.Dial(n.cfg.Chain)
	if err != nil {
		return err
	}
	// Faults for tests of gateways: a full disk (507 on every put), slow
	// reads and writes, fragments read back with a flipped bit.
	var fs store.Store = st
	switch n.fault {
	case "full":
		fs = store.Full{Store: st}
	case "slow":
		fs = store.Slow{Store: st, Delay: 3 * time.Second}
	case "corrupt":
		fs = store.Corrupt{Store: st}
	}
	if n.fault != "" {
		n.log.Warn("fault injected", "fault", n.fault)
	}
	cc := NewChainClient(cl, cl.Signer(n.key))
	rep := newReporter(cc, fs, n.key.Address(), n.log)
	gc := &collector{chain: cc, store: fs, self: n.key.Address(), log: n.log}
	kick := rep.kick
	if n.fault == "no-report" {
		kick = func(types.FID, uint8) {}
	}
	replay, err := auth.OpenReplayCache(filepath.Join(n.home, "replay.db"), auth.ReplayLimits{}, time.Now())
	if err != nil {
		return err
	}
	defer replay.Close()
	declared, err := openDeclared(filepath.Join(n.home, "declared.db"))
	if err != nil {
		return err
	}
	defer declared.Close()
	gc.declared = declared
	var prv *prover // set before the server serves
	srv := NewServer(ServerConfig{Self: n.key.Address(), FragmentSize: types.FragmentSize, OnStored: kick, Replay: replay,
		MetricsToken: n.cfg.MetricsToken, OpsApart: n.cfg.MetricsListen != "", Proofs: func() ProofRecord { return prv.record() },
		OnOrder: declared.Note}, fs, cc, n.log)
	prv = newProver(cc, fs, n.key.Address(), srv.Registry(), n.log)
	hs := srv.HTTPServer(n.cfg.Listen, time.Duration(n.cfg.ReadTimeout))
	ln, err := tlsutil.Listen(n.cfg.Listen, n.cfg.TLSCert, n.cfg.TLSKey)
	if err != nil {
		return err
	}

	g, ctx := errgroup.WithContext(ctx)
	if n.cfg.MetricsListen != "" {
		oln, err := net.Listen("tcp", n.cfg.MetricsListen)
		if err != nil {
			ln.Close()
			return err
		}
		httpapi.Serve(ctx, g, &http.Server{Handler: srv.Ops(), ReadHeaderTimeout: 10 * time.Second}, oln)
	}
	httpapi.Serve(ctx, g, hs, ln)
	g.Go(func() error { rep.run(ctx); return nil })
	g.Go(func() error { prv.run(ctx); return nil })
	if n.cfg.ScrubRate > 0 && n.cfg.ScrubEvery > 0 {
		scr := newScrubber(cc, fs, n.key.Address(), n.cfg.ScrubRate, time.Duration(n.cfg.ScrubEvery), srv.Registry(), n.log)
		g.Go(func() error { scr.run(ctx); return nil })
	}
	if n.cfg.RepairRate > 0 && n.fault == "" {
		rp := newRepairer(cc, fs, n.key.Address(), n.cfg.RepairRate, srv.Registry(), n.log)
		g.Go(func() error { rp.run(ctx); return nil })
	}
	g.Go(func() error { followChain(ctx, cc, gc, kick, prv.onBlock, time.Second, n.log); return nil })
	n.log.Info("storage node serving", "listen", ln.Addr().String(), "endpoint", n.cfg.Endpoint)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	return g.Wait()
}

// followChain reconciles the store with the chain once the chain answers,
// then follows it from there, collecting what blocks release, until ctx
// ends. Nothing in it stops the node: a block whose collection fails (a disk
// error, the chain gone mid-way) is logged and the next reconcile catches up
// with it (collection is idempotent, and a reconcile removes nothing while
// the chain does not answer); a broken follow is taken up again after pause.
func followChain(ctx context.Context, cc NodeChain, gc *collector, kick func(types.FID, uint8), onEvents func([]ledger.Event), pause time.Duration, log *slog.Logger) {
	reconciled := false
	var from int64
	for ctx.Err() == nil {
		var err error
		if !reconciled {
			var h int64
			if h, err = cc.Height(ctx); err == nil {
				if err = gc.reconcile(ctx, kick); err == nil {
					from, reconciled = h, true
				}
			}
		}
		if err == nil {
			err = cc.Follow(ctx, from, func(be chain.BlockEvents) error {
				onEvents(be.Events)
				if err := gc.onBlock(ctx, be); err != nil {
					return fmt.Errorf("collecting block %d: %w", be.Height, err)
				}
				from = be.Height + 1
				return nil
			})
			reconciled = false // whatever broke the follow, start from the chain's state
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("following the chain; trying again", "err", err, "in", pause)
		backoff.Sleep(ctx, pause)
	}
}
