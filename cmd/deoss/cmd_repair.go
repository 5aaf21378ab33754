package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

func newRepairCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "repair", Short: "Show the network's file health and repair queue; ask what losing nodes would do"}
	cmd.AddCommand(newRepairStatusCmd(g), newRepairWhatIfCmd(g))
	return cmd
}

func newRepairStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Files and bytes by health, restoral orders by health, claims in flight, repair rate and ETA",
		Long: `Reads the chain's repair state: how many stored files have 12, 11, ... 0
healthy columns (and their bytes), the restoral orders queued for each health
with their bytes and how many may be claimed now, the claims in flight, the
bytes restored in the last hour and day of block time, and the time the
queue would take at the last hour's rate.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := timeout(cmd)
			defer cancel()
			st, err := c.RepairStatus(ctx)
			if err != nil || asJSON {
				return jsonOr(cmd, st, err)
			}
			printRepairStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printRepairStatus(w io.Writer, st *ledger.RepairStatus) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HEALTH\tFILES\tBYTES\tORDERS\tORDER BYTES\tELIGIBLE")
	for h := types.TotalShards; h >= 0; h-- {
		b, q := st.Health[h], st.Queue[h]
		if b.Files == 0 && q.Orders == 0 {
			continue
		}
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%d\t%d\n", h, b.Files, b.Bytes, q.Orders, q.Bytes, q.Eligible)
	}
	tw.Flush()
	fmt.Fprintf(w, "claims in flight: %d (%d bytes)\n", st.Claims, st.ClaimsBytes)
	fmt.Fprintf(w, "restored: %d bytes in the last hour, %d in the last day (%d bytes/s)\n", st.RepairedHour, st.RepairedDay, st.Rate)
	switch {
	case st.ETA == 0:
		fmt.Fprintln(w, "eta: nothing to repair")
	case st.ETA < 0:
		fmt.Fprintln(w, "eta: unknown (nothing restored in the last day to measure a rate by)")
	default:
		fmt.Fprintf(w, "eta: %s\n", time.Duration(st.ETA)*time.Second)
	}
	if st.Sweeping > 0 {
		fmt.Fprintf(w, "note: %d node(s) changed state and their columns are still being re-rated\n", st.Sweeping)
	}
}

func newRepairWhatIfCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "whatif NODE...",
		Short: "What losing these nodes would do: files by health before and after, files lost, repair bytes",
		Args:  args(cobra.RangeArgs(1, ledger.MaxWhatIf)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var nodes []types.Address
			for _, s := range a {
				n, err := types.ParseAddress(s)
				if err != nil {
					return usageError{fmt.Errorf("node %q: %w", s, err)}
				}
				nodes = append(nodes, n)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := timeout(cmd)
			defer cancel()
			w, err := c.WhatIf(ctx, nodes)
			if err != nil || asJSON {
				return jsonOr(cmd, w, err)
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "HEALTH\tFILES NOW\tFILES AFTER\tBYTES AFTER")
			for h := types.TotalShards; h >= 0; h-- {
				if w.Before[h].Files == 0 && w.After[h].Files == 0 {
					continue
				}
				fmt.Fprintf(tw, "%d\t%d\t%d\t%d\n", h, w.Before[h].Files, w.After[h].Files, w.After[h].Bytes)
			}
			tw.Flush()
			fmt.Fprintf(out, "files affected: %d; would be lost (under %d healthy): %d\n", w.FilesAffected, types.DataShards, w.FilesLost)
			fmt.Fprintf(out, "repair would move: %d bytes\n", w.RepairBytes)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
