package codec

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/deoss/deoss/internal/types"
)

const PB = types.CipherBlock - types.GCMOverhead // plaintext of a v2 cipher block

func v2Modes() []mode { return modesOf(v2()...) }

func TestV2RoundTrip(t *testing.T) {
	bv2 := types.ProfileV2.BlockSize(types.EncryptionAES256GCM)
	sizes := []int{0, 1, 1000, PB, PB + 1, types.PadUnit + 1, bv2 - 1, bv2, bv2 + 1, S, S + 1, 2*S + 70000}
	if raceEnabled {
		sizes = []int{0, 1000, bv2 + 1, S + 1}
	}
	for _, m := range v2Modes() {
		for _, n := range sizes {
			data := input()[:n]
			res, st := encodeBytes(t, data, m.enc...)
			l := &res.Layout
			if l.Version != types.FormatV2 || l.Owner != testOwner {
				t.Fatalf("%s %d: layout %+v", m.name, n, l)
			}
			if err := l.Validate(); err != nil || res.FID != FileID(l) {
				t.Fatalf("%s %d: %v", m.name, n, err)
			}
			for i := range l.Segments {
				if fl := l.FragmentLen(i); fl%types.ChunkGroup != 0 || fl == 0 || len(st.frags[fragKey{uint64(i), 0}]) != fl {
					t.Fatalf("%s %d: segment %d fragments are %d bytes", m.name, n, i, fl)
				}
			}
			for _, src := range []FragmentSource{st, sliceStore{memStore: st}, sliceStore{memStore: st, outboards: true}} {
				out, err := decodeRange(t, l, src, 0, int64(n), m.dec...)
				if err != nil || !bytes.Equal(out, data) {
					t.Fatalf("%s %d (%T): %v", m.name, n, src, err)
				}
			}
		}
	}
}

// TestV2ShortLastSegment: a small file takes 64 KiB of segment, not 32 MiB.
func TestV2ShortLastSegment(t *testing.T) {
	res, _ := encodeBytes(t, input()[:1000], v2()...)
	if got := res.Layout.PaddedSize(); got != types.PadUnit {
		t.Fatalf("a 1,000-byte file is charged %d bytes, want %d", got, types.PadUnit)
	}
	if got := res.Layout.ColumnBytes(); got != types.PadUnit/4 {
		t.Fatalf("a column of a 1,000-byte file is %d bytes", got)
	}
	res, _ = encodeBytes(t, input()[:S+1], v2()...)
	if got := res.Layout.PaddedSize(); got != S+types.PadUnit {
		t.Fatalf("32 MiB + 1 is charged %d", got)
	}
	v1, _ := encodeBytes(t, input()[:1000])
	if got := v1.Layout.PaddedSize(); got != S {
		t.Fatalf("v1 1,000 bytes charged %d", got)
	}
}

// TestV2RangeTouchesOnlyItsBytes: a range reads about its own length from the
// data fragments that hold it, and a failed fragment costs the same range of
// other fragments, not whole fragments.
func TestV2RangeTouchesOnlyItsBytes(t *testing.T) {
	data := input()[:S+5]
	for _, m := range v2Modes() {
		res, st := encodeBytes(t, data, m.enc...)
		src := sliceStore{memStore: st}
		const off, n = 3*F + 12345, 1 << 20 // inside data fragment 3... and past it
		for _, c := range []struct {
			name  string
			fault []int
		}{{"healthy", nil}, {"fragment 3 corrupt", []int{3}}, {"all data holders missing", []int{0, 1, 2, 3}}} {
			st.resetFaults()
			if c.fault != nil {
				st.setFault(0, faultCorrupt, c.fault...)
				if len(c.fault) > 1 {
					st.setFault(0, faultMissing, c.fault...)
				}
			}
			var bad atomic.Int64
			out, err := decodeRange(t, &res.Layout, src, off, n, append(m.dec, WithBadFragment(func(*FragmentError) { bad.Add(1) }))...)
			if err != nil || !bytes.Equal(out, data[off:off+n]) {
				t.Fatalf("%s %s: %v", m.name, c.name, err)
			}
			var total int64
			for _, b := range st.slicedBytes() {
				total += b
			}
			// Plain: the range; encrypted: its 64 KiB blocks. Each failed
			// needed fragment adds four more fragments' worth of the range.
			limit := int64(n + 2*types.CipherBlock)
			if c.fault != nil {
				limit *= 5
			}
			if total > limit {
				t.Errorf("%s %s: %d bytes asked of sources for a %d-byte range (limit %d)", m.name, c.name, total, n, limit)
			}
			if c.fault != nil && bad.Load() == 0 {
				t.Errorf("%s %s: no bad fragment reported", m.name, c.name)
			}
		}
	}
}

// TestV2BadSlices: every way a source's slice can be wrong is routed around
// while four good ones remain, and fails with a typed error when not; no
// byte is ever written unverified.
func TestV2BadSlices(t *testing.T) {
	// One 1 MiB segment: 256 KiB fragments, so a range spans three.
	data := input()[:1<<20]
	res, st := encodeBytes(t, data, v2()...)
	f4 := int64(res.Layout.FragmentLen(0))
	for _, outboards := range []bool{false, true} {
		src := sliceStore{memStore: st, outboards: outboards}
		for _, f := range []fault{faultCorrupt, faultShort, faultLong, faultMissing} {
			st.resetFaults()
			st.setFault(0, f, 0, 1, 2, 3, 4, 5, 6, 7)
			var mu sync.Mutex
			var errs []error
			out, err := decodeRange(t, &res.Layout, src, 100, 3*f4, WithBadFragment(func(fe *FragmentError) {
				mu.Lock()
				errs = append(errs, fe.Err)
				mu.Unlock()
			}))
			if err != nil || !bytes.Equal(out, data[100:100+3*f4]) {
				t.Fatalf("fault %d with 4 good fragments: %v", f, err)
			}
			want := map[fault]error{faultCorrupt: ErrSliceCorrupt, faultShort: ErrSliceShort, faultLong: ErrSliceLong, faultMissing: errMissing}[f]
			if len(errs) == 0 || !errors.Is(errs[0], want) {
				t.Fatalf("fault %d: reported %v, want %v", f, errs, want)
			}
			st.setFault(0, f, 8)
			out, err = decodeRange(t, &res.Layout, src, 100, 3*f4)
			var se *SegmentError
			if !errors.As(err, &se) || !errors.Is(err, ErrNotEnoughFragments) || len(out) != 0 {
				t.Fatalf("fault %d with 3 good fragments: %v, %d bytes out", f, err, len(out))
			}
		}
	}
}

// TestV2FIDBindsEverything: the owner, the salt and every fragment hash are in
// the FID; the same owner and bytes give the same FID.
func TestV2FIDBindsEverything(t *testing.T) {
	data := input()[:S+5]
	a, _ := encodeBytes(t, data, v2()...)
	b, _ := encodeBytes(t, data, v2()...)
	if a.FID != b.FID {
		t.Fatal("the same owner and bytes give two FIDs")
	}
	other, _ := encodeBytes(t, data, WithFormat(types.FormatV2), WithOwner(types.Address{9}))
	if other.FID == a.FID {
		t.Fatal("another owner's FID equals the first owner's")
	}
	base := a.Layout
	mutate := map[string]func(l *types.Layout){
		"fragment hash": func(l *types.Layout) { l.Segments[1].Fragments[11][0] ^= 1 },
		"segment hash":  func(l *types.Layout) { l.Segments[0].Hash[0] ^= 1 },
		"owner":         func(l *types.Layout) { l.Owner[0] ^= 1 },
		"size":          func(l *types.Layout) { l.Size-- },
		"version":       func(l *types.Layout) { l.Version = types.FormatV1; l.Owner = types.Address{} },
	}
	for name, f := range mutate {
		l := base
		l.Segments = append([]types.SegmentLayout(nil), base.Segments...)
		f(&l)
		if FileID(&l) == a.FID {
			t.Errorf("changing the %s keeps the FID", name)
		}
	}
	enc, _ := encodeBytes(t, data, append(v2(), WithKey(testKey()))...)
	l := enc.Layout
	l.Salt = bytes.Repeat([]byte{8}, types.SaltSize)
	if FileID(&l) == enc.FID {
		t.Error("changing the salt keeps the FID")
	}
	if ObjectID(types.EncryptionNone, testOwner, 5, types.Hash{}) == ObjectID(types.EncryptionNone, testOwner, 6, types.Hash{}) {
		t.Error("OID does not bind the size")
	}
	// v1 and v2 layouts refuse each other's owner rule.
	l = a.Layout
	l.Owner = types.Address{}
	if l.Validate() == nil {
		t.Error("a v2 layout without owner validates")
	}
	l = a.Layout
	l.Version = types.FormatV1
	if l.Validate() == nil {
		t.Error("a v1 layout with an owner validates")
	}
}

// TestV2EncryptedWrongKey: a wrong key fails authentication on a range.
func TestV2EncryptedWrongKey(t *testing.T) {
	data := input()[:3*PB+7]
	res, st := encodeBytes(t, data, append(v2(), WithKey(testKey()))...)
	other, err := DeriveKey([]byte("another cipher"), res.Layout.Salt)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeRange(t, &res.Layout, sliceStore{memStore: st}, PB+5, 10, WithDecodeKey(other))
	if !errors.Is(err, ErrAuthentication) || len(out) != 0 {
		t.Fatalf("wrong key: %v, %d bytes", err, len(out))
	}
	out, err = decodeRange(t, &res.Layout, sliceStore{memStore: st}, PB+5, 2*PB, WithDecodeKey(testKey()))
	if err != nil || !bytes.Equal(out, data[PB+5:3*PB+5]) {
		t.Fatalf("right key: %v", err)
	}
}

func TestV2EncodeNeedsOwner(t *testing.T) {
	if _, err := Encode(context.Background(), bytes.NewReader([]byte("x")), newMemStore()); err == nil {
		t.Fatal("a v2 encode without an owner succeeded")
	}
}
