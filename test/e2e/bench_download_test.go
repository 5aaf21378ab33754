package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/types"
)

// folderSource reads fragments from column files in a folder, as the work
// area does; down lists columns that fail.
type folderSource struct {
	dir  string
	down map[int]bool
}

func (s folderSource) OpenFragment(_ context.Context, seg uint64, idx int) (io.ReadCloser, error) {
	if s.down[idx] {
		return nil, errors.New("down")
	}
	f, err := os.Open(filepath.Join(s.dir, fmt.Sprintf("col-%02d", idx)))
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, int64(seg)*types.FragmentSize, types.FragmentSize), f}, nil
}

// placeWriter writes into a fixed buffer.
type placeWriter struct {
	b []byte
	n int
}

func (w *placeWriter) Write(p []byte) (int, error) {
	n := copy(w.b[w.n:], p)
	w.n += n
	if n < len(p) {
		return n, io.ErrShortWrite
	}
	return n, nil
}

// scratch is the client's buffer, touched once: allocating (and so zeroing
// and faulting in) a fresh 256 MiB per download cost more than the
// download on these VMs.
var scratch []byte

func clientBuf(n int) []byte {
	if len(scratch) < n {
		scratch = make([]byte, n)
		for i := 0; i < n; i += 4096 {
			scratch[i] = 1
		}
	}
	return scratch[:n]
}

// timedGet downloads url and returns the time to the first byte and to the
// end, checking the body against want.
func timedGet(b testing.TB, url string, hdr map[string]string, want []byte) (ttfb, total time.Duration) {
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	buf := clientBuf(len(want)) // the client's own cost kept small: one read into place
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, buf[:1]); err != nil {
		b.Fatalf("%s: %d %v", url, resp.StatusCode, err)
	}
	ttfb = time.Since(start)
	_, err = io.ReadFull(resp.Body, buf[1:])
	total = time.Since(start)
	if err != nil || resp.StatusCode/100 != 2 || !bytes.Equal(buf, want) {
		b.Fatalf("%s: %d %v: wrong body", url, resp.StatusCode, err)
	}
	return ttfb, total
}

func pct(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkDownload reads a stored file through a gateway with its cache off,
// beside the bound measured in the same run: the codec reading the needed
// fragments from local column files, verifying and decoding them. Whole
// file with every node up, whole file with the 4 data holders down (every
// segment rebuilt from parity), time to first byte of cold downloads, and
// 1 MiB ranges.
func BenchmarkDownload(b *testing.B) {
	size := int64(256 << 20)
	if testing.Short() {
		size = 64 << 20
	}
	n := Start(b, Options{Nodes: 12, Gateway: func(_ int, cfg map[string]any) {
		cfg["cache_bytes"] = 1
		cfg["pprof"] = os.Getenv("DEOSS_BENCH_PPROF") != ""
	}})
	g := n.Gateways[0]
	data := make([]byte, size)
	io.ReadFull(newRandom(3, size), data)
	fid := n.Put(0, "bench.bin", bytes.NewReader(data), size, nil)
	f := n.WaitStored(fid, 5*time.Minute)
	secret := map[string]string{"Cipher": "bench cipher"}
	efid := n.Put(0, "bench-enc.bin", bytes.NewReader(data), size, secret)
	n.WaitStored(efid, 5*time.Minute)
	encURL := g.URL + "/file/download/" + efid.String()
	waitCleaned(b, g)

	// The bound: the same file's columns in a local folder.
	dir := b.TempDir()
	encodeBytesToFolder(b, dir, data, f.Layout.Owner)
	// The bound writes into one buffer touched beforehand, as the client
	// reads into place: fresh memory costs more than decoding on these VMs.
	out := make([]byte, len(data))
	for i := 0; i < len(out); i += 4096 {
		out[i] = 1
	}
	decodeOnce := func(down map[int]bool) time.Duration {
		start := time.Now()
		w := &placeWriter{b: out}
		if err := codec.Decode(context.Background(), w, &f.Layout, folderSource{dir, down}, 0, size, codec.WithDecodeWorkers(2)); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		if w.n != len(data) || !bytes.Equal(out, data) {
			b.Fatal("local decode differs")
		}
		return d
	}
	// The better of two runs: the first warms buffers and the page cache.
	decodeLocal := func(down map[int]bool) time.Duration { return min(decodeOnce(down), decodeOnce(down)) }
	url := g.URL + "/file/download/" + fid.String()
	for i := 0; i < b.N; i++ {
		boundUp := decodeLocal(nil)
		if dir := os.Getenv("DEOSS_BENCH_PPROF"); dir != "" {
			go profileGateway(g.URL, filepath.Join(dir, "gateway-download.pprof"), 4)
			for range 3 {
				timedGet(b, url, nil, data)
			}
		}
		_, up := timedGet(b, url, nil, data)
		var ttfbs []time.Duration
		for range 10 {
			t, _ := timedGet(b, url, map[string]string{"Range": "bytes=0-"}, data)
			ttfbs = append(ttfbs, t)
		}
		var ranges []time.Duration
		rng := rand.New(rand.NewPCG(1, 2))
		for range 100 {
			off := rng.Int64N(size - 1<<20)
			_, d := timedGet(b, url, map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", off, off+1<<20-1)}, data[off:off+1<<20])
			ranges = append(ranges, d)
		}
		b.ReportMetric(mbps(size, boundUp), "bound-MB/s")
		b.ReportMetric(mbps(size, up), "download-MB/s")
		b.ReportMetric(boundUp.Seconds()/up.Seconds(), "download/bound")
		b.ReportMetric(float64(pct(ttfbs, 0.5).Microseconds())/1000, "cold-ttfb-p50-ms")
		b.ReportMetric(float64(pct(ttfbs, 0.99).Microseconds())/1000, "cold-ttfb-p99-ms")
		b.ReportMetric(float64(pct(ranges, 0.5).Microseconds())/1000, "1MiB-range-p50-ms")
		b.ReportMetric(float64(pct(ranges, 0.99).Microseconds())/1000, "1MiB-range-p99-ms")

		// The 4 data holders down: every segment rebuilt from parity.
		down := map[int]bool{0: true, 1: true, 2: true, 3: true}
		boundRebuild := decodeLocal(down)
		for j := range 4 {
			n.NodeByAddress(f.Columns[j].Node).Stop()
		}
		_, rebuilt := timedGet(b, url, nil, data)
		// Cold 1 MiB ranges with the 4 data holders still stopped: each is
		// rebuilt from the same range of 4 parity fragments.
		var degraded []time.Duration
		for range 100 {
			off := rng.Int64N(size - 1<<20)
			_, d := timedGet(b, url, map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", off, off+1<<20-1)}, data[off:off+1<<20])
			degraded = append(degraded, d)
		}
		for j := range 4 {
			n.NodeByAddress(f.Columns[j].Node).Cont()
		}
		b.ReportMetric(mbps(size, boundRebuild), "rebuild-bound-MB/s")
		b.ReportMetric(mbps(size, rebuilt), "rebuild-MB/s")
		b.ReportMetric(boundRebuild.Seconds()/rebuilt.Seconds(), "rebuild/bound")
		b.ReportMetric(float64(pct(degraded, 0.5).Microseconds())/1000, "degraded-range-p50-ms")
		b.ReportMetric(float64(pct(degraded, 0.99).Microseconds())/1000, "degraded-range-p99-ms")

		// The same bytes encrypted at the gateway, against the plain read
		// just before it.
		// The first read derives the key (Argon2id, about 0.2 s); the
		// gateway keeps it a minute, so the second is the decryption alone.
		_, plain := timedGet(b, url, nil, data)
		_, encFirst := timedGet(b, encURL, secret, data)
		_, enc := timedGet(b, encURL, secret, data)
		b.ReportMetric(encFirst.Seconds()/plain.Seconds(), "encrypted-first/plain")
		b.ReportMetric(enc.Seconds()/plain.Seconds(), "encrypted/plain")
	}
}

// encodeBytesToFolder writes data's 12 columns into dir.
func encodeBytesToFolder(b testing.TB, dir string, data []byte, owner types.Address) {
	cols := make([]*os.File, types.TotalShards)
	for j := range cols {
		cols[j], _ = os.Create(filepath.Join(dir, fmt.Sprintf("col-%02d", j)))
		defer cols[j].Close()
	}
	_, err := codec.Encode(context.Background(), bytes.NewReader(data), codec.SinkFunc(func(s *codec.Segment) error {
		for j, f := range s.Fragments {
			if _, err := cols[j].Write(f); err != nil {
				return err
			}
		}
		return nil
	}), codec.WithOwner(owner))
	if err != nil {
		b.Fatal(err)
	}
}

// profileGateway saves a CPU profile of a gateway started with pprof on
// (DEOSS_BENCH_PPROF names the folder), taken over the next seconds.
func profileGateway(url, path string, seconds int) {
	resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", url, seconds))
	if err != nil {
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	io.Copy(f, resp.Body)
}
