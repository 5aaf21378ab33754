package ledger

import (
	"bytes"
	"testing"

	"lukechampine.com/blake3"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/types"
)

// proofFixture is an 8 MiB fragment (the v2 maximum), its hash and the
// proof of chunk 4321.
func proofFixture(b *testing.B) (frag []byte, root types.Hash, proof []byte) {
	frag = bytes.Repeat([]byte("deoss proof bench "), types.FragmentSize/18+1)[:types.FragmentSize]
	ob, root := codec.Outboard(frag)
	proof, err := codec.SliceChunk(bytes.NewReader(frag), ob, 4321)
	if err != nil {
		b.Fatal(err)
	}
	return frag, root, proof
}

// BenchmarkPrimitiveChunkHash is the bare primitive a proof check is made
// of: BLAKE3 of one 1 KiB chunk.
func BenchmarkPrimitiveChunkHash(b *testing.B) {
	frag, _, _ := proofFixture(b)
	chunk := frag[4321*types.ProofChunk : 4322*types.ProofChunk]
	b.ReportAllocs()
	for b.Loop() {
		blake3.Sum256(chunk)
	}
}

// BenchmarkVerifyProof is the ledger's check of one proof: the Bao slice of
// a 1 KiB chunk of an 8 MiB fragment against the fragment hash.
func BenchmarkVerifyProof(b *testing.B) {
	frag, root, proof := proofFixture(b)
	tx := Tx{ChainID: "deoss-network", Nonce: 1 << 20, Msg: Msg{SubmitProof: &SubmitProof{Segment: 9999, Column: 11, Slice: proof}}}
	tx.Sign(testKey(b))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := codec.VerifyChunk(proof, int64(len(frag)), 4321, root); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(proof)), "proof-bytes")
	b.ReportMetric(float64(len(tx.Encode())), "tx-bytes")
}

// BenchmarkProveChunk is the node's side: the slice from the fragment and
// its outboard (held in memory here; a node reads 16 KiB and the outboard).
func BenchmarkProveChunk(b *testing.B) {
	frag, _, _ := proofFixture(b)
	ob, _ := codec.Outboard(frag)
	r := bytes.NewReader(frag)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := codec.SliceChunk(r, ob, 4321); err != nil {
			b.Fatal(err)
		}
	}
}

func testKey(b *testing.B) *auth.Key {
	k, err := auth.FromSeed(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	return k
}

// BenchmarkDecodeProofTx is what every validator does to a proof before the
// check itself: decode the canonical CBOR and verify the ed25519 signature.
func BenchmarkDecodeProofTx(b *testing.B) {
	_, _, proof := proofFixture(b)
	tx := Tx{ChainID: "deoss-network", Nonce: 1 << 20, Msg: Msg{SubmitProof: &SubmitProof{Segment: 9999, Column: 11, Slice: proof}}}
	tx.Sign(testKey(b))
	raw := tx.Encode()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeTx(raw); err != nil {
			b.Fatal(err)
		}
	}
}
