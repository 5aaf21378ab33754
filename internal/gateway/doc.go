// Package gateway is the deoss gateway: the HTTP API users upload to and
// download from, upload sessions, the pipeline that encodes, declares and
// distributes files, the scheduler that picks storage nodes, and the download
// path. Its parts live in sub-packages: upload (resumable chunked upload
// sessions), work (the work area of encoded columns) and scheduler (choosing
// storage nodes, scores and the cooldown pool).
package gateway
