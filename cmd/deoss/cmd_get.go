package main

import (
	"github.com/spf13/cobra"

	"github.com/deoss/deoss/sdk"
)

func newGetCmd(g *globals) *cobra.Command {
	var out, cipher string
	cmd := &cobra.Command{
		Use:   "get FID",
		Short: "Download a file (a partial OUT is continued)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			fid, c, err := g.fidClient(a[0])
			if err != nil {
				return err
			}
			if out == "" {
				out = fid.String()
			}
			bar := newProgressBar("get " + out)
			err = c.DownloadFile(cmd.Context(), fid, out, sdk.DownloadOptions{Cipher: cipher, Progress: bar.update})
			bar.done()
			return err
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default: the FID)")
	cmd.Flags().StringVar(&cipher, "cipher", "", "cipher of an encrypted file")
	return cmd
}
