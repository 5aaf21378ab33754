// Package sdk is the Go client of a deoss gateway: it signs requests with
// the user's key, uploads files in resumable chunked sessions (several
// chunks in flight, retries with backoff, a local state file so that a
// re-run continues where the last one stopped), downloads whole files or
// ranges (resuming a partial output), and reads metadata, locations, file
// lists and node scores. Errors from the gateway are *Error values with the
// HTTP status and the gateway's error code.
//
// A client is made from a gateway URL and a key file:
//
//	c, err := sdk.New("http://127.0.0.1:8080", "/home/me/.deoss/key.json")
//	fid, err := c.Upload(ctx, "photo.jpg", sdk.UploadOptions{Territory: "home"})
//	err = c.DownloadFile(ctx, fid, "copy.jpg", sdk.DownloadOptions{})
package sdk
