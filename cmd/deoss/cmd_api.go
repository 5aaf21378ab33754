package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func newAPICmd(g *globals) *cobra.Command {
	var data string
	var headers []string
	cmd := &cobra.Command{
		Use:   "api METHOD PATH",
		Short: "Send any request to the gateway, signed with your key; print the status and the body",
		Long: `Sends METHOD PATH (with its query) to the gateway, signed with your key for
that gateway, with the body of --data FILE (- for standard input) and the
headers of -H 'Name: value', and prints the status line, then the body. Like
curl with signing, for scripting the API (docs/api.yaml) and checking it by
hand. A body is hashed into the signature (read whole: at most 64 MiB here;
stream larger files with deoss put). Exits 0 for a 2xx answer, 1 otherwise.`,
		Example: `  deoss api GET /files/$(deoss key show)
  deoss api POST /upload --data session.json
  deoss api DELETE /file/<FID>`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, a []string) error {
			method, path := strings.ToUpper(a[0]), a[1]
			if !strings.HasPrefix(path, "/") {
				return usageError{fmt.Errorf("PATH must start with /: %q", path)}
			}
			hdr := map[string]string{}
			for _, h := range headers {
				k, v, ok := strings.Cut(h, ":")
				if !ok || strings.TrimSpace(k) == "" {
					return usageError{fmt.Errorf("-H %q: want 'Name: value'", h)}
				}
				hdr[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
			var body []byte
			if data != "" {
				var r io.Reader = cmd.InOrStdin()
				if data != "-" {
					f, err := os.Open(data)
					if err != nil {
						return err
					}
					defer f.Close()
					r = f
				}
				b, err := io.ReadAll(io.LimitReader(r, 64<<20+1))
				if err != nil {
					return err
				}
				if len(b) > 64<<20 {
					return usageError{fmt.Errorf("--data: over 64 MiB; use deoss put")}
				}
				body = b
			}
			c, _, err := g.sdkClient()
			if err != nil {
				return err
			}
			var rd io.Reader
			if body != nil {
				rd = bytes.NewReader(body)
			}
			resp, err := c.Raw(cmd.Context(), method, path, rd, int64(len(body)), hdr)
			if err != nil {
				return unavailable{err}
			}
			defer resp.Body.Close()
			fmt.Fprintln(cmd.OutOrStdout(), resp.Proto, resp.Status)
			if _, err := io.Copy(cmd.OutOrStdout(), resp.Body); err != nil {
				return err
			}
			if resp.StatusCode/100 != 2 {
				return apiStatus{resp.StatusCode}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "file whose bytes are the body (- for standard input)")
	cmd.Flags().StringArrayVarP(&headers, "header", "H", nil, "a header, 'Name: value' (repeatable)")
	return cmd
}

// apiStatus is a non-2xx answer of deoss api: printed already, exit 1.
type apiStatus struct{ code int }

func (e apiStatus) Error() string {
	return fmt.Sprintf("the gateway answered %d %s", e.code, http.StatusText(e.code))
}
