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

// Held is a slot whose holder lets go of it while it waits on a client
// (Yield) and takes it back after: a client that reads or sends slowly, or
// not at all, keeps nobody else waiting for the slot.
type Held struct {
	ctx     context.Context
	slots   Slots
	release func()
}

// Hold takes a slot (or gives up when ctx ends) as a Held.
func (s Slots) Hold(ctx context.Context) (*Held, error) {
	r, err := s.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	return &Held{ctx: ctx, slots: s, release: r}, nil
}

// Yield runs wait without the slot, then takes it back; the error is
// wait's, else that of taking the slot back.
func (h *Held) Yield(wait func() error) error {
	h.Release()
	err := wait()
	r, aerr := h.slots.Acquire(h.ctx)
	h.release = r
	if err == nil {
		err = aerr
	}
	return err
}

// Release gives the slot back, if held.
func (h *Held) Release() {
	if h.release != nil {
		h.release()
		h.release = nil
	}
}
