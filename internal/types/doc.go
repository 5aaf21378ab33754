// Package types is deoss's vocabulary: the identifiers and constants that every
// part (codec, ledger, node, gateway, client) must agree on. It does no I/O.
//
// Nouns:
//   - Hash: a 32-byte digest (SHA-256 in format v1, BLAKE3 in v2), written as
//     64 lowercase hex characters. Segment and fragment hashes are Hashes.
//   - FID: a file id, the Merkle commitment to a file's layout (v1: segment
//     hashes, length, encryption, version; v2 also the owner, salt and every
//     fragment hash: docs/format.md).
//   - Profile: the geometry of a format version: segment size, data and parity
//     shards, fragment size, the last segment's padding, the cipher block.
//   - Encryption: how segment bytes relate to the user's bytes (none, or
//     AES-256-GCM with an Argon2id key).
package types
