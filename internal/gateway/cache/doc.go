// Package cache is a gateway's bounded fragment cache: verified fragments of
// files read recently, as files named by their hash in one folder, evicted
// least recently used first when their total passes the bound. Layouts of the
// cached files are kept beside them so peer gateways can be served.
//
// The cache is not durable state: nothing is fsynced, a crash may leave
// partial temporary files (removed at open) and every fragment is verified
// by whoever reads it, as any other source.
package cache
