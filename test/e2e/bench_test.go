package e2e

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/types"
)

// randomReader yields n pseudo-random bytes from seed, fast enough (GB/s)
// not to be what a benchmark measures.
type randomReader struct {
	c *rand.ChaCha8
	n int64
}

func newRandom(seed byte, n int64) *randomReader {
	var s [32]byte
	s[0] = seed
	return &randomReader{c: rand.NewChaCha8(s), n: n}
}

func (r *randomReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	n, _ := r.c.Read(p)
	r.n -= int64(n)
	return n, nil
}

// encodeToFolder is the bound of an upload: the codec and the 12 columns
// written with fsync to a local folder, no HTTP, no chain.
func encodeToFolder(b testing.TB, dir string, size int64) time.Duration {
	cols := make([]*os.File, types.TotalShards)
	for j := range cols {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("col-%02d", j)))
		if err != nil {
			b.Fatal(err)
		}
		cols[j] = f
	}
	start := time.Now()
	_, err := codec.Encode(context.Background(), newRandom(1, size), codec.SinkFunc(func(s *codec.Segment) error {
		for j, f := range s.Fragments {
			if _, err := cols[j].Write(f); err != nil {
				return err
			}
		}
		return nil
	}), codec.WithSize(size), codec.WithOwner(types.Address{0xbe}))
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range cols {
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	return time.Since(start)
}

func mbps(size int64, d time.Duration) float64 { return float64(size) / d.Seconds() / 1e6 }

// BenchmarkUpload1GiB measures a 1 GiB upload through a gateway process to 12
// storage node processes, beside its bound measured in the same run:
// accepted (the client has its FID: the file is encoded and durable at the
// gateway) and stored (every column reported on chain).
func BenchmarkUpload1GiB(b *testing.B) {
	size := int64(1 << 30)
	if testing.Short() {
		size = 128 << 20
	}
	n := Start(b, Options{Nodes: 12, Capacity: 8 << 30})
	for i := 0; i < b.N; i++ {
		bound := encodeToFolder(b, b.TempDir(), size)
		start := time.Now()
		fid := n.Put(0, fmt.Sprintf("bench-%d.bin", i), newRandom(1, size), size, nil)
		accepted := time.Since(start)
		n.WaitStored(fid, 10*time.Minute)
		stored := time.Since(start)
		b.ReportMetric(mbps(size, bound), "bound-MB/s")
		b.ReportMetric(mbps(size, accepted), "accepted-MB/s")
		b.ReportMetric(mbps(size, stored), "stored-MB/s")
		b.ReportMetric(bound.Seconds()/accepted.Seconds(), "accepted/bound")
		b.ReportMetric(bound.Seconds()/stored.Seconds(), "stored/bound")
		b.ReportMetric(float64(n.Gateways[0].PeakRSS())/(1<<20), "gateway-peak-RSS-MiB")
	}
}

// BenchmarkUploadMemory streams one large file (DEOSS_BENCH_GIB, default 10)
// into a gateway with no storage nodes (the file is accepted and waits) and
// reports the gateway's peak resident memory: it must not grow with the
// file. It needs three times the file's size free on disk.
func BenchmarkUploadMemory(b *testing.B) {
	gib := int64(10)
	if s := os.Getenv("DEOSS_BENCH_GIB"); s != "" {
		fmt.Sscan(s, &gib)
	}
	size := gib << 30
	n := Start(b, Options{Nodes: -1, TerritoryGiB: uint64(gib + 1)})
	for i := 0; i < b.N; i++ {
		start := time.Now()
		n.Put(0, fmt.Sprintf("big-%d.bin", i), newRandom(2, size), size, nil)
		b.ReportMetric(mbps(size, time.Since(start)), "accepted-MB/s")
		b.ReportMetric(float64(n.Gateways[0].PeakRSS())/(1<<20), "gateway-peak-RSS-MiB")
	}
}
