package main

import (
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "deoss",
		Short: "Decentralized object storage: gateway, storage node, chain and client",
		Long: `deoss stores files on a network of storage nodes coordinated by a chain.
A gateway cuts each file into 32 MiB segments, erasure-codes each into 12
fragments (any 4 rebuild it) and spreads them over 12 storage nodes.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCmd())
	return root
}

// exitCode maps an error to the process exit status (docs/operations.md).
// 1 is a general failure; specific codes arrive with the client commands.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	return 1
}
