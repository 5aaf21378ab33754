// Package auth holds deoss's identities: ed25519 keys, their addresses
// (types.Address), signatures, and key files.
//
// Nouns:
//   - Key: a private key and its address. It signs transactions and requests.
//   - key file: a JSON file, mode 0600, holding one key in plaintext or sealed
//     with a passphrase (Argon2id + AES-256-GCM). It never holds the
//     passphrase.
package auth
