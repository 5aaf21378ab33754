package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/sdk"
)

func newStatCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stat FID",
		Short: "Show a file's state, size and where each column lives",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			fid, c, err := g.fidClient(a[0])
			if err != nil {
				return err
			}
			m, err := c.Stat(cmd.Context(), fid)
			if err != nil {
				return err
			}
			cols, lerr := c.Location(cmd.Context(), fid)
			var se *sdk.Error
			notDeclared := errors.As(lerr, &se) && se.Code == "not_declared"
			if asJSON {
				if lerr != nil && !notDeclared {
					return lerr
				}
				return writeJSON(cmd.OutOrStdout(), struct {
					*sdk.Metadata
					Columns []sdk.Column `json:"columns,omitempty"`
				}{m, cols})
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "fid:        %s\nstate:      %s\nsize:       %d bytes (%d segments)\nencryption: %s\n", m.FID, m.State, m.Size, m.Segments, m.Encryption)
			for _, o := range m.Owners {
				fmt.Fprintf(w, "owner:      %s (%s in %s)\n", o.Address, o.Name, o.Territory)
			}
			if m.Note != "" {
				fmt.Fprintf(w, "waiting:    %s\n", m.Note)
			}
			if p := m.Packed; p != nil {
				if p.Buffered && len(p.Locations) == 0 {
					fmt.Fprintf(w, "packed:     buffered at the gateway, not in a pack yet\n")
				}
				for _, l := range p.Locations {
					fmt.Fprintf(w, "packed:     in pack %s at offset %d (by gateway %s)\n", l.Pack, l.Offset, l.Gateway)
				}
				return nil // its columns are its pack's (deoss stat PACK)
			}
			if notDeclared {
				return nil
			}
			if lerr != nil {
				return lerr
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "COLUMN\tNODE\tENDPOINT\tREPORTED")
			for _, col := range cols {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%v\n", col.Column, col.Node, col.Endpoint, col.Reported)
			}
			return tw.Flush()
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}
