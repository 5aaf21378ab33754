package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/devnet"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node"
)

func newNodeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Run a storage node; show its proofs and stake"}
	cmd.AddCommand(newNodeInitCmd(g), newNodeRunCmd(g), newNodeStatusCmd(g), newNodeStakeCmd(g), newNodeExitCmd(g))
	return cmd
}

func newNodeInitCmd(g *globals) *cobra.Command {
	var (
		home, listen string
		capacity     uint64
		stake        uint64
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a node home (key, config) and register the node on the chain",
		Long: `Creates HOME/key.json and HOME/node.json and registers the node with its
endpoint, capacity and stake. On a dev chain it first takes funds from the
faucet. Running it again on the same home re-registers nothing.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := timeout(cmd)
			defer cancel()
			k, err := initNode(ctx, c, g.cfg.Chain.Value, home, listen, capacity, stake)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), k.Address())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&home, "home", "", "node home folder (required)")
	f.StringVar(&listen, "listen", "127.0.0.1:7800", "address the node will listen on (its endpoint is http://<listen>)")
	f.Uint64Var(&capacity, "capacity", node.DefaultConfig().Capacity, "bytes of fragments to keep at most")
	f.Uint64Var(&stake, "stake", 1000, "stake to lock")
	_ = cmd.MarkFlagRequired("home")
	return cmd
}

// initNode writes a node home (key, config; an existing config is
// replaced) and registers the node unless it is registered.
func initNode(ctx context.Context, c *chain.Client, chainURL, home, listen string, capacity, stake uint64) (*auth.Key, error) {
	cfg := node.DefaultConfig()
	cfg.Chain, cfg.Capacity = chainURL, capacity
	cfg.Listening(listen)
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	if err := node.SaveConfig(home, &cfg); err != nil {
		return nil, err
	}
	return devnet.InitNode(ctx, c, home, &cfg, stake)
}

func newNodeRunCmd(g *globals) *cobra.Command {
	var home, listen, fault string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the storage node of a home until interrupted",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := node.LoadConfig(home)
			if err != nil {
				return err
			}
			pass, err := g.passphrase()
			if err != nil {
				return err
			}
			if listen != "" && listen != cfg.Listen {
				// Another address for this run (node.json is not changed):
				// the chain must tell gateways.
				cfg.Listening(listen)
				if err := updateEndpoint(cmd, home, cfg, pass); err != nil {
					return err
				}
			}
			n, err := node.NewNode(home, g.logger(), node.WithConfig(cfg), node.WithFault(fault), node.WithPassphrase(pass))
			if err != nil {
				return err
			}
			return serve(cmd, "node", n.Address(), n.Run)
		},
	}
	cmd.Flags().StringVar(&home, "home", "", "node home written by `deoss node init` (required)")
	cmd.Flags().StringVar(&listen, "listen", "", "listen address for this run (updates the registered endpoint; node.json is not changed)")
	cmd.Flags().StringVar(&fault, "fault", "", "misbehave on purpose, for tests: no-report, full, slow, corrupt")
	_ = cmd.Flags().MarkHidden("fault")
	_ = cmd.MarkFlagRequired("home")
	return cmd
}

func updateEndpoint(cmd *cobra.Command, home string, cfg *node.Config, pass []byte) error {
	k, err := auth.Load(node.KeyPath(home), pass)
	if err != nil {
		return err
	}
	c, err := chain.Dial(cfg.Chain)
	if err != nil {
		return unavailable{err}
	}
	ctx, cancel := timeout(cmd)
	defer cancel()
	_, err = c.Signer(k).Submit(ctx, ledger.Msg{UpdateNode: &ledger.UpdateNode{Endpoint: cfg.Endpoint, Capacity: cfg.Capacity}})
	return err
}
