package testutil

import (
	"testing"
	"time"
)

func TestEventually(t *testing.T) {
	n := 0
	if !Eventually(time.Minute, time.Millisecond, func() bool { n++; return n == 3 }) || n != 3 {
		t.Fatalf("held after %d checks", n)
	}
	if Eventually(10*time.Millisecond, time.Millisecond, func() bool { return false }) {
		t.Fatal("a condition that never holds held")
	}
}
