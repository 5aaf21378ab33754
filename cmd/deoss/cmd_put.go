package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/fsutil"
	"github.com/deoss/deoss/sdk"
)

func newPutCmd(g *globals) *cobra.Command {
	var o sdk.UploadOptions
	var recursive, encrypt bool
	var encryptFile string
	cmd := &cobra.Command{
		Use:   "put FILE | put -r DIR",
		Short: "Upload a file (or, with -r, every file under a folder); the FID is the last line of standard output",
		Long: `Uploads FILE through the gateway in chunks (several at once, each retried
on failure). Interrupted, the same command again continues the upload: only
the chunks the gateway does not hold yet are sent.

With -r, uploads every regular file under DIR (symbolic links and other
special files are skipped, with a word on standard error) and prints one line
per file: its FID, a tab, and its path relative to DIR. The name on chain is
the file's base name. Run again after an interruption, it skips the files
already stored and resumes the one it was sending. It exits 0 only when every
file was stored.`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			// Check the argument before anything is created at the gateway.
			info, err := os.Stat(a[0])
			if err != nil {
				return err
			}
			switch {
			case info.IsDir() && !recursive:
				return usageError{fmt.Errorf("%s is a folder: upload every file under it with -r", a[0])}
			case !info.IsDir() && recursive:
				return usageError{fmt.Errorf("-r: %s is not a folder", a[0])}
			case !info.IsDir() && !info.Mode().IsRegular():
				return usageError{fmt.Errorf("%s is not a regular file", a[0])}
			}
			if encrypt {
				if o.Cipher != "" {
					return usageError{errors.New("--encrypt and --cipher: choose one (--encrypt keeps the key on this side)")}
				}
				if o.Encrypt, err = encryptionPassphrase(encryptFile); err != nil {
					return err
				}
			}
			c, cfg, err := g.sdkClient()
			if err != nil {
				return err
			}
			o.Territory = cfg.Territory.Value
			if recursive {
				return putTree(cmd, c, a[0], o)
			}
			bar := newProgressBar("put " + a[0])
			o.Progress = bar.update
			fid, err := c.Upload(cmd.Context(), a[0], o)
			bar.done()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), fid)
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&recursive, "recursive", "r", false, "upload every regular file under the folder DIR")
	f.StringVar(&o.Cipher, "cipher", "", "have the gateway encrypt the file with this cipher (needed again to read it; TLS only)")
	f.BoolVar(&encrypt, "encrypt", false, "encrypt here before sending, with the passphrase of --encrypt-passphrase-file or DEOSS_ENCRYPT_PASSPHRASE: the gateway sees only ciphertext (get --decrypt reads it)")
	f.StringVar(&encryptFile, "encrypt-passphrase-file", "", "file holding the passphrase of --encrypt")
	f.BoolVar(&o.Private, "private", false, "serve the file to you only (signed requests) and to links from deoss share; not encryption")
	f.String("territory", "", "territory to store the file in (env DEOSS_TERRITORY; default: the config's, else home)")
	f.StringVar(&o.Name, "name", "", "name on chain (default: the file's base name)")
	f.IntVar(&o.Concurrency, "concurrency", 4, "chunks in flight at most")
	f.Int64Var(&o.ChunkSize, "chunk-size", 0, "chunk size in bytes (default: chosen from the rate measured last time)")
	return cmd
}

// treeFile is a file of a recursive put.
type treeFile struct {
	Rel     string    `json:"rel"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
	FID     sdk.FID   `json:"fid,omitzero"`
}

// putTree uploads every regular file under dir, one after another, with one
// progress line for the whole set. A manifest in ~/.deoss/uploads keeps the
// FIDs of the files stored so far, so a re-run after an interruption skips
// them (a file changed since is sent again); it is removed once every file
// is stored.
func putTree(cmd *cobra.Command, c *sdk.Client, dir string, o sdk.UploadOptions) error {
	if o.Name != "" {
		return usageError{errors.New("--name names one file: not with -r")}
	}
	var files []treeFile
	var total int64
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		if !d.Type().IsRegular() {
			fmt.Fprintf(os.Stderr, "deoss: skipped %s: not a regular file\n", rel)
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, treeFile{Rel: filepath.ToSlash(rel), Size: info.Size(), ModTime: info.ModTime().UTC()})
		total += info.Size()
		return nil
	})
	if err != nil {
		return usageError{err}
	}
	abs, _ := filepath.Abs(dir)
	home, _ := os.UserHomeDir()
	sum := sha256.Sum256([]byte(abs))
	manifest := filepath.Join(home, ".deoss", "uploads", "tree-"+hex.EncodeToString(sum[:8])+".json")
	var done []treeFile
	_ = fsutil.ReadJSON(manifest, &done) // none, or unreadable: start over
	stored := map[string]treeFile{}
	for _, f := range done {
		stored[f.Rel] = f
	}

	bar := newProgressBar(fmt.Sprintf("put %s (%d files)", dir, len(files)))
	defer bar.done()
	started := time.Now()
	var before int64 // bytes of the files finished before the current one
	var failed int
	var first error
	var kept []treeFile
	out := cmd.OutOrStdout()
	for _, f := range files {
		if s, ok := stored[f.Rel]; ok && s.Size == f.Size && s.ModTime.Equal(f.ModTime) {
			fmt.Fprintf(out, "%s\t%s\n", s.FID, f.Rel)
			kept = append(kept, s)
			before += f.Size
			continue
		}
		fo := o
		fo.Progress = func(p sdk.Progress) {
			bar.update(sdk.Progress{Done: before + p.Done, Total: total, Started: started})
		}
		fid, err := c.Upload(cmd.Context(), filepath.Join(dir, filepath.FromSlash(f.Rel)), fo)
		before += f.Size
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
			fmt.Fprintf(os.Stderr, "deoss: %s: %v\n", f.Rel, err)
			if cmd.Context().Err() != nil {
				break
			}
			continue
		}
		fmt.Fprintf(out, "%s\t%s\n", fid, f.Rel)
		f.FID = fid
		kept = append(kept, f)
		os.MkdirAll(filepath.Dir(manifest), 0o700)
		if err := fsutil.WriteJSON(manifest, kept); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d files were not stored (run the same command again to retry them): %w", failed, len(files), first)
	}
	os.Remove(manifest)
	return nil
}
