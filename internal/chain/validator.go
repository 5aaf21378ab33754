package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	cmtcfg "github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// Settings are what deoss sets in a validator's CometBFT configuration; the
// rest are CometBFT's defaults. They live in <home>/deoss-validator.json.
type Settings struct {
	Moniker string `json:"moniker"`
	// P2P and RPC are CometBFT listen addresses ("tcp://127.0.0.1:26656").
	P2P string `json:"p2p"`
	RPC string `json:"rpc"`
	// Peers is CometBFT's persistent_peers ("id@host:port,...").
	Peers string `json:"peers,omitempty"`
	// TimeoutCommit is the pause after a commit before the next block.
	TimeoutCommit Duration `json:"timeout_commit"`
	// Loopback tunes gossip for validators on one machine: short flush and
	// gossip sleeps, duplicate IPs allowed (measured: blocks every ~160 ms
	// instead of ~1.4 s for four validators on 127.0.0.1).
	Loopback bool `json:"loopback"`
	// Pprof, when set, serves Go's profiler on this address (host:port).
	Pprof string `json:"pprof,omitempty"`
}

// Duration is a time.Duration written as "10ms" in JSON.
type Duration = types.Duration

const settingsFile = "deoss-validator.json"

// cometConfig builds the CometBFT configuration of a home.
func cometConfig(home string, s *Settings) *cmtcfg.Config {
	c := cmtcfg.DefaultConfig()
	c.SetRoot(home)
	c.Moniker = s.Moniker
	c.P2P.ListenAddress = s.P2P
	c.P2P.PersistentPeers = s.Peers
	c.RPC.ListenAddress = s.RPC
	c.Consensus.TimeoutCommit = time.Duration(s.TimeoutCommit)
	// Blocks come at once when there are transactions, and at least every
	// second otherwise, so that order deadlines are noticed on an idle chain.
	c.Consensus.CreateEmptyBlocks = true
	c.Consensus.CreateEmptyBlocksInterval = time.Second
	// The largest transaction is a storage order of the maximum file size
	// (ledger.MaxTxBytes); JSON-RPC sends it base64-encoded.
	c.Mempool.MaxTxBytes = ledger.MaxTxBytes
	c.Mempool.MaxTxsBytes = 64 * ledger.MaxTxBytes
	c.RPC.MaxBodyBytes = 2 * ledger.MaxTxBytes
	c.RPC.TimeoutBroadcastTxCommit = 30 * time.Second
	// Validators know each other as persistent peers; peer exchange (and the
	// address book it writes, also after stop) is not needed.
	c.P2P.PexReactor = false
	if s.Loopback {
		c.P2P.AllowDuplicateIP = true
		c.P2P.AddrBookStrict = false
		c.P2P.FlushThrottleTimeout = 10 * time.Millisecond
		c.Consensus.PeerGossipSleepDuration = 10 * time.Millisecond
		c.Consensus.PeerQueryMaj23SleepDuration = 200 * time.Millisecond
	}
	// Clients follow blocks and read their results (see waiter) rather than
	// search an index, so the tx indexer's per-attribute writes are spared.
	c.TxIndex.Indexer = "null"
	c.Instrumentation.Prometheus = false
	c.RPC.PprofListenAddress = s.Pprof
	return c
}

// Validator is one CometBFT validator running the deoss App in-process.
type Validator struct {
	home     string
	settings Settings
	log      *slog.Logger
}

// NewValidator prepares the validator of a home written by InitHome or
// Testnet. It starts nothing.
func NewValidator(home string, log *slog.Logger) (*Validator, error) {
	b, err := os.ReadFile(filepath.Join(home, settingsFile))
	if err != nil {
		return nil, fmt.Errorf("validator home %s: %w", home, err)
	}
	v := &Validator{home: home, log: log}
	if err := json.Unmarshal(b, &v.settings); err != nil {
		return nil, fmt.Errorf("%s: %w", settingsFile, err)
	}
	return v, nil
}

// RPC returns the CometBFT RPC listen address ("tcp://host:port").
func (v *Validator) RPC() string { return v.settings.RPC }

// Run starts the validator and serves until ctx ends, then stops it cleanly.
// ready, if not nil, is closed once the node has started.
func (v *Validator) Run(ctx context.Context, ready chan<- struct{}) error {
	cfg := cometConfig(v.home, &v.settings)
	app, err := OpenApp(filepath.Join(v.home, "data", "deoss-state.db"))
	if err != nil {
		return err
	}
	defer app.Close()
	nodeKey, err := p2p.LoadNodeKey(cfg.NodeKeyFile())
	if err != nil {
		return fmt.Errorf("node key: %w", err)
	}
	pv := privval.LoadFilePV(cfg.PrivValidatorKeyFile(), cfg.PrivValidatorStateFile())
	// CometBFT v0.38 does not close every database it opens when it stops
	// (the tx index stays open and locked), so a restart in the same process
	// would fail. Keep them and close them all after Wait.
	var dbs []dbm.DB
	defer func() {
		for _, db := range dbs {
			_ = db.Close() // some are closed already; that error is expected
		}
	}()
	provider := func(c *cmtcfg.DBContext) (dbm.DB, error) {
		db, err := cmtcfg.DefaultDBProvider(c)
		if err == nil {
			dbs = append(dbs, db)
		}
		return db, err
	}
	n, err := node.NewNode(cfg, pv, nodeKey, proxy.NewLocalClientCreator(app),
		node.DefaultGenesisDocProviderFunc(cfg), provider,
		node.DefaultMetricsProvider(cfg.Instrumentation), slogAdapter{v.log})
	if err != nil {
		return fmt.Errorf("cometbft node: %w", err)
	}
	if err := n.Start(); err != nil {
		return fmt.Errorf("start cometbft: %w", err)
	}
	v.log.Info("validator started", "moniker", v.settings.Moniker, "rpc", v.settings.RPC, "p2p", v.settings.P2P)
	if ready != nil {
		close(ready)
	}
	<-ctx.Done()
	if err := n.Stop(); err != nil && !errors.Is(err, context.Canceled) {
		v.log.Warn("stop cometbft", "err", err)
	}
	n.Wait()
	return nil
}

// slogAdapter sends CometBFT's logs to slog; its chatty info logs become
// debug.
type slogAdapter struct{ l *slog.Logger }

var _ cmtlog.Logger = slogAdapter{}

func (a slogAdapter) Debug(msg string, kv ...any) { a.l.Debug(msg, kv...) }
func (a slogAdapter) Info(msg string, kv ...any)  { a.l.Debug(msg, kv...) }
func (a slogAdapter) Error(msg string, kv ...any) { a.l.Error(msg, kv...) }
func (a slogAdapter) With(kv ...any) cmtlog.Logger {
	return slogAdapter{a.l.With(kv...)}
}

// DevAccount is a genesis account made from a fixed seed label, for dev
// networks and tests: the same label gives the same key on every machine.
func DevAccount(label string) *auth.Key {
	seed := make([]byte, 32)
	copy(seed, "deoss-dev/"+label)
	k, err := auth.FromSeed(seed)
	if err != nil {
		panic(err)
	}
	return k
}
