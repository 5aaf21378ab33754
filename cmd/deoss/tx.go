package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/ledger"
)

// passphrase reads the --passphrase-file, else DEOSS_PASSPHRASE (nil
// without either); a trailing newline is not part of the passphrase.
func (g *globals) passphrase() ([]byte, error) {
	if g.passphraseFile == "" {
		if p := os.Getenv("DEOSS_PASSPHRASE"); p != "" {
			return []byte(p), nil
		}
		return nil, nil
	}
	b, err := os.ReadFile(g.passphraseFile)
	if err != nil {
		return nil, err
	}
	return bytes.TrimRight(b, "\r\n"), nil
}

// keyPath is the resolved key file.
func (g *globals) keyPath() (string, error) {
	cfg, err := g.config()
	if err != nil {
		return "", err
	}
	return cfg.Key.Value, nil
}

// loadKey reads the resolved key file, with the --passphrase-file if given.
func (g *globals) loadKey() (*auth.Key, error) {
	cfg, err := g.config()
	if err != nil {
		return nil, err
	}
	pass, err := g.passphrase()
	if err != nil {
		return nil, err
	}
	k, err := auth.Load(cfg.Key.Value, pass)
	if errors.Is(err, os.ErrNotExist) {
		return nil, usageError{fmt.Errorf("no key file at %s (%s): create one with `deoss key new`, or pass --key; `deoss config` shows what is used", cfg.Key.Value, cfg.Key.Source)}
	}
	return k, err
}

// submit signs msg with the --key, sends it and waits for its block.
func submit(cmd *cobra.Command, g *globals, msg ledger.Msg) error {
	k, err := g.loadKey()
	if err != nil {
		return err
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := timeout(cmd)
	defer cancel()
	res, err := c.Signer(k).Submit(ctx, msg)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "ok: %s in block %d (tx %s)\n", msg.Name(), res.Height, res.Hash)
	return nil
}

// show runs a chain query and prints its answer as indented JSON (so its
// commands' --json changes nothing: see jsonRecord).
func show(cmd *cobra.Command, g *globals, q func(context.Context, *chain.Client) (any, error)) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := timeout(cmd)
	defer cancel()
	v, err := q(ctx, c)
	if err != nil {
		return err
	}
	return writeJSON(cmd.OutOrStdout(), v)
}

// jsonRecord gives a command whose output is a JSON record already the
// --json every record command takes.
func jsonRecord(cmd *cobra.Command) *cobra.Command {
	var ignored bool
	jsonFlag(cmd, &ignored)
	return cmd
}
