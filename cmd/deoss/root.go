package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/sdk"
)

// globals are the flags every client command shares.
type globals struct {
	passphraseFile string
	logLevel       string
	configFile     string

	cmd *cobra.Command // the command running, for config resolution
	cfg *resolved      // resolved on first use
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
	// The client settings have no flag defaults: resolveConfig layers flag,
	// environment, config file and default, and `deoss config` says which won.
	pf := root.PersistentFlags()
	pf.String("chain", "", "chain RPC address (env DEOSS_CHAIN; default "+defaultChain+")")
	pf.String("key", "", "key file (env DEOSS_KEY; default ~/.deoss/key.json)")
	pf.String("gateway", "", "gateway address (env DEOSS_GATEWAY; default "+defaultGateway+")")
	pf.String("ca-file", "", "CA certificate (PEM) to trust beside the system's, for https gateways (env DEOSS_CA_FILE)")
	pf.StringVar(&g.passphraseFile, "passphrase-file", "", "file holding the passphrase of a sealed key file")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.StringVar(&g.configFile, "config", "", "client config file (env DEOSS_CONFIG; default: the dev network's client.yaml when there is one)")
	root.PersistentPreRun = func(cmd *cobra.Command, _ []string) { g.cmd = cmd }
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newVersionCmd(), newChainCmd(g), newKeyCmd(g), newAccountCmd(g), newTerritoryCmd(g), newGatewayCmd(g), newNodeCmd(g), newRepairCmd(g),
		newConfigCmd(g), newPutCmd(g), newGetCmd(g), newRmCmd(g), newStatCmd(g), newLsCmd(g), newNodesCmd(g), newDevCmd(g), newBenchCmd(g), newShareCmd(g), newAPICmd(g), newS3Cmd(g), newConsoleCmd(g))
	return root
}

func (g *globals) logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// client dials the chain of the resolved config.
func (g *globals) client() (*chain.Client, error) {
	cfg, err := g.config()
	if err != nil {
		return nil, err
	}
	c, err := chain.Dial(cfg.Chain.Value)
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
	exitExists      = 6 // the output file exists and --no-clobber was given
)

type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

type exists struct{ error }

func (e exists) Unwrap() error { return e.error }

type unavailable struct{ error }

func (e unavailable) Unwrap() error { return e.error }

// exitCode maps an error to the process exit status.
func exitCode(err error) int {
	var ue usageError
	var un unavailable
	var ex exists
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
	case errors.As(err, &ex):
		return exitExists
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
