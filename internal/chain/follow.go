package chain

import (
	"context"
	"strings"
	"time"

	"github.com/deoss/deoss/internal/ledger"
)

// BlockEvents are the ledger events of one committed block, in order: those
// of its successful transactions, then those of its end (order expiry).
type BlockEvents struct {
	Height int64
	Events []ledger.Event
}

// Follow calls fn with the events of every block from height from on, in
// height order, until ctx ends or fn returns an error. It survives a validator
// that goes away: it retries and continues from the last block it delivered,
// so no block's events are skipped or repeated. (It reads block results rather
// than a websocket subscription, whose events are lost while disconnected.)
func (c *Client) Follow(ctx context.Context, from int64, fn func(BlockEvents) error) error {
	next := max(from, 1)
	for {
		latest, err := c.Height(ctx)
		for err == nil && next <= latest {
			var be BlockEvents
			if be, err = c.blockEvents(ctx, next); err != nil {
				break // retry this very block, never skip it
			}
			if ferr := fn(be); ferr != nil {
				return ferr
			}
			next++
		}
		wait := 20 * time.Millisecond
		if err != nil {
			c.reset()
			wait = 500 * time.Millisecond // the validator is away: retry gently
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (c *Client) blockEvents(ctx context.Context, h int64) (BlockEvents, error) {
	br, err := c.rpc.BlockResults(ctx, &h)
	if err != nil {
		return BlockEvents{}, transport(err)
	}
	be := BlockEvents{Height: h}
	for _, r := range br.TxsResults {
		if r.Code != 0 {
			continue
		}
		for _, e := range r.Events {
			be.Events = append(be.Events, fromABCI(e.Type, e.Attributes))
		}
	}
	for _, e := range br.FinalizeBlockEvents {
		if strings.HasPrefix(e.Type, ledger.EventPrefix) {
			be.Events = append(be.Events, fromABCI(e.Type, e.Attributes))
		}
	}
	return be, nil
}
