// Package store keeps fragments: content-addressed, durable before they are
// acknowledged, reference-counted, within a capacity.
//
// Store is the contract; Disk is the real implementation (files in sharded
// folders plus a bbolt index), Memory the fake for callers' tests. Both pass
// the conformance suite in storetest. Slow, Corrupt and Full wrap any Store to
// inject faults.
package store
