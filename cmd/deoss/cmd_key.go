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
	cmd.AddCommand(newCmd, showCmd)
	return cmd
}
