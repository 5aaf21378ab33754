// Package gateway is the deoss gateway: the HTTP API users upload to and
// download from, upload sessions, the pipeline that encodes, declares and
// distributes files, the scheduler that picks storage nodes, and the download
// path. Its parts live in sub-packages; upload holds the resumable chunked
// upload sessions.
package gateway
