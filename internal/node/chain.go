package node

import (
	"context"
	"errors"
	"time"

	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/ttlcache"
	"github.com/deoss/deoss/internal/types"
)

// ChainClient is the node's view of the chain over a chain.Client. Gateway
// lookups are cached for a while (a registration rarely changes; every store
// request needs one); file lookups briefly (an order's columns can move).
type ChainClient struct {
	c        *chain.Client
	signer   *chain.Signer
	gateways *ttlcache.Cache[types.Address, *ledger.Gateway]
	files    *ttlcache.Cache[types.FID, ledger.File]
}

// NewChainClient returns the node's chain view; signer signs its reports.
func NewChainClient(c *chain.Client, signer *chain.Signer) *ChainClient {
	return &ChainClient{c: c, signer: signer,
		gateways: ttlcache.New[types.Address, *ledger.Gateway](30*time.Second, 10_000),
		files:    ttlcache.New[types.FID, ledger.File](2*time.Second, 10_000)}
}

// Gateway implements Chain.
func (cc *ChainClient) Gateway(ctx context.Context, a types.Address) (*ledger.Gateway, error) {
	if g, ok := cc.gateways.Get(a); ok {
		return g, nil
	}
	g, err := cc.c.Gateway(ctx, a)
	if err != nil {
		return nil, err
	}
	cc.gateways.Put(a, g)
	return g, nil
}

// File implements Chain; each caller gets its own copy.
func (cc *ChainClient) File(ctx context.Context, fid types.FID) (*ledger.File, error) {
	if f, ok := cc.files.Get(fid); ok {
		return &f, nil
	}
	f, err := cc.c.File(ctx, fid)
	if err != nil {
		return nil, err
	}
	cc.files.Put(fid, *f)
	return f, nil
}

// Report implements ReportChain: it submits the report and waits for its
// block.
func (cc *ChainClient) Report(ctx context.Context, fid types.FID, column uint8) error {
	_, err := cc.signer.Submit(ctx, ledger.Msg{ReportColumn: &ledger.ReportColumn{FID: fid, Column: column}})
	cc.files.Delete(fid) // its state changed
	return err
}

// Challenges implements ProofChain: the node's open challenges.
func (cc *ChainClient) Challenges(ctx context.Context, node types.Address) ([]ledger.Challenge, error) {
	return cc.c.Challenges(ctx, node)
}

// SubmitProof implements ProofChain: it submits the proof and waits for its
// block.
func (cc *ChainClient) SubmitProof(ctx context.Context, m *ledger.SubmitProof) error {
	_, err := cc.signer.Submit(ctx, ledger.Msg{SubmitProof: m})
	return err
}

// ReportLost implements ScrubChain.
func (cc *ChainClient) ReportLost(ctx context.Context, fid types.FID, column uint8) error {
	_, err := cc.signer.Submit(ctx, ledger.Msg{ReportLost: &ledger.ReportLost{FID: fid, Column: column}})
	return err
}

// Columns implements ReportChain: the columns the chain assigns to the node.
func (cc *ChainClient) Columns(ctx context.Context, node types.Address) ([]ledger.NodeColumn, error) {
	return cc.c.Columns(ctx, node)
}

// Follow implements ReportChain.
func (cc *ChainClient) Follow(ctx context.Context, from int64, fn func(chain.BlockEvents) error) error {
	return cc.c.Follow(ctx, from, fn)
}

// FileAt implements NodeChain: the file's record from a state at least at
// height h, never from the cache.
func (cc *ChainClient) FileAt(ctx context.Context, fid types.FID, h int64) (*ledger.File, error) {
	cc.c.Saw(h)
	cc.files.Delete(fid)
	return cc.File(ctx, fid)
}

// Node implements NodeChain.
func (cc *ChainClient) Node(ctx context.Context, a types.Address) (*ledger.Node, error) {
	return cc.c.Node(ctx, a)
}

// Height implements ReportChain.
func (cc *ChainClient) Height(ctx context.Context) (int64, error) { return cc.c.Height(ctx) }

// final reports whether a report error means "stop trying": the order is
// gone, the column is not ours, or it is reported already.
func final(err error) bool {
	return errors.Is(err, ledger.ErrNotFound) || errors.Is(err, ledger.ErrUnauthorized) || errors.Is(err, ledger.ErrConflict)
}

// Restorals implements RepairChain.
func (cc *ChainClient) Restorals(ctx context.Context, limit int) (*ledger.RestoralQueue, error) {
	return cc.c.Restorals(ctx, limit)
}

// Claims implements RepairChain.
func (cc *ChainClient) Claims(ctx context.Context, node types.Address) ([]ledger.Restoral, error) {
	return cc.c.Claims(ctx, node)
}

// ClaimRestoral implements RepairChain: it waits for the claim's block.
func (cc *ChainClient) ClaimRestoral(ctx context.Context, fid types.FID, col uint8) error {
	_, err := cc.signer.Submit(ctx, ledger.Msg{ClaimRestoral: &ledger.ClaimRestoral{FID: fid, Column: col}})
	return err
}

// CompleteRestoral implements RepairChain.
func (cc *ChainClient) CompleteRestoral(ctx context.Context, m *ledger.CompleteRestoral) error {
	_, err := cc.signer.Submit(ctx, ledger.Msg{CompleteRestoral: m})
	cc.files.Delete(m.FID)
	return err
}

// Gateways implements RepairChain: the registered gateways (repair's
// last sources).
func (cc *ChainClient) Gateways(ctx context.Context) ([]ledger.Gateway, error) {
	return cc.c.Gateways(ctx)
}
