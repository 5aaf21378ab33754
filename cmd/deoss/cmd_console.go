package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/gateway/console"
)

func newConsoleCmd(g *globals) *cobra.Command {
	var d time.Duration
	cmd := &cobra.Command{
		Use:   "console",
		Short: "Print a one-time link that signs you in to the gateway's web console",
		Long: `Prints a link to the gateway's console (/console/), signed with your key and
good once, for --for (at most 15 minutes). Opening it gives the browser a
session cookie; your key never enters the browser.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if d <= 0 || d > console.MaxLinkLifetime {
				return usageError{fmt.Errorf("--for: at most %s", console.MaxLinkLifetime)}
			}
			c, _, err := g.sdkClient()
			if err != nil {
				return err
			}
			u, err := c.ConsoleLink(cmd.Context(), d)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), u)
			return nil
		},
	}
	cmd.Flags().DurationVar(&d, "for", 10*time.Minute, "how long the link is good (at most 15m)")
	return cmd
}
