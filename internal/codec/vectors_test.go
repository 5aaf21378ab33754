package codec

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"testing"

	"github.com/deoss/deoss/internal/types"
)

const sharedVectors = "../../../shared/vectors/cess-sdk-vectors.json"

type vectorFile struct {
	Cases []struct {
		Size     int `json:"size"`
		Segments []struct {
			SegmentHash    string   `json:"segment_hash"`
			FragmentHashes []string `json:"fragment_hashes"`
		} `json:"segments"`
		ReferenceFID string `json:"reference_fid"`
	} `json:"cases"`
}

// TestCESSVectors checks every segment and fragment hash of the public CESS SDK's
// processing of unencrypted input.
func TestCESSVectors(t *testing.T) {
	raw, err := os.ReadFile(sharedVectors)
	if err != nil {
		t.Fatalf("the shared vectors are part of the contract: %v", err)
	}
	var vf vectorFile
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatal(err)
	}
	if len(vf.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range vf.Cases {
		res, _ := encodeBytes(t, pattern(c.Size))
		l := res.Layout
		if len(l.Segments) != len(c.Segments) {
			t.Fatalf("size %d: %d segments, want %d", c.Size, len(l.Segments), len(c.Segments))
		}
		for i, s := range c.Segments {
			if got := l.Segments[i].Hash.String(); got != s.SegmentHash {
				t.Errorf("size %d segment %d: hash %s, want %s", c.Size, i, got, s.SegmentHash)
			}
			for j, fh := range s.FragmentHashes {
				if got := l.Segments[i].Fragments[j].String(); got != fh {
					t.Errorf("size %d segment %d fragment %d: %s, want %s", c.Size, i, j, got, fh)
				}
			}
		}
		if got := referenceFID(l.Segments); got.String() != c.ReferenceFID {
			t.Errorf("size %d: reference FID %s, want %s", c.Size, got, c.ReferenceFID)
		}
	}
}

// referenceFID is the reference gateway's construction as the vectors describe
// it: a plain binary Merkle tree over segment hashes, an odd node paired with
// itself. It exists here only to show why ours differs.
func referenceFID(segs []types.SegmentLayout) types.Hash {
	level := make([]types.Hash, len(segs))
	for i, s := range segs {
		level[i] = s.Hash
	}
	for {
		var next []types.Hash
		for i := 0; i < len(level); i += 2 {
			r := level[i]
			if i+1 < len(level) {
				r = level[i+1]
			}
			next = append(next, sha256.Sum256(append(level[i][:], r[:]...)))
		}
		if len(next) == 1 {
			return next[0]
		}
		level = next
	}
}

// TestTrailingZerosFlaw: the reference gives a file and the same file with
// extra zero bytes one id; ours does not.
func TestTrailingZerosFlaw(t *testing.T) {
	a, _ := encodeBytes(t, []byte("hello"))
	b, _ := encodeBytes(t, []byte("hello\x00\x00"))
	if referenceFID(a.Layout.Segments) != referenceFID(b.Layout.Segments) {
		t.Fatal("expected the reference construction to collide")
	}
	if a.FID == b.FID {
		t.Fatal("FID collides for trailing zero bytes")
	}
}
