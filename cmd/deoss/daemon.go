package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// What `node init` and `gateway init` share.

// loadOrCreateKey reads the key at path, creating it (0600) if there is none.
func loadOrCreateKey(path string) (*auth.Key, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	k, err := auth.Load(path, nil)
	if errors.Is(err, os.ErrNotExist) {
		if k, err = auth.Generate(); err == nil {
			err = auth.Save(path, k, nil)
		}
	}
	return k, err
}

// fundOnDev takes money from the faucet when the chain is a dev chain and the
// account has less than need.
func fundOnDev(ctx context.Context, c *chain.Client, s *chain.Signer, a types.Address, need uint64) error {
	info, err := c.Info(ctx)
	if err != nil {
		return err
	}
	acc, err := c.Account(ctx, a)
	if err != nil || acc.Balance >= need || !info.Dev {
		return err
	}
	if _, err := s.Submit(ctx, ledger.Msg{Faucet: &ledger.Faucet{}}); err != nil {
		return fmt.Errorf("faucet: %w", err)
	}
	return nil
}

// serve runs a daemon until SIGINT or SIGTERM, printing a ready line.
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
