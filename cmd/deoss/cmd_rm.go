package main

import (
	"github.com/spf13/cobra"
)

func newRmCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rm FID",
		Short: "Delete your copy of a file (its space returns to the territory)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			fid, c, err := g.fidClient(a[0])
			if err != nil {
				return err
			}
			return c.Delete(cmd.Context(), fid)
		},
	}
}
