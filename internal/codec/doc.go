// Package codec turns a stream of bytes into erasure-coded, hashed fragments and
// back, exactly as docs/format.md specifies.
//
// Nouns:
//   - segment: 32 MiB of a file (the last one zero-padded); encrypted files put
//     32 MiB - 16 B of the user's bytes in a segment and seal it with AES-GCM.
//   - fragment: one of the 12 Reed-Solomon shards of a segment (4 data, 8
//     parity, 8 MiB each); any 4 rebuild the segment. Data fragment i is bytes
//     [i*8 MiB, (i+1)*8 MiB) of the segment.
//   - column j: fragment j of every segment, the unit a storage node keeps.
//   - layout: a file's size, format, encryption salt and hashes (types.Layout).
//   - FID: the file id, a Merkle commitment to the segment hashes (FileID), with
//     inclusion proofs for single segments (Prove, Proof.Verify).
//
// Encode streams an io.Reader through a bounded pipeline that encodes segments
// on several cores and hands them to a Sink in order. Decode streams a file, or a
// byte range of it, from any 4 fragments per segment, verifying every fragment
// against its hash before a byte of it is used. Memory is bounded by the
// segments in flight in both directions, never by the file size.
package codec
