// Package s3 is the gateway's S3 endpoint: our own layer on net/http over
// the ledger's object index (buckets bound to territories, keys naming
// files) and the gateway's ingest and read paths (docs/s3.md).
//
// Nouns:
//   - credential: an access key and its secret, issued to an account at
//     this gateway (Keys); the secret is kept sealed under the gateway's
//     key and every request is checked by sigv4.
//   - journal: the key changes this gateway acknowledged and the chain has
//     not taken yet (pipeline.KeyOp). Reads and listings at this gateway
//     lay it over the chain's index (read-after-write here; other
//     gateways see a change once its block is in); Publisher sends it to
//     the chain in order, key by key.
package s3
