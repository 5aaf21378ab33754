package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newS3Cmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "s3", Short: "S3 credentials of your account at the gateway (docs/s3.md)"}
	keys := &cobra.Command{Use: "keys", Short: "Create, list and revoke S3 access keys"}
	keys.AddCommand(newS3KeysCreateCmd(g), newS3KeysListCmd(g), newS3KeysRevokeCmd(g))
	cmd.AddCommand(keys)
	return cmd
}

func newS3KeysCreateCmd(g *globals) *cobra.Command {
	var territory string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Issue an access key and secret for your account at the gateway",
		Long: `Asks the gateway (a signed request) for an S3 credential of your account.
The secret is printed once and kept sealed at the gateway; S3 tools sign
their requests with it. Buckets whose CreateBucket names no territory of
yours go to --territory (default: the configured territory).`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, cfg, err := g.sdkClient()
			if err != nil {
				return err
			}
			if territory == "" {
				territory = cfg.Territory.Value
			}
			ctx, cancel := timeout(cmd)
			defer cancel()
			k, err := c.CreateS3Key(ctx, territory)
			if err != nil || asJSON {
				return jsonOr(cmd, k, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "access key: %s\nsecret key: %s\nterritory:  %s\n", k.AccessKey, k.SecretKey, k.Territory)
			fmt.Fprintln(out, "(the secret is shown only now)")
			return nil
		},
	}
	cmd.Flags().StringVar(&territory, "territory", "", "the territory of buckets created without one")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newS3KeysListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List your account's access keys at the gateway (no secrets)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := g.sdkClient()
			if err != nil {
				return err
			}
			ctx, cancel := timeout(cmd)
			defer cancel()
			keys, err := c.S3Keys(ctx)
			if err != nil || asJSON {
				return jsonOr(cmd, keys, err)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ACCESS KEY\tTERRITORY\tCREATED")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", k.AccessKey, k.Territory, k.Created.Format("2006-01-02 15:04:05Z07:00"))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newS3KeysRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ACCESS_KEY",
		Short: "Revoke an access key: its next request is refused",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, _, err := g.sdkClient()
			if err != nil {
				return err
			}
			ctx, cancel := timeout(cmd)
			defer cancel()
			return c.RevokeS3Key(ctx, a[0])
		},
	}
}
