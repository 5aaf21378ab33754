package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/sdk"
)

func newPutCmd(g *globals) *cobra.Command {
	var cipher, territory, name string
	var concurrency int
	var chunk int64
	cmd := &cobra.Command{
		Use:   "put FILE",
		Short: "Upload a file; the FID is the last line of standard output",
		Long: `Uploads FILE through the gateway in chunks (several at once, each retried
on failure). Interrupted, the same command again continues the upload: only
the chunks the gateway does not hold yet are sent.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, cfg, err := g.sdkClient()
			if err != nil {
				return err
			}
			if territory == "" {
				territory = cfg.Territory
			}
			bar := newProgressBar("put " + a[0])
			fid, err := c.Upload(cmd.Context(), a[0], sdk.UploadOptions{Name: name, Territory: territory, Cipher: cipher,
				Concurrency: concurrency, ChunkSize: chunk, Progress: bar.update})
			bar.done()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), fid)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cipher, "cipher", "", "encrypt the file with this cipher (needed again to read it)")
	f.StringVar(&territory, "territory", "", "territory to store the file in (default: the config's)")
	f.StringVar(&name, "name", "", "name on chain (default: the file's base name)")
	f.IntVar(&concurrency, "concurrency", 4, "chunks in flight at most")
	f.Int64Var(&chunk, "chunk-size", 0, "chunk size in bytes (default: chosen from the rate measured last time)")
	return cmd
}
