package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/deoss/deoss/internal/chain"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// ChainClient is the node's view of the chain over a chain.Client. Gateway
// lookups are cached for a while (a registration rarely changes; every store
// request needs one); file lookups briefly (an order's columns can move).
type ChainClient struct {
	c      *chain.Client
	signer *chain.Signer

	mu       sync.Mutex
	gateways map[types.Address]time.Time // registered, seen at
	files    map[types.FID]cachedFile
}

type cachedFile struct {
	f  *ledger.File
	at time.Time
}

const (
	gatewayTTL = 30 * time.Second
	fileTTL    = 2 * time.Second
)

// NewChainClient returns the node's chain view; signer signs its reports.
func NewChainClient(c *chain.Client, signer *chain.Signer) *ChainClient {
	return &ChainClient{c: c, signer: signer, gateways: map[types.Address]time.Time{}, files: map[types.FID]cachedFile{}}
}

// Gateway implements Chain.
func (cc *ChainClient) Gateway(ctx context.Context, a types.Address) (*ledger.Gateway, error) {
	cc.mu.Lock()
	at, ok := cc.gateways[a]
	cc.mu.Unlock()
	if ok && time.Since(at) < gatewayTTL {
		return &ledger.Gateway{Address: a}, nil
	}
	var g ledger.Gateway
	if err := cc.c.Query(ctx, "gateway/"+a.String(), &g); err != nil {
		return nil, err
	}
	cc.mu.Lock()
	cc.gateways[a] = time.Now()
	cc.mu.Unlock()
	return &g, nil
}

// File implements Chain.
func (cc *ChainClient) File(ctx context.Context, fid types.FID) (*ledger.File, error) {
	cc.mu.Lock()
	cf, ok := cc.files[fid]
	cc.mu.Unlock()
	if ok && time.Since(cf.at) < fileTTL {
		cp := *cf.f
		return &cp, nil
	}
	var f ledger.File
	if err := cc.c.Query(ctx, "file/"+fid.String(), &f); err != nil {
		return nil, err
	}
	cc.mu.Lock()
	if len(cc.files) > 10000 {
		clear(cc.files)
	}
	cc.files[fid] = cachedFile{f: &f, at: time.Now()}
	cc.mu.Unlock()
	cp := f
	return &cp, nil
}

// Report implements ReportChain: it submits the report and waits for its
// block.
func (cc *ChainClient) Report(ctx context.Context, fid types.FID, column uint8) error {
	_, err := cc.signer.Submit(ctx, ledger.Msg{ReportColumn: &ledger.ReportColumn{FID: fid, Column: column}})
	cc.mu.Lock()
	delete(cc.files, fid) // its state changed
	cc.mu.Unlock()
	return err
}

// Columns implements ReportChain: the columns the chain assigns to the node.
func (cc *ChainClient) Columns(ctx context.Context, node types.Address) ([]ledger.NodeColumn, error) {
	var cols []ledger.NodeColumn
	err := cc.c.Query(ctx, "columns/"+node.String(), &cols)
	return cols, err
}

// Follow implements ReportChain.
func (cc *ChainClient) Follow(ctx context.Context, from int64, fn func(chain.BlockEvents) error) error {
	return cc.c.Follow(ctx, from, fn)
}

// Height implements ReportChain.
func (cc *ChainClient) Height(ctx context.Context) (int64, error) { return cc.c.Height(ctx) }

// final reports whether a report error means "stop trying": the order is
// gone, the column is not ours, or it is reported already.
func final(err error) bool {
	return errors.Is(err, ledger.ErrNotFound) || errors.Is(err, ledger.ErrUnauthorized) || errors.Is(err, ledger.ErrConflict)
}
