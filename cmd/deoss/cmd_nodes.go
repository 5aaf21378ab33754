package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newNodesCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List storage nodes with their state, the gateway's score and cooldown",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := g.sdkClient()
			if err != nil {
				return err
			}
			ns, err := c.Nodes(cmd.Context())
			if err != nil || asJSON {
				return jsonOr(cmd, ns, err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NODE\tSTATE\tUSED\tCAPACITY\tPROOFS\tSCORE\tCOOLDOWN\tENDPOINT")
			for _, n := range ns {
				cool := "-"
				if !n.Cooldown.IsZero() {
					cool = time.Until(n.Cooldown).Round(time.Second).String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%.2f\t%s\t%s\n", n.Address, n.State, mib(int64(n.Used)), mib(int64(n.Capacity)),
					n.ProofsPassed, n.ProofsPassed+n.ProofsMissed, n.Score, cool, n.Endpoint)
			}
			return tw.Flush()
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}
