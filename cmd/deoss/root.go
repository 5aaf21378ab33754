package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/sdk"
)

// globals are the flags every client command shares.
type globals struct {
	chainURL       string
	keyPath        string
	passphraseFile string
	logLevel       string
	configFile     string
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "deoss",
		Short: "Decentralized object storage: gateway, storage node, chain and client",
		Long: `deoss stores files on a network of storage nodes coordinated by a chain.
A gateway cuts each file into 32 MiB segments, erasure-codes each into 12
fragments (any 4 rebuild it) and spreads them over 12 storage nodes.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	home, _ := os.UserHomeDir()
	pf := root.PersistentFlags()
	pf.StringVar(&g.chainURL, "chain", envOr("DEOSS_CHAIN", "http://127.0.0.1:26657"), "chain RPC address (env DEOSS_CHAIN)")
	pf.StringVar(&g.keyPath, "key", envOr("DEOSS_KEY", filepath.Join(home, ".deoss", "key.json")), "key file (env DEOSS_KEY)")
	pf.StringVar(&g.passphraseFile, "passphrase-file", "", "file holding the passphrase of a sealed key file")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.StringVar(&g.configFile, "config", "", "client config (env DEOSS_CONFIG; default: the dev network's client.yaml)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newVersionCmd(), newChainCmd(g), newKeyCmd(g), newAccountCmd(g), newTerritoryCmd(g), newGatewayCmd(g), newNodeCmd(g),
		newPutCmd(g), newGetCmd(g), newRmCmd(g), newStatCmd(g), newLsCmd(g), newNodesCmd(g), newDevCmd(g), newBenchCmd(g))
	return root
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (g *globals) logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// client dials the chain.
func (g *globals) client() (*chain.Client, error) {
	c, err := chain.Dial(g.chainURL)
	if err != nil {
		return nil, unavailable{err}
	}
	return c, nil
}

// Exit codes (docs/operations.md).
const (
	exitOK          = 0
	exitFailure     = 1 // anything else
	exitUsage       = 2 // bad flags or arguments
	exitNotFound    = 3 // the chain has no such thing
	exitRefused     = 4 // the chain refused the transaction
	exitUnavailable = 5 // the chain could not be reached
)

type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

type unavailable struct{ error }

func (e unavailable) Unwrap() error { return e.error }

// exitCode maps an error to the process exit status.
func exitCode(err error) int {
	var ue usageError
	var un unavailable
	var le *ledger.Error
	var se *sdk.Error
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &se) && se.Status == http.StatusNotFound:
		return exitNotFound
	case errors.As(err, &se) && se.Status >= 500:
		return exitUnavailable
	case errors.As(err, &se):
		return exitRefused
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, ledger.ErrNotFound):
		return exitNotFound
	case errors.As(err, &le):
		return exitRefused
	case errors.As(err, &un), errors.Is(err, chain.ErrTimeout), errors.Is(err, chain.ErrUnavailable), errors.As(err, new(*net.OpError)):
		return exitUnavailable
	}
	return exitFailure
}

// args wraps a cobra argument check so that its error is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}
