package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/sdk"
)

func newGetCmd(g *globals) *cobra.Command {
	var out, cipher, decryptFile string
	var noClobber, decrypt bool
	cmd := &cobra.Command{
		Use:   "get FID",
		Short: "Download a file (replaces OUT; an interrupted get of the same FID resumes)",
		Long: `Downloads the file FID into OUT (default: the FID).

The bytes go into OUT.deoss-partial (with a record OUT.deoss-partial.json of
the FID, size and bytes synced so far) and replace OUT only once the whole
file is received and synced, as cp and curl -o replace their target. An
interrupted get leaves OUT as it was; run again for the same FID, it
continues from the partial file. A partial file of another FID is discarded
(said on standard error), never continued.

--no-clobber refuses to replace an existing OUT (exit code 6).
-o - writes the file to standard output (no partial file, no resume).`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var pass string
			if decrypt {
				var err error
				if pass, err = encryptionPassphrase(decryptFile); err != nil {
					return err
				}
			}
			fid, c, err := g.fidClient(a[0])
			if err != nil {
				return err
			}
			if out == "-" {
				_, err := c.Download(cmd.Context(), fid, cmd.OutOrStdout(), 0, -1, sdk.DownloadOptions{Cipher: cipher, Decrypt: pass})
				return err
			}
			if out == "" {
				out = fid.String()
			}
			bar := newProgressBar("get " + out)
			err = c.DownloadFile(cmd.Context(), fid, out, sdk.DownloadOptions{Cipher: cipher, Decrypt: pass, Progress: bar.update, NoClobber: noClobber,
				Discarded: func(msg string) { fmt.Fprintln(os.Stderr, "deoss:", msg) }})
			bar.done()
			if errors.Is(err, sdk.ErrExists) {
				return exists{err}
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write, replaced when it exists (default: the FID; - for standard output)")
	cmd.Flags().StringVar(&cipher, "cipher", "", "cipher of an encrypted file")
	cmd.Flags().BoolVar(&noClobber, "no-clobber", false, "refuse to replace an existing output file")
	cmd.Flags().BoolVar(&decrypt, "decrypt", false, "open a file that put --encrypt sealed, with the passphrase of --encrypt-passphrase-file or DEOSS_ENCRYPT_PASSPHRASE")
	cmd.Flags().StringVar(&decryptFile, "encrypt-passphrase-file", "", "file holding the passphrase of --decrypt")
	return cmd
}

// encryptionPassphrase reads the passphrase of client-side encryption from
// file, else DEOSS_ENCRYPT_PASSPHRASE.
func encryptionPassphrase(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		if p := strings.TrimRight(string(b), "\r\n"); p != "" {
			return p, nil
		}
		return "", usageError{fmt.Errorf("%s: an empty passphrase", file)}
	}
	if p := os.Getenv("DEOSS_ENCRYPT_PASSPHRASE"); p != "" {
		return p, nil
	}
	return "", usageError{errors.New("client-side encryption needs a passphrase: --encrypt-passphrase-file or DEOSS_ENCRYPT_PASSPHRASE")}
}
