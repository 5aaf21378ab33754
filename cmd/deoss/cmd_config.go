package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
	"github.com/deoss/deoss/sdk"
)

// configReport is what `deoss config` found.
type configReport struct {
	Config      *resolved          `json:"config"`
	Account     string             `json:"account,omitempty"`
	Checks      []configCheck      `json:"checks"`
	Balance     *uint64            `json:"balance,omitempty"`
	Territories []ledger.Territory `json:"territories,omitempty"`
	Authorized  []types.Address    `json:"authorized,omitempty"`
}

type configCheck struct {
	What  string `json:"what"`
	OK    bool   `json:"ok"`
	Said  string `json:"said"`
	error error
}

func newConfigCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the client configuration every command uses, where each value came from, and check it",
		Long: `Prints the gateway, chain, key and territory that the client commands use,
and where each came from. Each is taken from the first of: the flag
(--gateway, --chain, --key, put's --territory), the environment
(DEOSS_GATEWAY, DEOSS_CHAIN, DEOSS_KEY, DEOSS_TERRITORY), the config file
(--config or DEOSS_CONFIG, else the dev network's ~/.deoss/dev/client.yaml
when there is one), the default.

Then checks that the chain and the gateway answer and that the account
exists, and shows its balance, its territories with used and free space and
the gateways it authorized. Exits non-zero when a check fails: the first
command to run when something is off.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := g.config()
			if err != nil {
				return err
			}
			rep := checkConfig(cmd.Context(), g, cfg)
			w := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(w, rep); err != nil {
					return err
				}
			} else {
				printConfig(w, rep)
			}
			for _, c := range rep.Checks {
				if !c.OK {
					return fmt.Errorf("%s: %w", c.What, c.error)
				}
			}
			return nil
		},
	}
	jsonFlag(cmd, &asJSON)
	return cmd
}

func checkConfig(ctx context.Context, g *globals, cfg *resolved) *configReport {
	rep := &configReport{Config: cfg}
	check := func(what string, f func(ctx context.Context) (string, error)) bool {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		said, err := f(cctx)
		c := configCheck{What: what, OK: err == nil, Said: said, error: err}
		if err != nil {
			c.Said = err.Error()
		}
		rep.Checks = append(rep.Checks, c)
		return err == nil
	}
	k, kerr := g.loadKey()
	check("key", func(context.Context) (string, error) {
		if kerr != nil {
			return "", kerr
		}
		rep.Account = k.Address().String()
		return rep.Account, nil
	})
	check("gateway", func(ctx context.Context) (string, error) {
		c := sdk.NewWithKey(cfg.Gateway.Value, nil)
		if cfg.CAFile.Value != "" {
			if err := c.UseCA(cfg.CAFile.Value); err != nil {
				return "", err
			}
		}
		return "answers", c.Ping(ctx)
	})
	chainOK := check("chain", func(ctx context.Context) (string, error) {
		c, err := g.client()
		if err != nil {
			return "", err
		}
		h, err := c.Height(ctx)
		return fmt.Sprintf("answers at height %d", h), err
	})
	if kerr != nil || !chainOK {
		return rep
	}
	c, _ := g.client()
	check("account", func(ctx context.Context) (string, error) {
		acc, err := c.Account(ctx, k.Address())
		if err != nil {
			return "", err
		}
		if acc.Balance == 0 && acc.Nonce == 0 {
			return "", fmt.Errorf("%s has never been used: fund it (deoss account faucet on a dev chain)", k.Address())
		}
		rep.Balance = &acc.Balance
		return fmt.Sprintf("balance %d", acc.Balance), nil
	})
	check("territory "+cfg.Territory.Value, func(ctx context.Context) (string, error) {
		var err error
		if rep.Territories, err = c.Territories(ctx, k.Address()); err != nil {
			return "", err
		}
		if !slices.ContainsFunc(rep.Territories, func(t ledger.Territory) bool { return t.Name == cfg.Territory.Value }) {
			return "", fmt.Errorf("the account has no territory %q: buy one with deoss territory buy", cfg.Territory.Value)
		}
		return "exists", nil
	})
	check("authorized gateways", func(ctx context.Context) (string, error) {
		var err error
		if rep.Authorized, err = c.Authorized(ctx, k.Address()); err != nil {
			return "", err
		}
		gws, err := c.Gateways(ctx)
		if err != nil {
			return "", err
		}
		for _, gw := range gws {
			if strings.TrimRight(gw.Endpoint, "/") == strings.TrimRight(cfg.Gateway.Value, "/") {
				if slices.Contains(rep.Authorized, gw.Address) {
					return fmt.Sprintf("%d, the configured gateway (%s) among them", len(rep.Authorized), gw.Address), nil
				}
				return "", fmt.Errorf("the configured gateway %s is not authorized: deoss gateway authorize %s", gw.Address, gw.Address)
			}
		}
		return "", fmt.Errorf("no registered gateway has the endpoint %s", cfg.Gateway.Value)
	})
	return rep
}

func printConfig(w io.Writer, rep *configReport) {
	cfg := rep.Config
	for _, s := range []struct {
		name string
		s    setting
	}{{"gateway", cfg.Gateway}, {"chain", cfg.Chain}, {"key", cfg.Key}, {"territory", cfg.Territory}, {"ca_file", cfg.CAFile}} {
		fmt.Fprintf(w, "%-10s %s  (%s)\n", s.name+":", s.s.Value, s.s.Source)
	}
	if rep.Account != "" {
		fmt.Fprintf(w, "%-10s %s\n", "account:", rep.Account)
	}
	fmt.Fprintln(w, "checks:")
	for _, c := range rep.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %s: %s\n", mark, c.What, c.Said)
	}
	for _, t := range rep.Territories {
		fmt.Fprintf(w, "territory %s: %s total, %s used, %s pending, %s free, expires %s\n", t.Name, bytesText(t.Total), bytesText(t.Used),
			bytesText(t.Locked), bytesText(t.Free()), time.Unix(t.Expires, 0).UTC().Format(time.DateOnly))
	}
	for _, a := range rep.Authorized {
		fmt.Fprintf(w, "authorized gateway: %s\n", a)
	}
}

// bytesText renders a byte count for people: "1.5 GiB".
func bytesText(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// jsonFlag adds --json to a command that prints a table or a record.
func jsonFlag(cmd *cobra.Command, v *bool) {
	cmd.Flags().BoolVar(v, "json", false, "print JSON, for scripts")
}

// jsonOr prints v as JSON, unless err.
func jsonOr(cmd *cobra.Command, v any, err error) error {
	if err != nil {
		return err
	}
	return writeJSON(cmd.OutOrStdout(), v)
}

// writeJSON prints v as indented JSON, for --json.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
