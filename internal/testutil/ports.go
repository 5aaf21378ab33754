package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// portBlock is the size of the port ranges tests reserve: enough for a
// network of 4 validators, 3 gateways and 50 nodes, or a `deoss dev`.
const portBlock = 128

// FreePorts returns the first of n (at most 128) consecutive ports free on
// 127.0.0.1, between 20000 and 32000: below the kernel's ephemeral range,
// where outgoing connections would otherwise take them. Daemons of a
// network must know each other's ports before they start (validators name
// their peers in their configuration, nodes register their endpoints), so
// ports are chosen ahead rather than by listening on port 0. So that two
// test processes (go test runs packages side by side) never choose the same
// ports between the probe and the listen, the range is a block reserved with
// a lock file until the test ends.
func FreePorts(t testing.TB, n int) int {
	t.Helper()
	if n > portBlock {
		t.Fatalf("FreePorts: %d ports, at most %d", n, portBlock)
	}
	dir := filepath.Join(os.TempDir(), "deoss-test-ports")
	os.MkdirAll(dir, 0o777)
	blocks := (32000 - 20000) / portBlock
	for range 200 {
		b := rand.IntN(blocks)
		lock, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(b)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			t.Fatal(err)
		}
		if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			lock.Close() // another test holds this block
			continue
		}
		base := 20000 + b*portBlock
		if portsFree(base, n) {
			t.Cleanup(func() { lock.Close() }) // closing releases the lock
			return base
		}
		lock.Close()
	}
	t.Fatal("no free ports")
	return 0
}

func portsFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}
