package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/types"
	"github.com/deoss/deoss/sdk"
)

// benchResult is what `deoss bench` measures.
type benchResult struct {
	SizeBytes       int64   `json:"size_bytes"`
	CodecMBps       float64 `json:"codec_encode_mb_per_s"`
	UploadMBps      float64 `json:"upload_mb_per_s"`
	UploadRatio     float64 `json:"upload_of_codec"`
	StoredSeconds   float64 `json:"stored_seconds,omitempty"`
	DownloadMBps    float64 `json:"download_mb_per_s"`
	DownloadRatio   float64 `json:"download_of_codec"`
	FirstByteP50Ms  float64 `json:"first_byte_p50_ms"`
	FirstByteP99Ms  float64 `json:"first_byte_p99_ms"`
	RangeP50Ms      float64 `json:"range_1mib_p50_ms"`
	RangeP99Ms      float64 `json:"range_1mib_p99_ms"`
	Downloads       int     `json:"downloads"`
	Ranges          int     `json:"ranges"`
	FID             sdk.FID `json:"fid"`
	GatewayEndpoint string  `json:"gateway"`
}

func newBenchCmd(g *globals) *cobra.Command {
	var size int64
	var downloads, ranges int
	var asJSON, keep, waitStored bool
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure upload and download speed, time to first byte and range latency against a running network",
		Long: `Uploads --size random bytes through the configured gateway, reads them back
--downloads times and reads --ranges random 1 MiB ranges, checking every byte.
The codec's encoding speed is measured in the same run, on this machine, and
each speed is also given as a ratio to it (machines are noisy; ratios travel).`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, cfg, err := g.sdkClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			res := benchResult{SizeBytes: size, Downloads: downloads, Ranges: ranges, GatewayEndpoint: cfg.Gateway.Value}
			f, err := os.CreateTemp("", "deoss-bench-*")
			if err != nil {
				return err
			}
			defer os.Remove(f.Name())
			if _, err := io.CopyN(f, rand.Reader, size); err != nil {
				return err
			}
			data := make([]byte, size)
			if _, err := f.ReadAt(data, 0); err != nil {
				return err
			}
			f.Close()
			mbps := func(d time.Duration) float64 { return float64(size) / d.Seconds() / 1e6 }

			start := time.Now()
			// The codec alone, as the gateway runs it (format v2; the owner
			// only enters the FID, and this one is never declared).
			if _, err := codec.Encode(ctx, bytes.NewReader(data), codec.SinkFunc(func(*codec.Segment) error { return nil }), codec.WithOwner(types.Address{0xbe})); err != nil {
				return err
			}
			res.CodecMBps = mbps(time.Since(start))

			start = time.Now()
			fid, err := c.Upload(ctx, f.Name(), sdk.UploadOptions{Name: "deoss-bench.bin", Territory: cfg.Territory.Value, StateFile: f.Name() + ".state", Tuning: "-"})
			if err != nil {
				return err
			}
			res.UploadMBps, res.FID = mbps(time.Since(start)), fid
			res.UploadRatio = res.UploadMBps / res.CodecMBps
			if waitStored {
				for {
					m, err := c.Stat(ctx, fid)
					if err != nil {
						return err
					}
					if m.State == "stored" {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				res.StoredSeconds = time.Since(start).Seconds()
			}
			url := cfg.Gateway.Value + "/file/download/" + fid.String()
			var firsts, rangeLat []time.Duration
			var best time.Duration
			for range downloads {
				ttfb, total, err := benchGet(ctx, url, "", data)
				if err != nil {
					return err
				}
				firsts = append(firsts, ttfb)
				if best == 0 || total < best {
					best = total
				}
			}
			rng := mrand.New(mrand.NewPCG(1, 2))
			for range ranges {
				off := rng.Int64N(max(size-1<<20, 1))
				end := min(off+1<<20, size)
				_, total, err := benchGet(ctx, url, fmt.Sprintf("bytes=%d-%d", off, end-1), data[off:end])
				if err != nil {
					return err
				}
				rangeLat = append(rangeLat, total)
			}
			if best > 0 {
				res.DownloadMBps = mbps(best)
				res.DownloadRatio = res.DownloadMBps / res.CodecMBps
				res.FirstByteP50Ms, res.FirstByteP99Ms = ms(percentile(firsts, 0.5)), ms(percentile(firsts, 0.99))
			}
			if len(rangeLat) > 0 {
				res.RangeP50Ms, res.RangeP99Ms = ms(percentile(rangeLat, 0.5)), ms(percentile(rangeLat, 0.99))
			}
			if !keep {
				if err := c.Delete(ctx, fid); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			fmt.Fprintf(w, "size          %s\ncodec encode  %.1f MB/s (this machine, same run)\n", mib(size), res.CodecMBps)
			fmt.Fprintf(w, "upload        %.1f MB/s (%.2f of the codec)\n", res.UploadMBps, res.UploadRatio)
			if waitStored {
				fmt.Fprintf(w, "stored after  %.1f s\n", res.StoredSeconds)
			}
			fmt.Fprintf(w, "download      %.1f MB/s (%.2f of the codec), best of %d\n", res.DownloadMBps, res.DownloadRatio, downloads)
			fmt.Fprintf(w, "first byte    p50 %.1f ms, p99 %.1f ms\n", res.FirstByteP50Ms, res.FirstByteP99Ms)
			fmt.Fprintf(w, "1 MiB range   p50 %.1f ms, p99 %.1f ms (%d reads)\n", res.RangeP50Ms, res.RangeP99Ms, ranges)
			return nil
		},
	}
	f := cmd.Flags()
	f.Int64Var(&size, "size", 256<<20, "bytes to upload")
	f.IntVar(&downloads, "downloads", 3, "whole downloads")
	f.IntVar(&ranges, "ranges", 100, "random 1 MiB range reads")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVar(&keep, "keep", false, "keep the file (default: delete it at the end)")
	f.BoolVar(&waitStored, "wait-stored", false, "also time until the chain says stored")
	return cmd
}

// benchGet reads url (a range, when rng is set), checks the bytes and
// returns the time to the first byte and to the last.
func benchGet(ctx context.Context, url, rng string, want []byte) (time.Duration, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, 0, err
	}
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return 0, 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	buf := make([]byte, len(want))
	n, err := io.ReadFull(resp.Body, buf[:min(1, len(buf))])
	ttfb := time.Since(start)
	if err == nil {
		var m int
		m, err = io.ReadFull(resp.Body, buf[n:])
		n += m
	}
	total := time.Since(start)
	if err != nil || !slices.Equal(buf[:n], want) {
		return 0, 0, fmt.Errorf("GET %s: %d bytes read back wrong (%v)", url, n, err)
	}
	return ttfb, total, nil
}

func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
