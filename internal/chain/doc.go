// Package chain runs the ledger (internal/ledger) as a CometBFT application and
// talks to it.
//
// Nouns:
//   - App: the ABCI adapter. It persists state in bbolt and commits the
//     block's changes, height and app hash in one transaction, so a restarted
//     validator resumes exactly where it committed.
//   - Validator: one CometBFT node with the App in-process, built from a home
//     folder (config/, data/) and run until its context ends.
//   - testnet: N validator homes for 127.0.0.1 ports (Testnet).
//   - Client: broadcasts signed transactions and waits for their inclusion,
//     and queries state, over the CometBFT RPC.
package chain
