package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// BenchmarkPackedSmallObjects: PUTs of 1 KiB by 32 clients, each
// object a file of its own (packing off; measured once) and packed, in the
// same run;
// S3 PUTs packed; the raw rate of a write and an fsync per object on this
// disk; cold reads of packed 4 KiB objects from the gateway that did not
// take them (p50, p99); and bytes on nodes per stored byte.
func BenchmarkPackedSmallObjects(b *testing.B) {
	// Packed PUTs run for seconds (5,000 of them), the slow unpacked
	// baseline for 500.
	const count, unpackedCount, size = 5000, 500, 1024
	puts := func(clients, count int, f func(j int)) float64 {
		start := time.Now()
		parallel(clients, count, f)
		return float64(count) / time.Since(start).Seconds()
	}
	body := func() []byte {
		p := make([]byte, size)
		rand.Read(p)
		return p
	}
	noCache := func(_ int, cfg map[string]any) {
		cfg["cache_bytes"] = 1
		cfg["pprof"] = os.Getenv("DEOSS_BENCH_PPROF") != ""
	}
	// The unpacked baseline first, on a network of its own that is then
	// killed: its 1,000 files' encoding and distribution would otherwise
	// run beside the packed PUTs and slow them.
	var unpacked float64
	{
		plain := Start(b, Options{Nodes: 12, Gateway: noCache})
		unpacked = puts(32, unpackedCount, func(j int) { plain.Put(0, fmt.Sprintf("u-%d", j), &onlyReader{p: body()}, size, nil) })
		plain.Kill()
	}
	e := startS3With(b, Options{Nodes: 12, Gateways: 2, Packs: true, Gateway: noCache})
	if st := e.s3Do(b, http.MethodPut, "/bench", nil, 0); st != 200 {
		b.Fatalf("create bucket: %d", st)
	}
	for i := 0; i < b.N; i++ {
		oids := make([]types.FID, count)
		if dir := os.Getenv("DEOSS_BENCH_PPROF"); dir != "" {
			go profileGateway(e.n.Gateways[0].URL, filepath.Join(dir, "gateway-packed-put.pprof"), 3)
		}
		packed := puts(32, count, func(j int) { oids[j] = e.n.Put(0, fmt.Sprintf("p-%d-%d", i, j), &onlyReader{p: body()}, size, nil) })
		s3packed := puts(32, count, func(j int) {
			if st := e.s3Do(b, http.MethodPut, fmt.Sprintf("/bench/%d/%d", i, j), &onlyReader{p: body()}, size); st != 200 {
				b.Errorf("s3 put: %d", st)
			}
		})
		f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
		if err != nil {
			b.Fatal(err)
		}
		raw := puts(1, count, func(int) {
			f.Write(body())
			f.Sync()
		})
		f.Close()

		// 1,000 objects of 4 KiB, packed, then read once each (cold: the
		// reading gateway keeps no fragments) one at a time.
		small := make([]types.FID, 1000)
		for j := range small {
			p := make([]byte, 4096)
			rand.Read(p)
			small[j] = e.n.Put(0, fmt.Sprintf("r-%d-%d", i, j), &onlyReader{p: p}, 4096, nil)
		}
		ctx := context.Background()
		eventuallyTB(b, 3*time.Minute, func() error {
			for _, oid := range append(small, oids...) {
				if _, err := e.n.Chain.Packed(ctx, oid); err != nil {
					return err
				}
			}
			return nil
		})
		var lat []time.Duration
		for _, oid := range small {
			start := time.Now()
			resp, err := e.n.HTTP.Get(e.n.Gateways[1].URL + "/file/download/" + oid.String())
			if err != nil || resp.StatusCode != 200 {
				b.Fatalf("read %s: %v", oid, err)
			}
			resp.Body.Close()
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		packs := map[types.FID]bool{}
		for _, oid := range append(small, oids...) {
			v, _ := e.n.Chain.Packed(ctx, oid)
			packs[v.Locations[0].Pack] = true
		}
		// Every object in those packs counts, the S3 ones beside them too.
		var onNodes, stored uint64
		for p := range packs {
			pf, err := e.n.Chain.File(ctx, p)
			if err != nil || pf.Pack == nil {
				b.Fatalf("pack %s: %v", p, err)
			}
			onNodes += ledger.ColumnBytes(&pf.Layout) * types.TotalShards
			stored += pf.Pack.LiveBytes
		}
		b.ReportMetric(unpacked, "unpacked-puts/s")
		b.ReportMetric(packed, "packed-puts/s")
		b.ReportMetric(s3packed, "s3-packed-puts/s")
		b.ReportMetric(raw, "raw-fsync-appends/s")
		b.ReportMetric(packed/unpacked, "packed/unpacked")
		b.ReportMetric(packed/raw, "packed/raw-fsync")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "read-p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "read-p99-ms")
		b.ReportMetric(float64(onNodes)/float64(stored), "node-bytes/stored-byte")
	}
}
