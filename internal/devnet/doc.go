// Package devnet assembles a whole deoss network on one host: validators,
// storage nodes and gateways, each with its home under one folder and its
// port from one base, registered on the chain, and funded accounts with
// territories and authorizations. `deoss dev` runs it in one process; the
// whole-system tests and the CLI's process tests run each part as a process
// of its own, through the same assembly (a Runner says how parts start).
//
// The steps are idempotent: assembling again over an existing folder
// reuses its homes and registers nothing twice.
package devnet
