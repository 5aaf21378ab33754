// Package node is the storage node: it keeps fragments of the columns the
// chain assigned to it, serves them, reports complete columns to the chain and
// collects fragments nobody references any more.
//
// Nouns:
//   - fragment: 8 MiB of erasure-coded data named by its SHA-256 (store).
//   - ref: one use of a fragment, segment s of column c of file f. Identical
//     fragments (all-zero ones, say) are stored once and counted per ref.
//   - column: fragment c of every segment of a file; the node reports it to
//     the chain once it holds all of them.
package node
