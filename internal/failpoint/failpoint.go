package failpoint

import (
	"fmt"
	"os"
)

// ExitCode is the status a process ends with at its failpoint.
const ExitCode = 86

// The points (constants, so that a test and the code cannot spell one two
// ways).
const (
	PackSealed   = "pack-sealed"   // a log sealed, not yet accepted as a file
	PackAccepted = "pack-accepted" // the pack accepted, not yet declared
	PackDeclared = "pack-declared" // the pack declared, its log not yet dropped
)

// Env is the environment variable that arms a point.
const Env = "DEOSS_FAILPOINT"

var armed = os.Getenv(Env)

// Hit ends the process if name is the armed point.
func Hit(name string) {
	if armed != "" && armed == name {
		fmt.Fprintf(os.Stderr, "failpoint %s: exiting\n", name)
		os.Exit(ExitCode)
	}
}
