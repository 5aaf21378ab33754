// Command deoss is the one binary of deoss: validator, gateway, storage node,
// the whole local network (`deoss dev`) and the client commands.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "deoss:", err)
		os.Exit(exitCode(err))
	}
}
