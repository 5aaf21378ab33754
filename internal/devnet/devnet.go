package devnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/gateway"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node"
	"github.com/deoss/deoss/internal/tlsutil"
	"github.com/deoss/deoss/internal/types"
)

// Layout is where the parts of a network live and listen. Ports follow the
// base: validator i takes P2P Base+2i and RPC Base+2i+1, then come the
// gateways, then the nodes.
type Layout struct {
	Dir        string
	Base       int
	Validators int
	Gateways   int
	Nodes      int
	// S3Base is the first gateway's S3 port (the others follow); 0 puts
	// them after the nodes.
	S3Base int
}

func (l Layout) ValidatorHome(i int) string {
	return filepath.Join(l.Dir, "chain", fmt.Sprintf("v%d", i))
}
func (l Layout) ValidatorRPC(i int) string {
	return fmt.Sprintf("http://127.0.0.1:%d", l.Base+2*i+1)
}
func (l Layout) GatewayHome(i int) string { return filepath.Join(l.Dir, gatewayName(i)) }
func (l Layout) GatewayListen(i int) string {
	return fmt.Sprintf("127.0.0.1:%d", l.Base+2*l.Validators+i)
}
func (l Layout) NodeHome(i int) string { return filepath.Join(l.Dir, fmt.Sprintf("node%02d", i)) }
func (l Layout) NodeListen(i int) string {
	return fmt.Sprintf("127.0.0.1:%d", l.Base+2*l.Validators+l.Gateways+i)
}

// S3Listen is gateway i's S3 endpoint.
func (l Layout) S3Listen(i int) string {
	if l.S3Base != 0 {
		return fmt.Sprintf("127.0.0.1:%d", l.S3Base+i)
	}
	return fmt.Sprintf("127.0.0.1:%d", l.Base+2*l.Validators+l.Gateways+l.Nodes+i)
}

// Ports is how many ports a layout takes from its base.
func (l Layout) Ports() int {
	if l.S3Base != 0 {
		return 2*l.Validators + l.Gateways + l.Nodes
	}
	return 2*l.Validators + 2*l.Gateways + l.Nodes
}

func gatewayName(i int) string {
	if i == 0 {
		return "gateway"
	}
	return fmt.Sprintf("gateway%d", i)
}

// Spec shapes a network. Zero values take the defaults.
type Spec struct {
	Layout
	ChainID       string        // default "deoss-dev"
	TimeoutCommit time.Duration // default 50 ms
	NodeCapacity  uint64        // bytes, default 16 GiB
	NodeStake     uint64        // default 1000
	// Gateway and Node edit a part's configuration before its home is first
	// written (later runs keep what is saved).
	Gateway func(i int, cfg *gateway.Config)
	Node    func(i int, cfg *node.Config)
	// TLS, when set, makes every gateway and node listen with this
	// certificate (https endpoints) and the gateways trust its CA; the
	// gateways then take ciphers over TLS only.
	TLS *tlsutil.Files
	// Params, when set, edits the genesis parameters (the dev defaults).
	Params func(*ledger.Params)
}

// Scheme is the URL scheme of the network's gateways and nodes.
func (s Spec) Scheme() string {
	if s.TLS != nil {
		return "https://"
	}
	return "http://"
}

// Runner starts the parts of a network: in this process, or as processes
// of their own. Each call returns once the part is started; Assemble waits
// for it to answer.
type Runner interface {
	Validator(ctx context.Context, i int, home string) error
	Node(ctx context.Context, i int, home string) error
	Gateway(ctx context.Context, i int, home string) error
}

// Network is an assembled network.
type Network struct {
	Spec
	Chain       *chain.Client // to validator 0
	NodeKeys    []*auth.Key
	GatewayKeys []*auth.Key
}

// Assemble writes the chain's homes (if absent), starts the validators,
// writes and registers the node and gateway homes (if absent; in parallel),
// then starts the nodes and the gateways. before, when not nil, runs after
// every home exists and before nodes and gateways start (a test edits their
// configuration there).
func Assemble(ctx context.Context, spec Spec, r Runner, before func(*Network) error) (*Network, error) {
	spec.defaults()
	n := &Network{Spec: spec}
	if _, err := os.Stat(spec.ValidatorHome(0)); errors.Is(err, os.ErrNotExist) {
		params := ledger.DefaultParams()
		if spec.Params != nil {
			spec.Params(&params)
		}
		if _, err := chain.Testnet(filepath.Join(spec.Dir, "chain"), chain.NetworkSpec{ChainID: spec.ChainID, Validators: spec.Validators,
			BasePort: spec.Base, TimeoutCommit: spec.TimeoutCommit, Genesis: ledger.Genesis{Dev: true, Params: params}}); err != nil {
			return nil, err
		}
	}
	for i := range spec.Validators {
		if err := r.Validator(ctx, i, spec.ValidatorHome(i)); err != nil {
			return nil, fmt.Errorf("validator %d: %w", i, err)
		}
	}
	c, err := chain.Dial(spec.ValidatorRPC(0))
	if err != nil {
		return nil, err
	}
	n.Chain = c
	if err := c.WaitReady(ctx); err != nil {
		return nil, err
	}
	n.NodeKeys = make([]*auth.Key, spec.Nodes)
	n.GatewayKeys = make([]*auth.Key, spec.Gateways)
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(8)
	for i := range spec.Nodes {
		eg.Go(func() error {
			cfg := node.DefaultConfig()
			cfg.Chain, cfg.Capacity = spec.ValidatorRPC(0), spec.NodeCapacity
			if spec.TLS != nil {
				cfg.TLSCert, cfg.TLSKey = spec.TLS.Cert, spec.TLS.Key
			}
			cfg.Listening(spec.NodeListen(i))
			if spec.Node != nil {
				spec.Node(i, &cfg)
			}
			k, err := InitNode(ectx, c, spec.NodeHome(i), &cfg, spec.NodeStake)
			n.NodeKeys[i] = k
			return wrap(err, "node %d", i)
		})
	}
	for i := range spec.Gateways {
		eg.Go(func() error {
			cfg := gateway.DefaultConfig()
			cfg.Chain, cfg.Listen, cfg.Endpoint = spec.ValidatorRPC(0), spec.GatewayListen(i), spec.Scheme()+spec.GatewayListen(i)
			cfg.S3Listen = spec.S3Listen(i)
			if spec.TLS != nil {
				cfg.TLSCert, cfg.TLSKey, cfg.CAFile = spec.TLS.Cert, spec.TLS.Key, spec.TLS.CA
			} else {
				// Plain HTTP on a dev network: ciphers and unsigned bodies
				// allowed.
				cfg.AllowInsecure = true
			}
			if spec.Gateway != nil {
				spec.Gateway(i, &cfg)
			}
			k, err := InitGateway(ectx, c, spec.GatewayHome(i), &cfg)
			n.GatewayKeys[i] = k
			return wrap(err, "gateway %d", i)
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	if before != nil {
		if err := before(n); err != nil {
			return nil, err
		}
	}
	for i := range spec.Nodes {
		if err := r.Node(ctx, i, spec.NodeHome(i)); err != nil {
			return nil, fmt.Errorf("node %d: %w", i, err)
		}
	}
	for i := range spec.Gateways {
		if err := r.Gateway(ctx, i, spec.GatewayHome(i)); err != nil {
			return nil, fmt.Errorf("gateway %d: %w", i, err)
		}
	}
	return n, nil
}

func wrap(err error, format string, a ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(a, err)...)
}

func (s *Spec) defaults() {
	if s.Validators == 0 {
		s.Validators = 1
	}
	if s.ChainID == "" {
		s.ChainID = "deoss-dev"
	}
	if s.TimeoutCommit == 0 {
		s.TimeoutCommit = 50 * time.Millisecond
	}
	if s.NodeCapacity == 0 {
		s.NodeCapacity = 16 << 30
	}
	if s.NodeStake == 0 {
		s.NodeStake = 1000
	}
}

// LoadOrCreateKey reads the key at path, creating it (0600) if there is none.
func LoadOrCreateKey(path string) (*auth.Key, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	k, err := auth.Load(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		if k, err = auth.Generate(); err == nil {
			err = auth.Save(path, k, nil)
		}
	}
	return k, err
}

// FundOnDev takes money from the faucet when the chain is a dev chain and
// the account has less than need.
func FundOnDev(ctx context.Context, c *chain.Client, s *chain.Signer, a types.Address, need uint64) error {
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	acc, err := c.Account(ctx, a)
	if err != nil || acc.Balance >= need || !info.Dev {
		return err
	}
	if _, err := s.Submit(ctx, ledger.Msg{Faucet: &ledger.Faucet{}}); err != nil {
		return fmt.Errorf("faucet: %w", err)
	}
	return nil
}

// InitNode writes a node home (key, cfg) unless it has one, and registers
// the node with its endpoint, capacity and stake unless it is registered.
func InitNode(ctx context.Context, c *chain.Client, home string, cfg *node.Config, stake uint64) (*auth.Key, error) {
	k, err := LoadOrCreateKey(node.KeyPath(home))
	if err != nil {
		return nil, err
	}
	if saved, err := node.LoadConfig(home); err == nil {
		cfg = saved
	} else if err := node.SaveConfig(home, cfg); err != nil {
		return nil, err
	}
	if _, err := c.Node(ctx, k.Address()); err == nil {
		return k, nil
	} else if !errors.Is(err, ledger.ErrNotFound) {
		return nil, err
	}
	s := c.Signer(k)
	if err := FundOnDev(ctx, c, s, k.Address(), stake); err != nil {
		return nil, err
	}
	_, err = s.Submit(ctx, ledger.Msg{RegisterNode: &ledger.RegisterNode{Endpoint: cfg.Endpoint, Capacity: cfg.Capacity, Stake: stake}})
	return k, err
}

// InitGateway writes a gateway home (key, cfg) unless it has one, and
// registers the gateway unless it is registered.
func InitGateway(ctx context.Context, c *chain.Client, home string, cfg *gateway.Config) (*auth.Key, error) {
	k, err := LoadOrCreateKey(gateway.KeyPath(home))
	if err != nil {
		return nil, err
	}
	if saved, err := gateway.LoadConfig(home); err == nil {
		cfg = saved
	} else if err := gateway.SaveConfig(home, cfg); err != nil {
		return nil, err
	}
	s := c.Signer(k)
	if _, err := c.Gateway(ctx, k.Address()); errors.Is(err, ledger.ErrNotFound) {
		if err := FundOnDev(ctx, c, s, k.Address(), 1); err != nil {
			return nil, err
		}
		if _, err := s.Submit(ctx, ledger.Msg{RegisterGateway: &ledger.RegisterGateway{Endpoint: cfg.Endpoint, CacheOnly: cfg.CacheOnly}}); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	// The gateway's own territory for its packs of small objects.
	if cfg.PackTerritory == "" || cfg.CacheOnly {
		return k, nil
	}
	if _, err := c.Territory(ctx, k.Address(), cfg.PackTerritory); !errors.Is(err, ledger.ErrNotFound) {
		return k, err
	}
	if err := FundOnDev(ctx, c, s, k.Address(), 1_000_000); err != nil {
		return nil, err
	}
	if _, err := s.Submit(ctx, ledger.Msg{BuyTerritory: &ledger.BuyTerritory{Name: cfg.PackTerritory, GiB: 16, Days: 365}}); err != nil {
		return nil, fmt.Errorf("pack territory: %w", err)
	}
	return k, nil
}

// SetupUser funds a dev account, buys it territory (gib GiB for days days)
// unless it has it, and authorizes each gateway it has not authorized yet.
func SetupUser(ctx context.Context, c *chain.Client, user *auth.Key, territory string, gib, days uint64, gateways ...types.Address) error {
	s := c.Signer(user)
	_, err := c.Territory(ctx, user.Address(), territory)
	if errors.Is(err, ledger.ErrNotFound) {
		if err := FundOnDev(ctx, c, s, user.Address(), 1_000_000); err != nil {
			return err
		}
		if _, err := s.Submit(ctx, ledger.Msg{BuyTerritory: &ledger.BuyTerritory{Name: territory, GiB: gib, Days: days}}); err != nil {
			return fmt.Errorf("territory: %w", err)
		}
	} else if err != nil {
		return err
	}
	have, err := c.Authorized(ctx, user.Address())
	if err != nil {
		return err
	}
	for _, gw := range gateways {
		if !slices.Contains(have, gw) {
			if _, err := s.Submit(ctx, ledger.Msg{Authorize: &ledger.Authorize{Gateway: gw}}); err != nil {
				return fmt.Errorf("authorize: %w", err)
			}
		}
	}
	// A block's results are out a moment before the application commits
	// it; this query waits for the commit, so that a gateway asked next
	// (with its own client) sees the authorizations.
	if have, err = c.Authorized(ctx, user.Address()); err != nil {
		return err
	}
	for _, gw := range gateways {
		if !slices.Contains(have, gw) {
			return fmt.Errorf("authorize: %s not among the account's gateways after its block", gw)
		}
	}
	return nil
}
