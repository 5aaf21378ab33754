package codec

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/deoss/deoss/internal/types"
)

const (
	S  = types.SegmentSize
	F  = types.FragmentSize
	B  = types.SegmentSize - types.GCMOverhead // encrypted block
	KB = 1024
)

// input is the pattern bytes, made once: every test input is a prefix of it.
var input = sync.OnceValue(func() []byte { return pattern(3*S + 5) })

// mode is an encryption mode of the round-trip tests.
type mode struct {
	name string
	enc  []EncodeOption
	dec  []DecodeOption
}

// modesOf is plain and encrypted, each encoded with base options first.
func modesOf(base ...EncodeOption) []mode {
	return []mode{
		{"plain", base, nil},
		{"aes", append(append([]EncodeOption(nil), base...), WithKey(testKey())), []DecodeOption{WithDecodeKey(testKey())}},
	}
}

func modes() []mode { return modesOf() }

func TestRoundTripSizes(t *testing.T) {
	sizes := []int{0, 1, 1000, B - 1, B, B + 1, S - 1, S, S + 1, 3*S + 5}
	if raceEnabled {
		sizes = []int{0, 1, B, S + 1}
	}
	for _, m := range modes() {
		for _, n := range sizes {
			data := input()[:n]
			res, st := encodeBytes(t, data, m.enc...)
			if res.Layout.Size != uint64(n) {
				t.Fatalf("%s %d: size %d", m.name, n, res.Layout.Size)
			}
			if err := res.Layout.Validate(); err != nil {
				t.Fatalf("%s %d: %v", m.name, n, err)
			}
			if res.FID != FileID(&res.Layout) {
				t.Fatalf("%s %d: FID is not FileID(layout)", m.name, n)
			}
			out, err := decodeRange(t, &res.Layout, st, 0, int64(n), m.dec...)
			if err != nil {
				t.Fatalf("%s %d: %v", m.name, n, err)
			}
			if !bytes.Equal(out, data) {
				t.Fatalf("%s %d: bytes differ", m.name, n)
			}
		}
	}
}

// TestKnownAndUnknownLength: declaring the size changes nothing but the checks,
// and neither does the number of workers or how the reader splits its reads.
func TestEncodeDeterministic(t *testing.T) {
	data := input()[:S+123]
	want, _ := encodeBytes(t, data)
	for _, opts := range [][]EncodeOption{
		{WithSize(int64(len(data)))},
		{WithWorkers(1)},
		{WithWorkers(3)},
	} {
		got, _ := encodeBytes(t, data, opts...)
		if got.FID != want.FID {
			t.Fatalf("FID differs with options")
		}
	}
	st := newMemStore()
	got, err := Encode(context.Background(), &patternReader{n: int64(len(data))}, st, WithFormat(types.FormatV1))
	if err != nil || got.FID != want.FID {
		t.Fatalf("streamed reader: %v", err)
	}
}

// TestEveryFourOfTwelve decodes a small file from each of the 495 subsets of
// four fragments, and a multi-segment file from sampled subsets.
func TestEveryFourOfTwelve(t *testing.T) {
	data := input()[:1000]
	res, st := encodeBytes(t, data)
	n, tried := 0, 0
	for mask := range 1 << types.TotalShards {
		if popcount(mask) != types.DataShards {
			continue
		}
		n++
		if raceEnabled && n%12 != 0 {
			continue // a deterministic sample of 41; all 495 without -race
		}
		tried++
		st.resetFaults()
		st.setFault(0, faultMissing, absent(mask)...)
		out, err := decodeRange(t, &res.Layout, st, 0, int64(len(data)), WithDecodeWorkers(1))
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("subset %012b: %v", mask, err)
		}
	}
	if n != 495 || tried == 0 {
		t.Fatalf("%d subsets, %d tried", n, tried)
	}
	// Three of twelve is never enough.
	st.resetFaults()
	st.setFault(0, faultMissing, 0, 1, 2, 3, 4, 5, 6, 7, 8)
	if _, err := decodeRange(t, &res.Layout, st, 0, int64(len(data))); !errors.Is(err, ErrNotEnoughFragments) {
		t.Fatalf("3 fragments: %v", err)
	}
}

func TestSampledSubsetsLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, m := range modes() {
		data := input()[:2*S+77]
		res, st := encodeBytes(t, data, m.enc...)
		rounds := 4
		if raceEnabled {
			rounds = 1
		}
		for round := range rounds {
			st.resetFaults()
			for seg := range uint64(len(res.Layout.Segments)) {
				keep := rng.Perm(types.TotalShards)[:types.DataShards]
				st.setFault(seg, faultMissing, absent(maskOf(keep))...)
			}
			out, err := decodeRange(t, &res.Layout, st, 0, int64(len(data)), m.dec...)
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("%s round %d: %v", m.name, round, err)
			}
		}
	}
}

// TestRanges reads ranges that start and end at and around every fragment,
// segment and block boundary.
func TestRanges(t *testing.T) {
	for _, m := range modes() {
		data := input()[:2*S+100]
		res, st := encodeBytes(t, data, m.enc...)
		size := int64(len(data))
		var points []int64
		for k := int64(0); k <= size/F+1; k++ {
			for _, p := range []int64{k * F, k * B} {
				for d := int64(-1); d <= 1; d++ {
					if q := p + d; q >= 0 && q <= size {
						points = append(points, q)
					}
				}
			}
		}
		points = append(points, size-1, size)
		slices.Sort(points)
		points = slices.Compact(points)
		check := func(off, n int64) {
			t.Helper()
			out, err := decodeRange(t, &res.Layout, st, off, n, m.dec...)
			if err != nil {
				t.Fatalf("%s [%d,+%d): %v", m.name, off, n, err)
			}
			if !bytes.Equal(out, data[off:off+n]) {
				t.Fatalf("%s [%d,+%d): bytes differ", m.name, off, n)
			}
		}
		for k, p := range points {
			if raceEnabled && k%3 != 0 {
				continue
			}
			if p >= 1 && p+1 <= size {
				check(p-1, 2)
			}
			if p < size {
				check(p, 1)
			}
		}
		// Long ranges between sampled boundaries.
		step := 5
		if raceEnabled {
			step = 15
		}
		for i := 0; i < len(points); i += step {
			for j := i + 3; j < len(points); j += 7 {
				check(points[i], points[j]-points[i])
			}
		}
		check(0, size)
		for _, r := range [][2]int64{{-1, 1}, {0, size + 1}, {size, 1}, {size + 1, 0}, {0, -1}} {
			if _, err := decodeRange(t, &res.Layout, st, r[0], r[1], m.dec...); !errors.Is(err, ErrRange) {
				t.Errorf("%s range %v: %v, want ErrRange", m.name, r, err)
			}
		}
	}
}

// TestRangeFastPath: a plain range inside one fragment opens only that
// fragment; a range across two opens two; no parity is read while data is good.
func TestRangeFastPath(t *testing.T) {
	data := input()[:S+F]
	res, st := encodeBytes(t, data)
	cases := []struct {
		off, n int64
		want   []fragKey
	}{
		{10, 100, []fragKey{{0, 0}}},
		{F - 1, 2, []fragKey{{0, 0}, {0, 1}}},
		{3*F + 5, F, []fragKey{{0, 3}, {1, 0}}},
		{S + 1, 10, []fragKey{{1, 0}}},
	}
	for _, c := range cases {
		st.resetFaults()
		out, err := decodeRange(t, &res.Layout, st, c.off, c.n)
		if err != nil || !bytes.Equal(out, data[c.off:c.off+c.n]) {
			t.Fatalf("[%d,+%d): %v", c.off, c.n, err)
		}
		got := st.openedCount()
		if len(got) != len(c.want) {
			t.Fatalf("[%d,+%d): opened %v, want %v", c.off, c.n, got, c.want)
		}
		for _, k := range c.want {
			if got[k] != 1 {
				t.Fatalf("[%d,+%d): opened %v, want %v", c.off, c.n, got, c.want)
			}
		}
	}
}

func popcount(m int) int {
	n := 0
	for ; m != 0; m &= m - 1 {
		n++
	}
	return n
}

func maskOf(idxs []int) int {
	m := 0
	for _, i := range idxs {
		m |= 1 << i
	}
	return m
}

// absent lists the fragment indexes not in mask.
func absent(mask int) []int {
	var out []int
	for i := range types.TotalShards {
		if mask&(1<<i) == 0 {
			out = append(out, i)
		}
	}
	return out
}
