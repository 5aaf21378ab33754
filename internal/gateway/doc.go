// Package gateway is the deoss gateway: the HTTP API users upload to and
// download from, upload sessions, the pipeline that encodes, declares and
// distributes files, the scheduler that picks storage nodes, and the download
// path (Reader: the fragment cache, the work area, peer gateways, then the
// nodes, with hedged 4-of-12 reads). Its parts live in sub-packages: upload
// (resumable chunked upload sessions), work (the work area of encoded
// columns, with repair), pipeline (the durable per-file state), scheduler
// (choosing storage nodes, scores and the cooldown pool) and cache (the
// bounded fragment cache).
package gateway
