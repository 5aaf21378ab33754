// Package types is deoss's vocabulary: the identifiers and constants that every
// part (codec, ledger, node, gateway, client) must agree on. It does no I/O.
//
// Nouns:
//   - Hash: a SHA-256 digest, written as 64 lowercase hex characters. Segment
//     and fragment hashes are Hashes.
//   - FID: a file id, the Merkle commitment to a file's segment hashes bound to
//     its byte length, encryption mode and format version (docs/format.md).
//   - Profile: the geometry of a format version: segment size, data and parity
//     shards, fragment size.
//   - Encryption: how segment bytes relate to the user's bytes (none, or
//     AES-256-GCM with an Argon2id key).
package types
