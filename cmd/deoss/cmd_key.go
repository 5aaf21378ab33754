package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/auth"
)

func newKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Create and show account keys"}
	var force bool
	newCmd := &cobra.Command{
		Use:   "new",
		Short: "Create a key file (--key); seal it with --passphrase-file",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := g.keyPath()
			if err != nil {
				return err
			}
			if _, err := os.Stat(path); err == nil && !force {
				return fmt.Errorf("%s exists; --force replaces it (and loses that key)", path)
			}
			pass, err := g.passphrase()
			if err != nil {
				return err
			}
			k, err := auth.Generate()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return err
			}
			if err := auth.Save(path, k, pass); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), k.Address())
			return nil
		},
	}
	newCmd.Flags().BoolVar(&force, "force", false, "replace an existing key file")
	showCmd := &cobra.Command{
		Use:   "show",
		Short: "Print the address of the key file (--key)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := g.loadKey()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), k.Address())
			return nil
		},
	}
	sealCmd := &cobra.Command{
		Use:   "seal",
		Short: "Seal the key file (--key) with the passphrase of --passphrase-file or DEOSS_PASSPHRASE",
		Long: `Rewrites an unsealed key file sealed (Argon2id and AES-256-GCM), in place and
atomically. A daemon's key (HOME/key.json of a gateway or node) sealed this way
is opened at start with the same --passphrase-file or DEOSS_PASSPHRASE; the
gateway's key-encryption key of upload sessions derives from it, so the home
alone no longer opens them.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := g.keyPath()
			if err != nil {
				return err
			}
			pass, err := g.passphrase()
			if err != nil {
				return err
			}
			if len(pass) == 0 {
				return usageError{fmt.Errorf("no passphrase: give --passphrase-file or DEOSS_PASSPHRASE")}
			}
			k, err := auth.Load(path, nil)
			if err != nil {
				return err
			}
			if err := auth.Save(path, k, pass); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s sealed (%s)\n", path, k.Address())
			return nil
		},
	}
	cmd.AddCommand(newCmd, showCmd, sealCmd)
	return cmd
}
