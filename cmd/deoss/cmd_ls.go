package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newLsCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List your files",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := g.sdkClient()
			if err != nil {
				return err
			}
			files, err := c.List(cmd.Context())
			if err != nil || asJSON {
				return jsonOr(cmd, files, err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FID\tSIZE\tSTATE\tTERRITORY\tNAME")
			for _, f := range files {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", f.FID, f.Size, f.State, f.Territory, f.Name)
			}
			return tw.Flush()
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}
