package codec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/deoss/deoss/internal/types"
)

// fuzzFile is a small two-segment-capable file, encoded once for the decoder
// fuzzer: 8 MiB fragments are too large for a fuzzer to write, so it mutates
// the layout, the fragments' faults and the range instead, and checks that
// Decode either fails or returns exactly the right bytes.
var fuzzFile = sync.OnceValues(func() (*Result, *memStore) {
	data := pattern(5000)
	st := newMemStore()
	res, err := Encode(context.Background(), bytes.NewReader(data), st, WithFormat(types.FormatV1))
	if err != nil {
		panic(err)
	}
	return res, st
})

func FuzzDecode(f *testing.F) {
	f.Add(uint64(5000), uint8(1), uint8(0), uint16(0), uint16(0), uint8(0), uint8(0), int64(0), int64(5000))
	f.Add(uint64(5000), uint8(1), uint8(0), uint16(0x00f), uint16(0x010), uint8(1), uint8(7), int64(10), int64(100))
	f.Add(uint64(5001), uint8(1), uint8(0), uint16(0xff0), uint16(0), uint8(0), uint8(0), int64(0), int64(1))
	f.Add(uint64(5000), uint8(2), uint8(1), uint16(0), uint16(0), uint8(2), uint8(3), int64(4999), int64(1))
	f.Add(uint64(0), uint8(1), uint8(0), uint16(0xfff), uint16(0xfff), uint8(3), uint8(255), int64(-1), int64(-1))
	f.Fuzz(func(t *testing.T, size uint64, version, enc uint8, missing, corrupt uint16, hashFrag, hashByte uint8, off, n int64) {
		res, st := fuzzFile()
		// The true bytes of segment 0: the data, then zero padding. A layout
		// may lie about the size (Decode checks fragments, the caller checks
		// the FID), but no lie makes Decode write anything else.
		want := append(pattern(5000), make([]byte, 1000)...)
		l := res.Layout
		l.Size, l.Version, l.Encryption = size, version, types.Encryption(enc)
		l.Segments = append([]types.SegmentLayout(nil), res.Layout.Segments...)
		tampered := hashByte != 0
		if tampered {
			l.Segments[0].Fragments[int(hashFrag)%types.TotalShards][hashByte%32] ^= hashByte
		}
		src := &faultySource{st: st, missing: missing, corrupt: corrupt}
		var out bytes.Buffer
		err := Decode(context.Background(), &out, &l, src, off, n, WithDecodeWorkers(1))
		if out.Len() > 0 {
			if off < 0 || off+int64(out.Len()) > int64(len(want)) || !bytes.Equal(out.Bytes(), want[off:off+int64(out.Len())]) {
				t.Fatalf("wrong bytes for size=%d off=%d n=%d: %d written", size, off, n, out.Len())
			}
		}
		if err == nil && n > 0 && int64(out.Len()) != n {
			t.Fatalf("no error but %d of %d bytes", out.Len(), n)
		}
		if err != nil && !knownDecodeError(err) {
			t.Fatalf("untyped error: %v", err)
		}
	})
}

func knownDecodeError(err error) bool {
	for _, e := range []error{ErrRange, ErrNotEnoughFragments, types.ErrInvalidLayout, ErrKeyRequired, ErrAuthentication} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// faultySource serves fuzzFile's fragments with bit masks of missing and
// corrupt fragment indexes.
type faultySource struct {
	st               *memStore
	missing, corrupt uint16
}

func (s *faultySource) OpenFragment(ctx context.Context, seg uint64, idx int) (rc readCloser, err error) {
	if s.missing&(1<<idx) != 0 {
		return nil, errMissing
	}
	rc, err = s.st.OpenFragment(ctx, seg, idx)
	if err != nil || s.corrupt&(1<<idx) == 0 {
		return rc, err
	}
	b := bytes.Clone(s.st.frags[fragKey{seg, idx}])
	b[idx*1000%len(b)] ^= 0x80
	return nopCloser{bytes.NewReader(b)}, nil
}

// FuzzVerifySlice: whatever a source sends as a slice, VerifySlice returns
// a typed error or exactly the fragment's bytes; it never panics and never
// claims a wrong byte verified.
func FuzzVerifySlice(f *testing.F) {
	frag := pattern(5 * types.ChunkGroup)
	ob, root := Outboard(frag)
	var good bytes.Buffer
	WriteSlice(&good, bytes.NewReader(frag), ob, 20000, 30000)
	f.Add(good.Bytes(), int64(20000), int64(30000))
	f.Add(good.Bytes()[:100], int64(20000), int64(30000))
	f.Add([]byte{}, int64(0), int64(1))
	f.Fuzz(func(t *testing.T, slice []byte, off, n int64) {
		if n <= 0 || n > int64(len(frag)) {
			n = 1
		}
		dst := make([]byte, n)
		err := VerifySlice(bytes.NewReader(slice), dst, int64(len(frag)), off, root)
		if err != nil {
			for _, want := range []error{ErrSliceCorrupt, ErrSliceShort, ErrSliceLong, ErrSliceRange} {
				if errors.Is(err, want) {
					return
				}
			}
			t.Fatalf("untyped error %v", err)
		}
		if !bytes.Equal(dst, frag[off:off+n]) {
			t.Fatalf("verified bytes at %d differ from the fragment's", off)
		}
	})
}

// FuzzLayoutV2: a layout from the wire (JSON, as a peer or the chain sends
// it) either fails Validate or has a FID; only the layout it was made from
// has the original's FID.
func FuzzLayoutV2(f *testing.F) {
	res, _ := encodeBytes(f, pattern(70000), v2()...)
	want, _ := json.Marshal(res.Layout)
	f.Add(want)
	f.Add([]byte(`{"Version":2,"Size":1}`))
	f.Add([]byte(`{"Version":2,"Size":0,"Owner":"deoss1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var l types.Layout
		if json.Unmarshal(b, &l) != nil || l.Validate() != nil {
			return
		}
		for i := range l.Segments {
			l.SegmentLen(i)
			l.FragmentLen(i)
		}
		l.PaddedSize()
		if FileID(&l) == res.FID && !l.Equal(&res.Layout) {
			t.Fatal("another layout has the original's FID")
		}
	})
}
