// Package tus serves tus 1.0 resumable uploads (creation, creation with
// upload, deferred length, termination, concatenation) with tusd's
// handler over a DataStore of our own: each upload is a stream session of
// the gateway's session store (upload.Sessions, shared with native chunked
// uploads and S3 multipart), so its bytes count against the territory
// while they come, survive a gateway restart, and go to the codec (or the
// pack buffer) when the last byte is in. A final upload of concatenated
// partials reads their bytes in order without copying them.
//
// The caller authenticates each request and puts its account in the
// context (WithRequest); tus itself knows nothing of signatures. The file's
// id is sent in a Deoss-Fid header when the upload finishes, and kept in
// the upload's metadata ("fid") for a client that asks again.
package tus
