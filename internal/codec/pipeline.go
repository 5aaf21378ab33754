package codec

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// stage is one item of an ordered pipeline.
type stage[T any] struct {
	v    T
	done chan struct{}
	err  error
}

// ordered runs produce on one goroutine, work on up to workers goroutines, and
// deliver on one goroutine in the order produce made the items. A work error
// stays with its item: every item before it is still delivered, then ordered
// returns the error (a reader gets every good segment before a lost one);
// production stops at the first work error. produce
// returns ok=false when there is nothing more. finish is called exactly once for
// every produced item, after it was delivered or abandoned, so that buffers go
// back to their pools whatever fails. The number of items in flight is bounded
// by what produce may acquire (its limiter) and by the channel capacities.
func ordered[T any](
	ctx context.Context,
	workers int,
	produce func(ctx context.Context) (v T, ok bool, err error),
	work func(ctx context.Context, v T) error,
	deliver func(v T) error,
	finish func(v T),
) error {
	g, ctx := errgroup.WithContext(ctx)
	jobs := make(chan *stage[T], workers)
	queue := make(chan *stage[T], workers+1)
	var failed atomic.Bool // a work error: produce nothing more

	g.Go(func() error {
		defer close(queue)
		defer close(jobs)
		for !failed.Load() {
			v, ok, err := produce(ctx)
			if err != nil || !ok {
				return err
			}
			s := &stage[T]{v: v, done: make(chan struct{})}
			// queue owns the item from here: whatever happens, the drain
			// below or the deliverer calls finish on it.
			select {
			case queue <- s:
			case <-ctx.Done():
				finish(v)
				return ctx.Err()
			}
			select {
			case jobs <- s:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for range workers {
		g.Go(func() error {
			for s := range jobs {
				if s.err = work(ctx, s.v); s.err != nil {
					failed.Store(true)
				}
				close(s.done)
			}
			return nil
		})
	}
	// held is the item the deliverer took from queue but neither delivered nor
	// finished when it stopped; it is finished after Wait with the rest.
	var held *stage[T]
	g.Go(func() error {
		for s := range queue {
			select {
			case <-s.done:
			case <-ctx.Done():
				held = s
				return ctx.Err()
			}
			if s.err != nil {
				finish(s.v)
				return s.err
			}
			err := deliver(s.v)
			finish(s.v)
			if err != nil {
				return err
			}
		}
		return nil
	})
	err := g.Wait()
	// Every goroutine has returned, so no worker touches an item any more.
	if held != nil {
		finish(held.v)
	}
	for s := range queue {
		finish(s.v)
	}
	return err
}
