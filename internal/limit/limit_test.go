package limit

import (
	"context"
	"testing"
)

func TestSlots(t *testing.T) {
	s := NewSlots(1)
	release, err := s.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Acquire(ctx); err != context.Canceled {
		t.Fatalf("a second holder got in: %v", err)
	}
	release()
	if r, err := s.Acquire(ctx); err == nil {
		r() // a free slot may still be taken with an ended context
	}
}
