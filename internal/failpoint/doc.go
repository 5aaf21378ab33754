// Package failpoint ends the process at named points, for the crash tests
// that cannot time a kill into a window a few microseconds wide (between a
// seal and its acceptance, or a declaration and the log's drop).
//
// DEOSS_FAILPOINT names one point; the process exits at once when it
// reaches it, without deferred work or flushes, as a kill would. Unset,
// Hit costs one comparison.
package failpoint
