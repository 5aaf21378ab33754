// Package backoff is the one retry schedule of deoss: exponential waits
// between a base and a cap, with jitter where many clients retry at once.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is a retry schedule: the wait before retry n (0-based) is Base·2^n,
// at most Max, less up to Jitter of it at random.
type Policy struct {
	Base, Max time.Duration
	// Jitter is the fraction (0..1) of a wait taken off at random, so that
	// retries of many clients spread out.
	Jitter float64
}

// Delay is the wait before retry n.
func (p Policy) Delay(n int) time.Duration {
	d := p.Base
	for i := 0; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	if p.Jitter > 0 {
		d -= time.Duration(rand.Float64() * p.Jitter * float64(d))
	}
	return d
}

// Sleep waits d or until ctx ends (then it returns ctx's error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
