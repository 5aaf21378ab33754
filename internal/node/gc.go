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
// delete, expiry, reassignment and restoral events, and by reconciling at start. It
// never removes a fragment of a column the chain assigns to the node, and
// it removes nothing on the word of an event alone or of a chain that may
// not have seen the file yet:
//   - an event's release is confirmed by the chain's current state (a
//     follower that lags may apply an old "deleted" after the same FID was
//     declared again and stored here);
//   - at start, a file the chain says it does not know is released only if
//     the chain knows this node and has reached the height the file was
//     declared at (declared), so that a lagging RPC, a restarted empty
//     validator or a stub that knows nothing deletes nothing.
type collector struct {
	chain    NodeChain
	store    store.Store
	self     types.Address
	log      *slog.Logger
	declared Declared
}

// errUnknownNode: the chain does not know this node, so it is not the
// chain the node's fragments were stored for (or not yet): release nothing.
var errUnknownNode = errors.New("the chain does not know this node: releasing nothing")

// reconcile compares what the store holds with the chain: columns the chain no
// longer assigns to this node are released; columns it does are handed to
// kick (so complete ones get reported).
func (g *collector) reconcile(ctx context.Context, kick func(types.FID, uint8)) error {
	files, err := g.store.Files(ctx)
	if err != nil {
		return err
	}
	if _, err := g.chain.Node(ctx, g.self); err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			return errUnknownNode
		}
		return err
	}
	height, err := g.chain.Height(ctx)
	if err != nil {
		return err
	}
	for _, fid := range files {
		f, err := g.chain.File(ctx, fid)
		if err != nil && !errors.Is(err, ledger.ErrNotFound) {
			return err // the chain is unreachable: remove nothing
		}
		if f == nil {
			if d, ok := g.declared.Height(fid); !ok || height < d {
				g.log.Warn("the chain does not know a file held here; keeping it", "fid", fid, "chain_height", height,
					"declared_height", d, "declaration_known", ok)
				continue
			}
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
		if f == nil {
			if err := g.declared.Forget(fid); err != nil {
				return err
			}
		}
	}
	return nil
}

// current is the chain's record of fid at an event's height or later (nil:
// no such file), so that an event's release is checked against the state:
// a column the state still gives this node is kept.
func (g *collector) current(ctx context.Context, fid types.FID, height int64) (*ledger.File, error) {
	f, err := g.chain.FileAt(ctx, fid, height)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, nil
	}
	return f, err // unreachable: remove nothing, the block is taken up again
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
			now, err := g.current(ctx, fid, be.Height)
			if err != nil {
				return err
			}
			for col := range uint8(types.TotalShards) {
				if now != nil && now.Columns[col].Node == g.self {
					continue // declared again since, and stored here
				}
				if err := g.releaseColumn(ctx, fid, col); err != nil {
					return err
				}
			}
		case e.Type == ledger.EventColumn && (action == ledger.ActionReassigned || action == ledger.ActionRestored) && e.Attr(ledger.AttrFrom) == me:
			// A column moved off this node (a pending order's reassignment,
			// or a completed restoral: final once its block is committed).
			col, err := strconv.ParseUint(e.Attr(ledger.AttrColumn), 10, 8)
			if err == nil && col < types.TotalShards {
				now, err := g.current(ctx, fid, be.Height)
				if err != nil {
					return err
				}
				if now != nil && now.Columns[col].Node == g.self {
					continue // moved back to this node since
				}
				if err := g.releaseColumn(ctx, fid, uint8(col)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
