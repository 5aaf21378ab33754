package codec

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"runtime"
	"sync"
	"testing"

	"github.com/klauspost/reedsolomon"

	"github.com/deoss/deoss/internal/types"
)

// Each codec benchmark runs with cores=1 and cores=2: it sets GOMAXPROCS itself
// (the codec's default worker count), because `go test -cpu 1` does not hold
// GOMAXPROCS at 1 under Go 1.26 here. Each BenchmarkPrimitive* is the bare work
// of the matching codec benchmark, single-threaded, measured in the same run so
// that the ratio survives a noisy machine (docs/performance.md).

const benchSegments = 8

var benchInput = sync.OnceValue(func() []byte { return pattern(benchSegments * S) })

// BenchmarkPrimitive_4x8x32MiB: klauspost encode of 4+8 over 8 MiB shards, plus
// SHA-256 of the 12 fragments and of the segment.
func BenchmarkPrimitive_4x8x32MiB(b *testing.B) { benchPrimitiveEncode(b, false) }

// BenchmarkPrimitiveAES_4x8x32MiB adds the AES-256-GCM seal of the segment.
func BenchmarkPrimitiveAES_4x8x32MiB(b *testing.B) { benchPrimitiveEncode(b, true) }

func benchPrimitiveEncode(b *testing.B, seal bool) {
	enc, _ := reedsolomon.New(4, 8, reedsolomon.WithMaxGoroutines(1))
	seg := bytes.Clone(benchInput()[:S])
	shards := make([][]byte, 12)
	for i := range 4 {
		shards[i] = seg[i*F : (i+1)*F]
	}
	for i := 4; i < 12; i++ {
		shards[i] = touch(make([]byte, F))
	}
	k := testKey()
	b.SetBytes(S)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if seal {
			k.seal(seg, uint64(i), false)
		}
		if err := enc.Encode(shards); err != nil {
			b.Fatal(err)
		}
		sha256.Sum256(seg)
		for _, s := range shards {
			sha256.Sum256(s)
		}
	}
}

func BenchmarkEncode_4x8x32MiB(b *testing.B) { benchEncode(b) }

func BenchmarkEncodeAES_4x8x32MiB(b *testing.B) { benchEncode(b, WithKey(testKey())) }

func benchEncode(b *testing.B, opts ...EncodeOption) {
	data := benchInput()
	sink := SinkFunc(func(*Segment) error { return nil })
	perCores(b, func(b *testing.B) {
		// One untimed run fills the buffer pools: a running gateway's are
		// warm, and fresh pages cost more than the work on this machine.
		if _, err := Encode(context.Background(), bytes.NewReader(data), sink, opts...); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Encode(context.Background(), bytes.NewReader(data), sink, opts...); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// perCores runs f with GOMAXPROCS 1 and 2.
func perCores(b *testing.B, f func(b *testing.B)) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("cores=%d", n), func(b *testing.B) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(n))
			f(b)
		})
	}
}

// benchStore is an 8-segment encoded file shared by the decode benchmarks.
var benchStore = sync.OnceValues(func() (*Result, *memStore) {
	st := newMemStore()
	res, err := Encode(context.Background(), bytes.NewReader(benchInput()), st, WithFormat(types.FormatV1))
	if err != nil {
		panic(err)
	}
	return res, st
})

// BenchmarkPrimitiveDecodeFast_4x8x32MiB: SHA-256 of the 4 data fragments and a
// copy of the segment, the least a verified read can do.
func BenchmarkPrimitiveDecodeFast_4x8x32MiB(b *testing.B) {
	_, st := benchStore()
	out := touch(make([]byte, S))
	b.SetBytes(S)
	b.ReportAllocs()
	for b.Loop() {
		for i := range 4 {
			f := st.frags[fragKey{0, i}]
			sha256.Sum256(f)
			copy(out[i*F:], f)
		}
	}
}

// BenchmarkPrimitiveDecodeRebuild_4x8x32MiB: SHA-256 of 4 parity fragments,
// reconstruction of the 4 data fragments, SHA-256 of the rebuilt ones (the
// check that rebuilt bytes are the declared ones).
func BenchmarkPrimitiveDecodeRebuild_4x8x32MiB(b *testing.B) {
	_, st := benchStore()
	enc, _ := reedsolomon.New(4, 8, reedsolomon.WithMaxGoroutines(1))
	seg := touch(make([]byte, S))
	b.SetBytes(S)
	b.ReportAllocs()
	for b.Loop() {
		shards := make([][]byte, 12)
		for i := 4; i < 8; i++ {
			shards[i] = st.frags[fragKey{0, i}]
			sha256.Sum256(shards[i])
		}
		for i := range 4 {
			shards[i] = seg[i*F : i*F : (i+1)*F]
		}
		if err := enc.ReconstructData(shards); err != nil {
			b.Fatal(err)
		}
		for i := range 4 {
			sha256.Sum256(shards[i])
		}
	}
}

// BenchmarkDecodeFast_4x8x32MiB reads a whole file with every fragment good.
func BenchmarkDecodeFast_4x8x32MiB(b *testing.B) { benchDecode(b) }

// BenchmarkDecodeRebuild_4x8x32MiB reads a whole file whose 4 data fragments
// are all missing: every segment is rebuilt from parity.
func BenchmarkDecodeRebuild_4x8x32MiB(b *testing.B) { benchDecode(b, 0, 1, 2, 3) }

func benchDecode(b *testing.B, missing ...int) {
	res, st := benchStore()
	st.resetFaults()
	defer st.resetFaults()
	for seg := range uint64(benchSegments) {
		st.setFault(seg, faultMissing, missing...)
	}
	perCores(b, func(b *testing.B) {
		// Warm the pools, as in benchEncode.
		if err := Decode(context.Background(), io.Discard, &res.Layout, st, 0, int64(res.Layout.Size)); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(res.Layout.Size))
		b.ReportAllocs()
		for b.Loop() {
			if err := Decode(context.Background(), io.Discard, &res.Layout, st, 0, int64(res.Layout.Size)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkFileID_10000 is the FID of a file with the maximum segment count.
func BenchmarkFileID_10000(b *testing.B) {
	l := layoutOf(types.MaxSegments, types.EncryptionNone)
	b.ReportAllocs()
	for b.Loop() {
		FileID(l)
	}
}

// touch writes every page of b: on these virtual machines the first write to
// fresh memory costs more than hashing it, and a primitive must not be charged
// for it when the codec's pooled buffers are not.
func touch(b []byte) []byte {
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	return b
}
