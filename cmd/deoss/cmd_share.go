package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newShareCmd(g *globals) *cobra.Command {
	var d time.Duration
	cmd := &cobra.Command{
		Use:   "share FID",
		Short: "Print a link that reads a private file of yours until it expires",
		Long: `Prints a link to FID at the gateway, signed with your key, good for --for
(at most 7 days): whoever holds it downloads the file (ranges too) without a
key. It cannot be revoked before it expires. Files put with --private are
served only to their owner and to such links; public files need no link.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			fid, c, err := g.fidClient(a[0])
			if err != nil {
				return err
			}
			u, err := c.ShareURL(fid, d)
			if err != nil {
				return usageError{err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), u)
			return nil
		},
	}
	cmd.Flags().DurationVar(&d, "for", time.Hour, "how long the link is good (at most 168h)")
	return cmd
}
