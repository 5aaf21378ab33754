// Package ledger is deoss's chain state machine: accounts and balances,
// territories (bought storage space), gateways and their authorizations,
// storage nodes, and files with their storage orders.
//
// It is deterministic: no clock, goroutines or I/O inside. Block height and
// time come in from the consensus engine (internal/chain runs it under
// CometBFT); state lives behind the KV interface, and every write of a block
// stays in an overlay until Commit hands the sorted changes and the new app
// hash to the caller. Tests drive it directly, one block at a time
// (harness_test.go; the scenarios are in ledger_test.go).
//
// Nouns:
//   - Tx: a signed envelope (chain id, sender, nonce, one Msg).
//   - territory: named space a user bought (GiB x days); files are charged to
//     one of the owner's territories as segments x 32 MiB.
//   - order: a declared file not yet stored; it locks space and expires at its
//     deadline unless all 12 columns are reported.
//   - column j: fragment j of every segment of a file, kept by one node.
//   - health: a stored file's healthy columns (node active, not lost); an
//     unhealthy column is a restoral order that another node claims,
//     rebuilds and completes (repair.go).
package ledger
