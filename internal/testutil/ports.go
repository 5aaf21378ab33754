package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
)

// FreePorts returns the first of n consecutive ports free on 127.0.0.1, between
// 20000 and 32000: below the kernel's ephemeral range, where outgoing
// connections would otherwise take them.
func FreePorts(t testing.TB, n int) int {
	t.Helper()
	for range 100 {
		base := 20000 + rand.IntN(12000-n)
		free := true
		for p := base; p < base+n && free; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				free = false
				continue
			}
			l.Close()
		}
		if free {
			return base
		}
	}
	t.Fatal("no free ports")
	return 0
}
