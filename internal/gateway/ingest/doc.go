// Package ingest is where a gateway accepts bytes: it derives file keys
// from users' ciphers (a few Argon2id derivations at a time) and seals them
// for sessions that outlive a request, checks that a territory can take a
// file, and encodes a body into the work area (a bounded number of encodes
// at once, each with its share of the cores) before the file joins the
// pipeline queue. The API edges (native uploads now, S3 and tus later) call
// it; it knows nothing of HTTP, and its refusals are the typed errors below,
// which the API maps to statuses once.
package ingest
