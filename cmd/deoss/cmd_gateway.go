package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/devnet"
	"github.com/deoss/deoss/internal/gateway"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// newGatewayCmd holds both sides of gateways: running one (init, run) and a
// user's authorizations (authorize, revoke, list).
func newGatewayCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "gateway", Short: "Run a gateway, or authorize gateways to store files for you"}
	one := func(use, short string, msg func(types.Address) ledger.Msg) *cobra.Command {
		return &cobra.Command{
			Use:   use + " GATEWAY_ADDRESS",
			Short: short,
			Args:  args(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, a []string) error {
				gw, err := types.ParseAddress(a[0])
				if err != nil {
					return usageError{err}
				}
				return submit(cmd, g, msg(gw))
			},
		}
	}
	cmd.AddCommand(
		one("authorize", "Let the gateway declare files for you and charge your territories",
			func(a types.Address) ledger.Msg { return ledger.Msg{Authorize: &ledger.Authorize{Gateway: a}} }),
		one("revoke", "Withdraw a gateway's authorization",
			func(a types.Address) ledger.Msg { return ledger.Msg{Revoke: &ledger.Revoke{Gateway: a}} }),
		jsonRecord(&cobra.Command{
			Use:   "list",
			Short: "List the registered gateways",
			Args:  args(cobra.NoArgs),
			RunE: func(cmd *cobra.Command, _ []string) error {
				return show(cmd, g, func(ctx context.Context, c *chain.Client) (any, error) { return c.Gateways(ctx) })
			},
		}),
		newGatewayInitCmd(g), newGatewayRunCmd(g),
	)
	return cmd
}

func newGatewayInitCmd(g *globals) *cobra.Command {
	var home, listen string
	var cacheOnly bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a gateway home (key, config) and register the gateway on the chain",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := timeout(cmd)
			defer cancel()
			k, err := initGateway(ctx, c, g.cfg.Chain.Value, home, listen, cacheOnly)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), k.Address())
			return nil
		},
	}
	cmd.Flags().StringVar(&home, "home", "", "gateway home folder (required)")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address the gateway will listen on (its endpoint is http://<listen>)")
	cmd.Flags().BoolVar(&cacheOnly, "cache-only", false, "register a cache node: it serves reads and peers, takes no uploads")
	_ = cmd.MarkFlagRequired("home")
	return cmd
}

func newGatewayRunCmd(g *globals) *cobra.Command {
	var home string
	var cacheOnly bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the gateway of a home until interrupted",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := gateway.LoadConfig(home)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("cache-only") {
				cfg.CacheOnly = cacheOnly // for this run; gateway.json is not changed
			}
			pass, err := g.passphrase()
			if err != nil {
				return err
			}
			gw, err := gateway.NewGateway(home, g.logger(), gateway.WithConfig(cfg), gateway.WithPassphrase(pass))
			if err != nil {
				return err
			}
			return serve(cmd, "gateway", gw.Address(), gw.Run)
		},
	}
	cmd.Flags().StringVar(&home, "home", "", "gateway home written by `deoss gateway init` (required)")
	cmd.Flags().BoolVar(&cacheOnly, "cache-only", false, "serve reads and peers only (a cache node), for this run")
	_ = cmd.MarkFlagRequired("home")
	return cmd
}

// initGateway writes a gateway home (key, config; an existing config is
// replaced) and registers the gateway unless it is registered.
func initGateway(ctx context.Context, c *chain.Client, chainURL, home, listen string, cacheOnly bool) (*auth.Key, error) {
	cfg := gateway.DefaultConfig()
	cfg.Chain, cfg.Listen, cfg.Endpoint, cfg.CacheOnly = chainURL, listen, "http://"+listen, cacheOnly
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	if err := gateway.SaveConfig(home, &cfg); err != nil {
		return nil, err
	}
	return devnet.InitGateway(ctx, c, home, &cfg)
}
