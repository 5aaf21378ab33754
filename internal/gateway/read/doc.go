// Package read is the gateway's read path: the Reader resolves a FID (on
// chain, pending in this gateway's queue, or pending at a peer gateway,
// whose layout is checked against the FID) and reads any byte range of it
// from the best sources in order: the fragment cache, the work area, peer
// gateways that hold it (nearest first), then any 4 of the 12 storage nodes,
// with hedged requests so that slow sources do not set the pace. Every
// fragment is verified before a byte of it is used; a source that served
// wrong bytes is routed around (and, for a node, charged to its score).
package read
