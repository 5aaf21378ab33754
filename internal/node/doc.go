// Package node is the storage node: it keeps fragments of the columns the
// chain assigned to it, serves them, reports complete columns to the chain,
// answers the chain's challenges with proofs (prover), re-reads what it
// holds slowly and reports what it lost (scrubber), takes restoral orders
// and rebuilds lost columns from 4 verified fragments of other holders
// (repairer), and collects fragments nobody references any more.
//
// Nouns:
//   - fragment: up to 8 MiB of erasure-coded data named by its hash (v1
//     SHA-256, v2 BLAKE3 with a Bao outboard beside it) (store).
//   - challenge: the chain's demand for one 1 KiB chunk of one fragment,
//     answered with its Bao slice before a deadline.
//   - ref: one use of a fragment, segment s of column c of file f. Identical
//     fragments (all-zero ones, say) are stored once and counted per ref.
//   - column: fragment c of every segment of a file; the node reports it to
//     the chain once it holds all of them.
package node
