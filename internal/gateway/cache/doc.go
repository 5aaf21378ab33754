// Package cache is a gateway's bounded fragment cache: verified fragments of
// files read recently, as files named by their hash in one folder, evicted
// least recently used first when their total passes the bound. A fragment
// enters only once the Writer has seen all of it hash to its name. Layouts
// of the cached files are kept beside them (at most MaxLayouts, oldest out
// first) so peer gateways can be served.
//
// The cache is not durable state: nothing is fsynced, a crash may leave
// partial temporary files (removed at open), and readers verify what they
// read from it as from any other source (a disk may rot).
package cache
