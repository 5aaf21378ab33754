package node

import (
	"context"
	"errors"
	"log/slog"
	"strconv"

	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node/store"
	"github.com/deoss/deoss/internal/types"
)

// collector removes fragments no file on chain references from this node: on
// delete, expiry and reassignment events, and by reconciling at start. It
// never removes a fragment of a column the chain assigns to the node.
type collector struct {
	chain NodeChain
	store store.Store
	self  types.Address
	log   *slog.Logger
}

// reconcile compares what the store holds with the chain: columns the chain no
// longer assigns to this node are released; columns it does are handed to
// kick (so complete ones get reported).
func (g *collector) reconcile(ctx context.Context, kick func(types.FID, uint8)) error {
	files, err := g.store.Files(ctx)
	if err != nil {
		return err
	}
	for _, fid := range files {
		f, err := g.chain.File(ctx, fid)
		if err != nil && !errors.Is(err, ledger.ErrNotFound) {
			return err // the chain is unreachable: remove nothing
		}
		for col := range uint8(types.TotalShards) {
			if f != nil && f.Columns[col].Node == g.self {
				kick(fid, col)
				continue
			}
			if err := g.releaseColumn(ctx, fid, col); err != nil {
				return err
			}
		}
	}
	return nil
}

// releaseColumn drops every fragment ref of a column.
func (g *collector) releaseColumn(ctx context.Context, fid types.FID, col uint8) error {
	segs, err := g.store.Segments(ctx, fid, col)
	if err != nil {
		return err
	}
	for _, s := range segs {
		if err := g.store.Release(ctx, store.Ref{FID: fid, Column: col, Segment: s}); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	if len(segs) > 0 {
		g.log.Info("collected column", "fid", fid, "column", col, "fragments", len(segs))
	}
	return nil
}

// onBlock acts on one block's events.
func (g *collector) onBlock(ctx context.Context, be chain.BlockEvents) error {
	me := g.self.String()
	for _, e := range be.Events {
		fid, err := types.ParseFID(e.Attr(ledger.AttrFID))
		if err != nil {
			continue
		}
		action := e.Attr(ledger.AttrAction)
		switch {
		case e.Type == ledger.EventFile && e.Has(ledger.AttrNode, me) && (action == ledger.ActionDeleted || action == ledger.ActionExpired):
			for col := range uint8(types.TotalShards) {
				if err := g.releaseColumn(ctx, fid, col); err != nil {
					return err
				}
			}
		case e.Type == ledger.EventColumn && action == ledger.ActionReassigned && e.Attr(ledger.AttrFrom) == me:
			col, err := strconv.ParseUint(e.Attr(ledger.AttrColumn), 10, 8)
			if err == nil && col < types.TotalShards {
				if err := g.releaseColumn(ctx, fid, uint8(col)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
