// Package gateway is the deoss gateway daemon: its Config (gateway.json),
// and New/Run, which only wire the parts together and join them:
//
//	api/        the HTTP edge: routes, signed requests, one error table
//	ingest/     accepting bytes: keys, encode slots, space checks
//	upload/     resumable chunked upload sessions
//	work/       the work area of encoded columns (with repair)
//	pipeline/   the durable per-file state (processed ... cleaned, deleting)
//	distribute/ declaring, pushing, replacing nodes, deleting
//	scheduler/  choosing storage nodes: scores and the cooldown pool
//	read/       the Reader: cache, work area, peer gateways, nodes
//	cache/      the bounded cache of verified fragments
//
// docs/architecture.md draws the parts, what may import what, and the path
// of one byte from an upload to a node's disk and back.
package gateway
