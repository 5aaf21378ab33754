package main

import (
	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// newGatewayCmd holds the user's side of gateways; running a gateway (init,
// run) joins it with the gateway itself.
func newGatewayCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "gateway", Short: "Authorize gateways to store files for you"}
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
		&cobra.Command{
			Use:   "list",
			Short: "List the registered gateways",
			Args:  args(cobra.NoArgs),
			RunE:  func(cmd *cobra.Command, _ []string) error { return show(cmd, g, "gateways") },
		},
	)
	return cmd
}
