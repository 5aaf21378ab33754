// Package upload keeps resumable chunked uploads on disk.
//
// A session is one file being uploaded in chunks of a fixed size (the last one
// shorter). Chunks arrive in any order, concurrently, each with its SHA-256;
// the same chunk again is a success, different bytes for a stored chunk a
// conflict. Sessions and their chunks survive a restart and expire after a
// time to live. When every chunk is there, Reader streams the file in order to
// the codec.
package upload
