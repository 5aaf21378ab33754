// Package limit holds what bounds concurrent work: slots that a request
// waits for (encodes, downloads, key derivations), given up when its
// context ends.
package limit

import "context"

// Slots is a counting semaphore: at most its capacity holders at once.
type Slots chan struct{}

// NewSlots makes n slots (at least 1).
func NewSlots(n int) Slots { return make(Slots, max(n, 1)) }

// Acquire takes a slot, or gives up when ctx ends; release gives it back.
func (s Slots) Acquire(ctx context.Context) (release func(), err error) {
	select {
	case s <- struct{}{}:
		return func() { <-s }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
