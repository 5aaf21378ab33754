package codec

import (
	"bytes"
	"errors"
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

func TestProofs(t *testing.T) {
	for _, n := range []int{1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 33} {
		for _, enc := range []types.Encryption{types.EncryptionNone, types.EncryptionAES256GCM} {
			l := layoutOf(n, enc)
			fid := FileID(l)
			for i := range n {
				p, err := Prove(l, uint64(i))
				if err != nil {
					t.Fatal(err)
				}
				b, err := p.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				var q Proof
				if err := q.UnmarshalBinary(b); err != nil {
					t.Fatalf("n=%d i=%d: %v", n, i, err)
				}
				if err := q.Verify(fid, l.Segments[i].Hash); err != nil {
					t.Fatalf("n=%d i=%d: %v", n, i, err)
				}
				// Wrong segment, wrong index, wrong FID, tampered path: refused.
				other := l.Segments[(i+1)%n].Hash
				if n > 1 {
					if err := q.Verify(fid, other); !errors.Is(err, ErrBadProof) {
						t.Errorf("n=%d i=%d: other segment accepted", n, i)
					}
					q2 := q
					q2.Index = uint64((i + 1) % n)
					if err := q2.Verify(fid, l.Segments[i].Hash); !errors.Is(err, ErrBadProof) {
						t.Errorf("n=%d i=%d: moved index accepted", n, i)
					}
					q3 := q
					q3.Path = append([]types.Hash(nil), q.Path...)
					q3.Path[0][5] ^= 1
					if err := q3.Verify(fid, l.Segments[i].Hash); !errors.Is(err, ErrBadProof) {
						t.Errorf("n=%d i=%d: tampered path accepted", n, i)
					}
				}
				bad := fid
				bad[0] ^= 1
				if err := q.Verify(bad, l.Segments[i].Hash); !errors.Is(err, ErrBadProof) {
					t.Errorf("n=%d i=%d: wrong fid accepted", n, i)
				}
				q4 := q
				q4.Path = append(append([]types.Hash(nil), q.Path...), types.Hash{})
				if err := q4.Verify(fid, l.Segments[i].Hash); !errors.Is(err, ErrBadProof) {
					t.Errorf("n=%d i=%d: long path accepted", n, i)
				}
			}
		}
	}
}

func TestProofDecodeRejects(t *testing.T) {
	l := layoutOf(5, types.EncryptionNone)
	p, _ := Prove(l, 2)
	good, _ := p.MarshalBinary()
	cases := map[string][]byte{
		"empty":     nil,
		"short":     good[:19],
		"version":   append([]byte{9}, good[1:]...),
		"truncated": good[:len(good)-1],
		"trailing":  append(bytes.Clone(good), 0),
		"count":     append(append(bytes.Clone(good[:19]), 64), good[20:]...),
	}
	for name, b := range cases {
		var q Proof
		if err := q.UnmarshalBinary(b); !errors.Is(err, ErrBadProof) {
			t.Errorf("%s: %v, want ErrBadProof", name, err)
		}
	}
	if _, err := Prove(l, 5); !errors.Is(err, ErrBadProof) {
		t.Errorf("out of range: %v", err)
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
