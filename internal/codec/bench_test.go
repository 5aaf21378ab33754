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
	"lukechampine.com/blake3"

	"github.com/deoss/deoss/internal/types"
)

// Each codec benchmark runs with cores=1 and cores=2: it sets GOMAXPROCS itself
// (the codec's default worker count), because `go test -cpu 1` does not hold
// GOMAXPROCS at 1 under Go 1.26 here. Each BenchmarkPrimitive* is the bare work
// of the matching codec benchmark, single-threaded, measured in the same run so
// that the ratio survives a noisy machine (docs/performance.md).

const benchSegments = 8

var benchInput = sync.OnceValue(func() []byte { return pattern(benchSegments * S) })

// hashOf is the bare hash of a format version.
func hashOf(v uint8) func([]byte) {
	if v == types.FormatV1 {
		return func(b []byte) { sha256.Sum256(b) }
	}
	return func(b []byte) { blake3Sum(b) }
}

// The primitives: klauspost encode of 4+8 over 8 MiB shards, plus the
// version's hash of the 12 fragments and of the segment (SHA-256 in v1,
// BLAKE3 in v2), single-threaded. The AES ones add the seal (v1: one GCM
// seal of the segment; v2: 64 KiB blocks).
func BenchmarkPrimitive_v1(b *testing.B)    { benchPrimitiveEncode(b, types.FormatV1, false) }
func BenchmarkPrimitive_v2(b *testing.B)    { benchPrimitiveEncode(b, types.FormatV2, false) }
func BenchmarkPrimitiveAES_v1(b *testing.B) { benchPrimitiveEncode(b, types.FormatV1, true) }
func BenchmarkPrimitiveAES_v2(b *testing.B) { benchPrimitiveEncode(b, types.FormatV2, true) }

// onOneCore holds GOMAXPROCS at 1 for a primitive: lukechampine.com/blake3
// hashes a large buffer on several goroutines, and a bare primitive must be
// one core's work.
func onOneCore(b *testing.B) {
	prev := runtime.GOMAXPROCS(1)
	b.Cleanup(func() { runtime.GOMAXPROCS(prev) })
}

func benchPrimitiveEncode(b *testing.B, v uint8, seal bool) {
	onOneCore(b)
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
	sum := hashOf(v)
	b.SetBytes(S)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		switch {
		case seal && v == types.FormatV1:
			k.seal(seg, uint64(i), false)
		case seal:
			k.sealBlocks(seg, types.ProfileV2.BlockSize(types.EncryptionAES256GCM), uint64(i), false)
		}
		if err := enc.Encode(shards); err != nil {
			b.Fatal(err)
		}
		sum(seg)
		for _, s := range shards {
			sum(s)
		}
	}
}

// The codec: Encode of 8 segments with GOMAXPROCS 1 and 2 (a segment per
// core), and the gateway's shipped setting, one segment worker whose
// Reed-Solomon and hashing use every core (Lone).
func BenchmarkEncode_v1(b *testing.B) { benchEncode(b, WithFormat(types.FormatV1)) }
func BenchmarkEncode_v2(b *testing.B) { benchEncode(b, v2()...) }
func BenchmarkEncodeAES_v1(b *testing.B) {
	benchEncode(b, WithFormat(types.FormatV1), WithKey(testKey()))
}
func BenchmarkEncodeAES_v2(b *testing.B) { benchEncode(b, append(v2(), WithKey(testKey()))...) }
func BenchmarkEncodeLone_v1(b *testing.B) {
	benchEncode(b, WithFormat(types.FormatV1), WithWorkers(1))
}
func BenchmarkEncodeLone_v2(b *testing.B) { benchEncode(b, append(v2(), WithWorkers(1))...) }

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

// benchStores are 8-segment encoded files (v1 and v2) shared by the decode
// benchmarks.
var benchStores = sync.OnceValues(func() ([2]*Result, [2]*memStore) {
	var res [2]*Result
	var sts [2]*memStore
	for i, opts := range [][]EncodeOption{{WithFormat(types.FormatV1)}, v2()} {
		sts[i] = newMemStore()
		r, err := Encode(context.Background(), bytes.NewReader(benchInput()), sts[i], opts...)
		if err != nil {
			panic(err)
		}
		res[i] = r
	}
	return res, sts
})

func benchStore(v uint8) (*Result, *memStore) {
	res, sts := benchStores()
	return res[v-1], sts[v-1]
}

// The decode primitives: the version's hash of the 4 data fragments and a
// copy of the segment, the least a verified read can do (Fast); the hash of
// 4 parity fragments, reconstruction of the 4 data fragments and the hash of
// the rebuilt ones (Rebuild).
func BenchmarkPrimitiveDecodeFast_v1(b *testing.B)    { benchPrimitiveFast(b, types.FormatV1) }
func BenchmarkPrimitiveDecodeFast_v2(b *testing.B)    { benchPrimitiveFast(b, types.FormatV2) }
func BenchmarkPrimitiveDecodeRebuild_v1(b *testing.B) { benchPrimitiveRebuild(b, types.FormatV1) }
func BenchmarkPrimitiveDecodeRebuild_v2(b *testing.B) { benchPrimitiveRebuild(b, types.FormatV2) }

func benchPrimitiveFast(b *testing.B, v uint8) {
	onOneCore(b)
	_, st := benchStore(v)
	sum := hashOf(v)
	out := touch(make([]byte, S))
	b.SetBytes(S)
	b.ReportAllocs()
	for b.Loop() {
		for i := range 4 {
			f := st.frags[fragKey{0, i}]
			sum(f)
			copy(out[i*F:], f)
		}
	}
}

func benchPrimitiveRebuild(b *testing.B, v uint8) {
	onOneCore(b)
	_, st := benchStore(v)
	sum := hashOf(v)
	enc, _ := reedsolomon.New(4, 8, reedsolomon.WithMaxGoroutines(1))
	seg := touch(make([]byte, S))
	b.SetBytes(S)
	b.ReportAllocs()
	for b.Loop() {
		shards := make([][]byte, 12)
		for i := 4; i < 8; i++ {
			shards[i] = st.frags[fragKey{0, i}]
			sum(shards[i])
		}
		for i := range 4 {
			shards[i] = seg[i*F : i*F : (i+1)*F]
		}
		if err := enc.ReconstructData(shards); err != nil {
			b.Fatal(err)
		}
		for i := range 4 {
			sum(shards[i])
		}
	}
}

// The decoder reads a whole file with every fragment good (Fast), or with
// the 4 data fragments of every segment missing (Rebuild). v2 reads come as
// verified slices (Slices) or as whole local fragments.
func BenchmarkDecodeFast_v1(b *testing.B)          { benchDecode(b, types.FormatV1, false) }
func BenchmarkDecodeFast_v2(b *testing.B)          { benchDecode(b, types.FormatV2, false) }
func BenchmarkDecodeFastSlices_v2(b *testing.B)    { benchDecode(b, types.FormatV2, true) }
func BenchmarkDecodeFastOutboard_v2(b *testing.B)  { benchDecodeOutboards(b) }
func BenchmarkDecodeRebuild_v1(b *testing.B)       { benchDecode(b, types.FormatV1, false, 0, 1, 2, 3) }
func BenchmarkDecodeRebuild_v2(b *testing.B)       { benchDecode(b, types.FormatV2, false, 0, 1, 2, 3) }
func BenchmarkDecodeRebuildSlices_v2(b *testing.B) { benchDecode(b, types.FormatV2, true, 0, 1, 2, 3) }

// benchDecodeOutboards reads whole fragments as outboard streams, as nodes
// send them.
func benchDecodeOutboards(b *testing.B) { benchDecodeSource(b, types.FormatV2, 2) }

func benchDecode(b *testing.B, v uint8, slices bool, missing ...int) {
	mode := 0
	if slices {
		mode = 1
	}
	benchDecodeSource(b, v, mode, missing...)
}

// benchDecodeSource: mode 0 whole local fragments, 1 slices, 2 outboard
// streams for whole fragments.
func benchDecodeSource(b *testing.B, v uint8, mode int, missing ...int) {
	res, st := benchStore(v)
	st.resetFaults()
	defer st.resetFaults()
	for seg := range uint64(benchSegments) {
		st.setFault(seg, faultMissing, missing...)
	}
	var src FragmentSource = st
	if mode > 0 {
		src = sliceStore{memStore: st, outboards: mode == 2}
	}
	perCores(b, func(b *testing.B) {
		// Warm the pools, as in benchEncode.
		if err := Decode(context.Background(), io.Discard, &res.Layout, src, 0, int64(res.Layout.Size)); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(res.Layout.Size))
		b.ReportAllocs()
		for b.Loop() {
			if err := Decode(context.Background(), io.Discard, &res.Layout, src, 0, int64(res.Layout.Size)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPrimitiveBLAKE3_8MiB and BenchmarkOutboard_8MiB: what a node pays
// to verify a received fragment, bare hash against hash plus outboard
// (blake3.Sum256 and our bao-based Sum side by side).
func BenchmarkPrimitiveBLAKE3_8MiB(b *testing.B) {
	onOneCore(b)
	f := benchInput()[:F]
	b.SetBytes(F)
	for b.Loop() {
		blake3.Sum256(f)
	}
}

func BenchmarkSumV2_8MiB(b *testing.B) {
	onOneCore(b)
	f := benchInput()[:F]
	b.SetBytes(F)
	for b.Loop() {
		Sum(types.FormatV2, f)
	}
}

func BenchmarkOutboard_8MiB(b *testing.B) {
	onOneCore(b)
	f := benchInput()[:F]
	b.SetBytes(F)
	for b.Loop() {
		if _, _, err := BuildOutboard(bytes.NewReader(f), F); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFileID_10000 is the FID of a file with the maximum segment count.
func BenchmarkFileID_10000(b *testing.B) {
	for _, v := range []uint8{types.FormatV1, types.FormatV2} {
		b.Run(fmt.Sprintf("v%d", v), func(b *testing.B) {
			l := layoutOf(types.MaxSegments, types.EncryptionNone)
			if v == types.FormatV2 {
				l.Version, l.Owner = v, testOwner
			}
			b.ReportAllocs()
			for b.Loop() {
				FileID(l)
			}
		})
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
