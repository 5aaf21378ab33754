package main

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/types"
)

// serve runs a daemon until SIGINT or SIGTERM, saying when it is ready.
func serve(cmd *cobra.Command, what string, addr types.Address, run func(ctx context.Context, ready chan<- string) error) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ready := make(chan string, 1)
	go func() {
		select {
		case listen := <-ready:
			fmt.Fprintf(cmd.OutOrStdout(), "%s ready: %s listening on %s\n", what, addr, listen)
		case <-ctx.Done():
		}
	}()
	return run(ctx, ready)
}
