// Package tlsutil is deoss's TLS plumbing: server and client configurations
// from PEM files, and the local certificate authority that `deoss dev --tls`
// makes, so that every listener of a dev network speaks TLS that its clients
// verify.
package tlsutil
