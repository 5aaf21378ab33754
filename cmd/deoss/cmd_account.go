package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

func newAccountCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "account", Short: "Balances and transfers"}
	cmd.AddCommand(
		jsonRecord(&cobra.Command{
			Use:   "balance [ADDRESS]",
			Short: "Show an account (default: the --key's) with its locked gateway deposit and node stake",
			Args:  args(cobra.MaximumNArgs(1)),
			RunE: func(cmd *cobra.Command, a []string) error {
				addr, err := addressArg(g, a)
				if err != nil {
					return err
				}
				return show(cmd, g, func(ctx context.Context, c *chain.Client) (any, error) { return c.AccountView(ctx, addr) })
			},
		}),
		&cobra.Command{
			Use:   "transfer ADDRESS AMOUNT",
			Short: "Send AMOUNT to ADDRESS",
			Args:  args(cobra.ExactArgs(2)),
			RunE: func(cmd *cobra.Command, a []string) error {
				to, err := types.ParseAddress(a[0])
				if err != nil {
					return usageError{err}
				}
				amount, err := strconv.ParseUint(a[1], 10, 64)
				if err != nil {
					return usageError{fmt.Errorf("amount %q: %w", a[1], err)}
				}
				return submit(cmd, g, ledger.Msg{Transfer: &ledger.Transfer{To: to, Amount: amount}})
			},
		},
		&cobra.Command{
			Use:   "faucet",
			Short: "Credit the --key's account from the dev faucet (dev chains only)",
			Args:  args(cobra.NoArgs),
			RunE: func(cmd *cobra.Command, _ []string) error {
				return submit(cmd, g, ledger.Msg{Faucet: &ledger.Faucet{}})
			},
		},
	)
	return cmd
}

// addressArg is the optional address argument, else the --key's address.
func addressArg(g *globals, a []string) (types.Address, error) {
	if len(a) == 1 {
		addr, err := types.ParseAddress(a[0])
		if err != nil {
			return addr, usageError{err}
		}
		return addr, nil
	}
	k, err := g.loadKey()
	if err != nil {
		return types.Address{}, err
	}
	return k.Address(), nil
}
