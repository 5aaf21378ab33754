// Package codec turns a stream of bytes into erasure-coded, hashed fragments and
// back, exactly as docs/format.md specifies.
//
// Nouns:
//   - format: v2 for new files (BLAKE3, Bao outboards, the FID that binds
//     owner, salt and fragment hashes); v1 (SHA-256) stays readable.
//   - segment: 32 MiB of a file; the last one is padded to 32 MiB in v1, to a
//     multiple of 64 KiB in v2. Encrypted v1 segments seal 32 MiB - 16 B of
//     the user's bytes at once; v2 seals 64 KiB blocks (65,520 B each).
//   - fragment: one of the 12 Reed-Solomon shards of a segment (4 data, 8
//     parity, a quarter of the segment each); any 4 rebuild the segment, and
//     in v2 any 4 fragments' bytes [a, b) rebuild the others' [a, b).
//   - column j: fragment j of every segment, the unit a storage node keeps.
//   - layout: a file's size, format, owner (v2), salt and hashes
//     (types.Layout).
//   - FID: the file id (FileID); OID: a packed object's (ObjectID).
//   - outboard, slice, proof chunk: the Bao tree of a v2 fragment kept by
//     its node, a verifiable range of the fragment, and a 1 KiB chunk with
//     its path to the root (slice.go, tree.go).
//
// Encode streams an io.Reader through a bounded pipeline that encodes segments
// on several cores and hands them to a Sink in order. Decode streams a file, or a
// byte range of it, from any 4 fragments per segment (v2: only the ranges of
// them the bytes need), verifying every byte against the fragment hashes
// before it is used. Memory is bounded by the segments in flight in both
// directions, never by the file size.
package codec
