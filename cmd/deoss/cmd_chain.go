package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

func newChainCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "chain", Short: "Run and set up validators"}
	cmd.AddCommand(newChainTestnetCmd(), newChainStartCmd(g), newChainBenchCmd(g))
	return cmd
}

func newChainBenchCmd(g *globals) *cobra.Command {
	var spec chain.BenchSpec
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure storage-order throughput and commit latency of a dev chain (--chain)",
		Long: `Funds accounts from the dev faucet, registers 12 nodes and the gateways, buys
territories, then declares --txs storage orders of --segments segments each
(13 hashes per segment) from --concurrency goroutines. Prints JSON.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Minute)
			defer cancel()
			res, err := chain.Bench(ctx, c, spec)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		},
	}
	f := cmd.Flags()
	f.IntVar(&spec.Txs, "txs", 2000, "storage orders to declare")
	f.IntVar(&spec.Segments, "segments", 32, "segments per order (32 = a 1 GiB file, 15 KB transactions)")
	f.IntVar(&spec.Gateways, "gateways", 4, "gateway accounts submitting in parallel")
	f.IntVar(&spec.Users, "users", 8, "user accounts owning the files")
	f.IntVar(&spec.Concurrency, "concurrency", 64, "transactions in flight")
	return cmd
}

func newChainTestnetCmd() *cobra.Command {
	var (
		n        int
		dir      string
		chainID  string
		basePort int
		commit   time.Duration
		dev      bool
		noFaucet bool
		epoch    time.Duration
		funds    []string
	)
	cmd := &cobra.Command{
		Use:   "testnet",
		Short: "Write validator homes for a network on 127.0.0.1",
		Long: `Writes DIR/v0 ... DIR/v<N-1>, one home per validator, with keys, a shared genesis
and each other as peers. Validator i listens for P2P on BASE+2i and RPC on BASE+2i+1.
Without --dev the genesis has the network parameters (fees, deposits, stakes, hourly
proof epochs; docs/ledger.md) and no faucet: fund accounts with --fund.
Start each with: deoss chain start --home DIR/v<i>`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Off by default: a faucet on a network anyone can reach is
			// free coins, so free spam.
			gen := ledger.Genesis{Params: ledger.NetworkParams()}
			if dev {
				gen = ledger.Genesis{Dev: true, Params: ledger.DefaultParams()}
			}
			if cmd.Flags().Changed("epoch") {
				gen.Params.EpochSeconds = int64(epoch / time.Second)
				gen.Params.ProofWindow = min(gen.Params.ProofWindow, max(gen.Params.EpochSeconds*2/3, 1))
			}
			for _, f := range funds {
				addr, amount, ok := strings.Cut(f, "=")
				a, err := types.ParseAddress(addr)
				v, err2 := strconv.ParseUint(amount, 10, 64)
				if !ok || err != nil || err2 != nil {
					return usageError{fmt.Errorf("--fund %q: want ADDRESS=AMOUNT", f)}
				}
				gen.Accounts = append(gen.Accounts, ledger.GenesisAccount{Address: a, Balance: v})
			}
			homes, err := chain.Testnet(dir, chain.NetworkSpec{
				ChainID: chainID, Validators: n, BasePort: basePort, TimeoutCommit: commit, Genesis: gen,
			})
			if err != nil {
				return err
			}
			for i, h := range homes {
				fmt.Fprintf(cmd.OutOrStdout(), "%s rpc=http://127.0.0.1:%d\n", h, basePort+2*i+1)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&n, "validators", 1, "number of validators")
	f.StringVar(&dir, "dir", "", "folder for the validator homes (required)")
	f.StringVar(&chainID, "chain-id", "deoss-local", "chain id")
	f.IntVar(&basePort, "base-port", 26600, "first port (below 32768)")
	f.DurationVar(&commit, "timeout-commit", 100*time.Millisecond, "pause after each commit")
	f.BoolVar(&dev, "dev", false, "a dev chain: the faucet on, small fees and stakes, 30 s proof epochs")
	f.BoolVar(&noFaucet, "no-faucet", false, "")
	_ = f.MarkDeprecated("no-faucet", "the faucet is off unless --dev is given")
	f.DurationVar(&epoch, "epoch", 0, "the proof epoch (0s: no proofs; default 30s with --dev, 1h without)")
	f.StringArrayVar(&funds, "fund", nil, "genesis balance ADDRESS=AMOUNT (repeatable)")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

func newChainStartCmd(g *globals) *cobra.Command {
	var home string
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Run one validator until interrupted",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := chain.NewValidator(home, g.logger())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			ready := make(chan struct{})
			go func() {
				select {
				case <-ready:
					fmt.Fprintf(cmd.OutOrStdout(), "validator ready: rpc %s\n", v.RPC())
				case <-ctx.Done():
				}
			}()
			return v.Run(ctx, ready)
		},
	}
	cmd.Flags().StringVar(&home, "home", "", "validator home written by `deoss chain testnet` (required)")
	_ = cmd.MarkFlagRequired("home")
	return cmd
}

// timeout is the deadline of one client command.
func timeout(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), 60*time.Second)
}
