package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/ledger"
)

func newTerritoryCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "territory", Short: "Buy and manage storage space"}
	var gib, days uint64
	buy := &cobra.Command{
		Use:   "buy NAME",
		Short: "Buy --gib GiB of space for --days days",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return submit(cmd, g, ledger.Msg{BuyTerritory: &ledger.BuyTerritory{Name: a[0], GiB: gib, Days: days}})
		},
	}
	buy.Flags().Uint64Var(&gib, "gib", 1, "size in GiB")
	buy.Flags().Uint64Var(&days, "days", 30, "duration in days")
	expand := &cobra.Command{
		Use:   "expand NAME",
		Short: "Add --gib GiB until the territory expires",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return submit(cmd, g, ledger.Msg{ExpandTerritory: &ledger.ExpandTerritory{Name: a[0], GiB: gib}})
		},
	}
	expand.Flags().Uint64Var(&gib, "gib", 1, "GiB to add")
	renew := &cobra.Command{
		Use:   "renew NAME",
		Short: "Extend the territory by --days days",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			return submit(cmd, g, ledger.Msg{RenewTerritory: &ledger.RenewTerritory{Name: a[0], Days: days}})
		},
	}
	renew.Flags().Uint64Var(&days, "days", 30, "days to add")
	showCmd := &cobra.Command{
		Use:   "show [NAME]",
		Short: "Show one territory of the --key's account, or all of them",
		Args:  args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			k, err := g.loadKey()
			if err != nil {
				return err
			}
			if len(a) == 1 {
				return show(cmd, g, func(ctx context.Context, c *chain.Client) (any, error) { return c.Territory(ctx, k.Address(), a[0]) })
			}
			return show(cmd, g, func(ctx context.Context, c *chain.Client) (any, error) { return c.Territories(ctx, k.Address()) })
		},
	}
	cmd.AddCommand(buy, expand, renew, jsonRecord(showCmd))
	return cmd
}
