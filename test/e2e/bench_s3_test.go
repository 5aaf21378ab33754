package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/deoss/deoss/internal/testutil"
	"github.com/deoss/deoss/internal/types"
	"github.com/deoss/deoss/sdk"
)

// s3Do sends a request to the S3 endpoint signed with SigV4 over an
// unsigned payload (as the native benchmark's uploads are unsigned too),
// and returns the status after reading the body to its end.
func (e *s3Env) s3Do(tb testing.TB, method, path string, body io.Reader, size int64) int {
	tb.Helper()
	req, _ := http.NewRequest(method, e.n.Gateways[0].S3URL+path, body)
	if body != nil {
		req.ContentLength = size
	}
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: e.access, SecretAccessKey: e.secret}, req,
		"UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
		tb.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		tb.Fatal(err)
	}
	return resp.StatusCode
}

func (n *Network) download(tb testing.TB, fid types.FID) {
	tb.Helper()
	resp, err := n.HTTP.Get(n.Gateways[0].URL + "/file/download/" + fid.String())
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != 200 {
		tb.Fatalf("download %s: %d %v", fid, resp.StatusCode, err)
	}
}

// BenchmarkS3VsNative256MiB: one 256 MiB object up and down through the
// S3 endpoint and through the native API of the same gateway, in the same
// run (which goes first alternates); the ratios are S3's speed over
// native's.
func BenchmarkS3VsNative256MiB(b *testing.B) {
	size := int64(256 << 20)
	e := startS3Bench(b)
	// Sums over the iterations: the ratios are of totals, not of the last.
	var nativePut, s3Put, nativeGet, s3Get time.Duration
	for i := 0; i < b.N; i++ {
		var fid types.FID
		key := fmt.Sprintf("/bench/big-%d", i)
		native := func() {
			start := time.Now()
			fid = e.n.Put(0, fmt.Sprintf("native-%d.bin", i), newRandom(byte(2*i+10), size), size, nil)
			nativePut += time.Since(start)
		}
		viaS3 := func() {
			start := time.Now()
			if st := e.s3Do(b, http.MethodPut, key, newRandom(byte(2*i+11), size), size); st != 200 {
				b.Fatalf("s3 put: %d", st)
			}
			s3Put += time.Since(start)
		}
		if i%2 == 0 {
			native()
			viaS3()
		} else {
			viaS3()
			native()
		}
		// Both read once stored, from the nodes (the gateway's work copy
		// is freed by then), in alternating order.
		e.n.WaitStored(fid, 10*time.Minute)
		e.waitStoredKey(b, key)
		getNative := func() {
			start := time.Now()
			e.n.download(b, fid)
			nativeGet += time.Since(start)
		}
		getS3 := func() {
			start := time.Now()
			if st := e.s3Do(b, http.MethodGet, key, nil, 0); st != 200 {
				b.Fatalf("s3 get: %d", st)
			}
			s3Get += time.Since(start)
		}
		if i%2 == 0 {
			getNative()
			getS3()
		} else {
			getS3()
			getNative()
		}
	}
	total := size * int64(b.N)
	b.ReportMetric(mbps(total, nativePut), "native-put-MB/s")
	b.ReportMetric(mbps(total, s3Put), "s3-put-MB/s")
	b.ReportMetric(nativePut.Seconds()/s3Put.Seconds(), "s3/native-put")
	b.ReportMetric(mbps(total, nativeGet), "native-get-MB/s")
	b.ReportMetric(mbps(total, s3Get), "s3-get-MB/s")
	b.ReportMetric(nativeGet.Seconds()/s3Get.Seconds(), "s3/native-get")
}

func startS3Bench(b *testing.B) *s3Env {
	b.Helper()
	n := Start(b, Options{Nodes: 12, Capacity: 16 << 30, TerritoryGiB: 16})
	e := &s3Env{n: n}
	key, err := sdkFor(n).CreateS3Key(context.Background(), "home")
	if err != nil {
		b.Fatal(err)
	}
	e.access, e.secret = key.AccessKey, key.SecretKey
	if st := e.s3Do(b, http.MethodPut, "/bench", nil, 0); st != 200 {
		b.Fatalf("create bucket: %d", st)
	}
	return e
}

// BenchmarkS3SmallObjects: 1,000 objects of 1 KiB put by 32 clients at
// once, then got by 8, through S3 and through the native API (before packing:
// each is a file of its own, a baseline for the packing issue).
func BenchmarkS3SmallObjects(b *testing.B) {
	const count, size = 1000, 1024
	e := startS3Bench(b)
	// 32 uploaders; 8 readers (a gateway serves 8 downloads at once to
	// one address).
	run := func(clients int, f func(j int)) time.Duration {
		start := time.Now()
		parallel(clients, count, f)
		return time.Since(start)
	}
	for i := 0; i < b.N; i++ {
		fids := make([]types.FID, count)
		body := func(j int) []byte {
			p := make([]byte, size)
			rand.Read(p)
			return p
		}
		nativePut := run(32, func(j int) {
			p := body(j)
			fids[j] = e.n.Put(0, fmt.Sprintf("small-%d-%d", i, j), &onlyReader{p: p}, size, nil)
		})
		s3Put := run(32, func(j int) {
			p := body(j)
			if st := e.s3Do(b, http.MethodPut, fmt.Sprintf("/bench/small/%d/%d", i, j), &onlyReader{p: p}, size); st != 200 {
				b.Errorf("s3 put: %d", st)
			}
		})
		nativeGet := run(8, func(j int) { e.n.download(b, fids[j]) })
		s3Get := run(8, func(j int) {
			if st := e.s3Do(b, http.MethodGet, fmt.Sprintf("/bench/small/%d/%d", i, j), nil, 0); st != 200 {
				b.Errorf("s3 get: %d", st)
			}
		})
		rate := func(d time.Duration) float64 { return float64(count) / d.Seconds() }
		b.ReportMetric(rate(nativePut), "native-puts/s")
		b.ReportMetric(rate(s3Put), "s3-puts/s")
		b.ReportMetric(rate(nativeGet), "native-gets/s")
		b.ReportMetric(rate(s3Get), "s3-gets/s")
	}
}

// onlyReader hides a byte slice's other methods, so requests stream it
// (no GetBody: the native client leaves it unsigned, as S3 does here).
type onlyReader struct{ p []byte }

func (o *onlyReader) Read(b []byte) (int, error) {
	if len(o.p) == 0 {
		return 0, io.EOF
	}
	n := copy(b, o.p)
	o.p = o.p[n:]
	return n, nil
}

func sdkFor(n *Network) *sdk.Client { return sdk.NewWithKey(n.Gateways[0].URL, n.User) }

// waitStoredKey waits until the key's file is stored on chain.
func (e *s3Env) waitStoredKey(tb testing.TB, path string) {
	tb.Helper()
	bucket, key, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	var fid types.FID
	eventuallyTB(tb, 5*time.Minute, func() error {
		o, err := e.n.Chain.Object(context.Background(), e.n.User.Address(), bucket, key)
		if err != nil {
			return err
		}
		fid = o.FID
		return nil
	})
	e.n.WaitStored(fid, 10*time.Minute)
}

func eventuallyTB(tb testing.TB, within time.Duration, cond func() error) {
	tb.Helper()
	var last error
	if !testutil.Eventually(within, 200*time.Millisecond, func() bool { last = cond(); return last == nil }) {
		tb.Fatalf("after %s: %v", within, last)
	}
}
