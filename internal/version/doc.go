// Package version names this build of deoss: the release version and, when the
// binary was built from a git checkout, the commit. Every daemon reports it
// (GET /version, node info) so operators can tell what is running.
package version
