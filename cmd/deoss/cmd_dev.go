package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/fsutil"
	"github.com/deoss/deoss/internal/gateway"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node"
	"github.com/deoss/deoss/internal/types"
)

// devNetwork is DIR/network.json: what `deoss dev` runs and where.
type devNetwork struct {
	BasePort int      `json:"base_port"`
	Nodes    int      `json:"nodes"`
	ChainRPC string   `json:"chain_rpc"`
	Gateway  string   `json:"gateway"`
	NodeURLs []string `json:"node_urls"`
	User     string   `json:"user"`
	Faucet   string   `json:"faucet"`
}

func newDevCmd(g *globals) *cobra.Command {
	var dir string
	var nodes int
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a whole local network in one process: a validator, a gateway and storage nodes",
		Long: `Runs a validator (short blocks, a faucet), a gateway and --nodes storage
nodes, each with its own folder under --dir and its own port on 127.0.0.1.
Creates and funds a dev account, buys it the territory "home" and authorizes
the gateway; writes DIR/client.yaml (which every client command reads for
what no flag, environment variable or --config file sets; deoss config shows
it) and DIR/network.json. A second run reuses DIR.
Other storage nodes may join: deoss node init --chain <chain_rpc> ...`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runDev(ctx, cmd, dir, nodes)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", defaultDevDir(), "folder of the network (reused when it exists)")
	cmd.Flags().IntVar(&nodes, "nodes", 12, "storage nodes to run in this process (0: only the chain and the gateway)")
	return cmd
}

// freeBase finds n consecutive free ports below the ephemeral range.
func freeBase(n int) (int, error) {
	for base := 21000; base+n < 32000; base += n + 7 {
		free := true
		for p := base; p < base+n && free; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				free = false
				continue
			}
			l.Close()
		}
		if free {
			return base, nil
		}
	}
	return 0, errors.New("no free ports between 21000 and 32000")
}

func runDev(ctx context.Context, cmd *cobra.Command, dir string, nodes int) error {
	out := cmd.OutOrStdout()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	netPath := filepath.Join(dir, "network.json")
	var nw devNetwork
	if err := fsutil.ReadJSON(netPath, &nw); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if nodes > 64 {
		return usageError{errors.New("--nodes: at most 64")}
	}
	if nw.BasePort == 0 {
		// Ports: chain P2P and RPC, the gateway, then room for 64 nodes, so
		// that a later run with more nodes keeps the same ports.
		base, err := freeBase(3 + 64)
		if err != nil {
			return err
		}
		nw.BasePort = base
	}
	nw.Nodes = nodes
	base := nw.BasePort
	nw.ChainRPC = fmt.Sprintf("http://127.0.0.1:%d", base+1)
	gwListen := fmt.Sprintf("127.0.0.1:%d", base+2)
	nw.Gateway = "http://" + gwListen
	nw.Faucet = "dev chain: any account may send the Faucet message (deoss account faucet)"

	logf, err := os.OpenFile(filepath.Join(dir, "dev.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	log := slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelInfo}))

	chainDir := filepath.Join(dir, "chain")
	vhome := filepath.Join(chainDir, "v0")
	if _, err := os.Stat(vhome); errors.Is(err, os.ErrNotExist) {
		if _, err := chain.Testnet(chainDir, chain.NetworkSpec{ChainID: "deoss-dev", Validators: 1, BasePort: base,
			TimeoutCommit: 50 * time.Millisecond, Genesis: ledger.Genesis{Dev: true, Params: ledger.DefaultParams()}}); err != nil {
			return err
		}
	}
	v, err := chain.NewValidator(vhome, log)
	if err != nil {
		return err
	}
	eg, ctx := errgroup.WithContext(ctx)
	vready := make(chan struct{})
	eg.Go(func() error { return v.Run(ctx, vready) })
	select {
	case <-vready:
	case <-ctx.Done():
		return eg.Wait()
	}
	c, err := chain.Dial(nw.ChainRPC)
	if err != nil {
		return err
	}
	setup, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := c.WaitReady(setup); err != nil {
		return err
	}
	fmt.Fprintf(out, "chain:   %s\n", nw.ChainRPC)

	// Nodes and the gateway: homes made (and registered) on the first run.
	nw.NodeURLs = nil
	for i := range nodes {
		home := filepath.Join(dir, fmt.Sprintf("node%02d", i))
		listen := fmt.Sprintf("127.0.0.1:%d", base+3+i)
		if _, err := os.Stat(filepath.Join(home, "node.json")); err != nil {
			if _, err := initNode(setup, c, nw.ChainRPC, home, listen, 16<<30, 1000); err != nil {
				return fmt.Errorf("node %d: %w", i, err)
			}
		}
		n, err := node.NewNode(home, log)
		if err != nil {
			return err
		}
		eg.Go(func() error { return n.Run(ctx, nil) })
		nw.NodeURLs = append(nw.NodeURLs, "http://"+listen)
	}
	ghome := filepath.Join(dir, "gateway")
	if _, err := os.Stat(filepath.Join(ghome, "gateway.json")); err != nil {
		if _, err := initGateway(setup, c, nw.ChainRPC, ghome, gwListen, false); err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
	}
	gw, err := gateway.NewGateway(ghome, log)
	if err != nil {
		return err
	}
	gready := make(chan string, 1)
	eg.Go(func() error { return gw.Run(ctx, gready) })
	select {
	case <-gready:
	case <-ctx.Done():
		return eg.Wait()
	}

	// The dev account: funded, with a territory, the gateway authorized.
	ukey, err := loadOrCreateKey(filepath.Join(dir, "user.json"))
	if err != nil {
		return err
	}
	gkey, err := loadOrCreateKey(gateway.KeyPath(ghome))
	if err != nil {
		return err
	}
	if err := setupDevUser(setup, c, ukey.Address(), gkey.Address(), c.Signer(ukey)); err != nil {
		return err
	}
	nw.User = ukey.Address().String()
	if err := saveClientConfig(filepath.Join(dir, "client.yaml"), &clientConfig{Gateway: nw.Gateway, Chain: nw.ChainRPC,
		Key: filepath.Join(dir, "user.json"), Territory: "home"}); err != nil {
		return err
	}
	if err := fsutil.WriteJSON(netPath, &nw); err != nil {
		return err
	}
	fmt.Fprintf(out, "gateway: %s\nnodes:   %d (%s ...)\naccount: %s (territory \"home\")\nconfig:  %s\nlogs:    %s\n",
		nw.Gateway, nodes, firstOr(nw.NodeURLs, "none"), nw.User, filepath.Join(dir, "client.yaml"), filepath.Join(dir, "dev.log"))
	fmt.Fprintln(out, "deoss dev: ready (Ctrl-C stops)")
	err = eg.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func firstOr(s []string, def string) string {
	if len(s) == 0 {
		return def
	}
	return s[0]
}

// setupDevUser funds the dev account, buys it "home" (64 GiB, a year) and
// authorizes the gateway, skipping what an earlier run did.
func setupDevUser(ctx context.Context, c *chain.Client, user, gw types.Address, s *chain.Signer) error {
	_, err := c.Territory(ctx, user, "home")
	if errors.Is(err, ledger.ErrNotFound) {
		if _, err := s.Submit(ctx, ledger.Msg{Faucet: &ledger.Faucet{}}); err != nil {
			return fmt.Errorf("faucet: %w", err)
		}
		if _, err := s.Submit(ctx, ledger.Msg{BuyTerritory: &ledger.BuyTerritory{Name: "home", GiB: 64, Days: 365}}); err != nil {
			return fmt.Errorf("territory: %w", err)
		}
	} else if err != nil {
		return err
	}
	gws, err := c.Authorized(ctx, user)
	if err != nil {
		return err
	}
	if !slices.Contains(gws, gw) {
		if _, err := s.Submit(ctx, ledger.Msg{Authorize: &ledger.Authorize{Gateway: gw}}); err != nil {
			return fmt.Errorf("authorize: %w", err)
		}
	}
	return nil
}
