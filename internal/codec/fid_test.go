package codec

import (
	"fmt"
	"testing"

	"github.com/deoss/deoss/internal/types"
)

// layoutOf builds a layout with n synthetic segment hashes.
func layoutOf(n int, enc types.Encryption) *types.Layout {
	l := &types.Layout{Version: types.FormatV1, Encryption: enc, Size: uint64(n) * uint64(types.ProfileV1.BlockSize(enc))}
	if enc != types.EncryptionNone {
		l.Salt = make([]byte, types.SaltSize)
	}
	for i := range n {
		l.Segments = append(l.Segments, types.SegmentLayout{Hash: types.Sum([]byte(fmt.Sprint("segment", i)))})
	}
	return l
}

func TestFileIDBindsEverything(t *testing.T) {
	base := layoutOf(3, types.EncryptionNone)
	fid := FileID(base)
	mutants := map[string]func(l *types.Layout){
		"size":       func(l *types.Layout) { l.Size-- },
		"version":    func(l *types.Layout) { l.Version++ },
		"encryption": func(l *types.Layout) { l.Encryption = types.EncryptionAES256GCM },
		"order":      func(l *types.Layout) { l.Segments[0], l.Segments[1] = l.Segments[1], l.Segments[0] },
		"hash":       func(l *types.Layout) { l.Segments[2].Hash[0] ^= 1 },
		"extra":      func(l *types.Layout) { l.Segments = append(l.Segments, l.Segments[2]) },
	}
	for name, mutate := range mutants {
		l := *base
		l.Segments = append([]types.SegmentLayout(nil), base.Segments...)
		mutate(&l)
		if FileID(&l) == fid {
			t.Errorf("%s: FID unchanged", name)
		}
	}
	// Fragment hashes are not part of the FID: the chain records them beside it.
	l := *base
	l.Segments = append([]types.SegmentLayout(nil), base.Segments...)
	l.Segments[0].Fragments[3][0] ^= 1
	if FileID(&l) != fid {
		t.Error("FID depends on fragment hashes")
	}
}

func TestEmptyFileFID(t *testing.T) {
	res, st := encodeBytes(t, nil)
	if len(res.Layout.Segments) != 0 || res.Layout.Size != 0 || len(st.frags) != 0 {
		t.Fatalf("empty file: %+v", res.Layout)
	}
	if res.FID != FileID(&res.Layout) {
		t.Fatal("FID differs from FileID")
	}
	out, err := decodeRange(t, &res.Layout, st, 0, 0)
	if err != nil || len(out) != 0 {
		t.Fatalf("decode empty: %q %v", out, err)
	}
}
