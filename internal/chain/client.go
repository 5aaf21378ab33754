package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// Errors of the client.
var (
	ErrTimeout     = errors.New("transaction not included before the deadline")
	ErrUnavailable = errors.New("chain unavailable")
)

// transport marks errors of reaching the validator (as opposed to answers
// from it) with ErrUnavailable.
func transport(err error) error {
	var ue *url.Error
	var oe *net.OpError
	if errors.As(err, &ue) || errors.As(err, &oe) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

// Client talks to one validator's RPC.
type Client struct {
	rpc     *rpchttp.HTTP
	hc      *http.Client
	mu      sync.Mutex
	chainID string
	w       waiter
	// included is the highest block holding a transaction this client
	// submitted: queries wait until the application has committed it, so a
	// caller reads its own writes (a block's results are visible a moment
	// before the application's Commit).
	included atomic.Int64
}

// Dial returns a client of the RPC at addr ("http://127.0.0.1:26657" or
// "tcp://..."). It connects lazily.
func Dial(addr string) (*Client, error) {
	addr = strings.Replace(addr, "tcp://", "http://", 1)
	// The stock client keeps 2 idle connections, which throttles a gateway
	// that submits and queries concurrently (measured: ~200 tx/s).
	hc := &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}}
	rpc, err := rpchttp.NewWithClient(addr, "/websocket", hc)
	if err != nil {
		return nil, err
	}
	c := &Client{rpc: rpc, hc: hc}
	c.w.c = c
	return c, nil
}

// Query asks the ledger (ledger.Query paths) and decodes the JSON answer into
// out. Ledger errors come back typed (errors.Is(err, ledger.ErrNotFound)).
func (c *Client) Query(ctx context.Context, path string, out any) error {
	res, err := c.rpc.ABCIQuery(ctx, path, nil)
	// Bounded: a query still answers (older state) if the application is
	// slow to commit.
	for wait := 0; err == nil && res.Response.Height < c.included.Load() && wait < 400 && ctx.Err() == nil; wait++ {
		time.Sleep(5 * time.Millisecond)
		res, err = c.rpc.ABCIQuery(ctx, path, nil)
	}
	if err != nil {
		return fmt.Errorf("query %s: %w", path, transport(err))
	}
	if res.Response.Code != 0 {
		return ledger.FromCode(ledger.Code(res.Response.Code), res.Response.Log)
	}
	return json.Unmarshal(res.Response.Value, out)
}

// ChainID returns the chain's id (cached after the first call).
func (c *Client) ChainID(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.chainID != "" {
		return c.chainID, nil
	}
	info, err := c.Info(ctx)
	if err != nil {
		return "", err
	}
	c.chainID = info.ChainID
	return c.chainID, nil
}

// Height returns the latest committed block height.
func (c *Client) Height(ctx context.Context) (int64, error) {
	st, err := c.rpc.Status(ctx)
	if err != nil {
		return 0, transport(err)
	}
	return st.SyncInfo.LatestBlockHeight, nil
}

// Block is a committed block as a console shows it.
type Block struct {
	Height int64     `json:"height"`
	Time   time.Time `json:"time"`
	Txs    int       `json:"txs"`
}

// RecentBlocks returns the last n (at most 20) committed blocks, newest
// first.
func (c *Client) RecentBlocks(ctx context.Context, n int) ([]Block, error) {
	h, err := c.Height(ctx)
	if err != nil {
		return nil, err
	}
	n = min(max(n, 1), 20)
	res, err := c.rpc.BlockchainInfo(ctx, max(1, h-int64(n)+1), h)
	if err != nil {
		return nil, transport(err)
	}
	out := make([]Block, 0, len(res.BlockMetas))
	for _, m := range res.BlockMetas {
		out = append(out, Block{Height: m.Header.Height, Time: m.Header.Time, Txs: m.NumTxs})
	}
	return out, nil
}

// WaitReady waits until the validator answers and has committed a block.
func (c *Client) WaitReady(ctx context.Context) error {
	for {
		if h, err := c.Height(ctx); err == nil && h > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("chain not ready: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Account returns an account (zero if it has never been used).
func (c *Client) Account(ctx context.Context, a types.Address) (ledger.Account, error) {
	acc, err := query[ledger.Account](ctx, c, "account/"+a.String())
	if err != nil {
		return ledger.Account{}, err
	}
	return *acc, nil
}

// Saw tells the client that height h exists (a followed block): its
// queries wait (bounded, as for its own transactions) until the state
// answering them has committed it.
func (c *Client) Saw(h int64) {
	for cur := c.included.Load(); cur < h && !c.included.CompareAndSwap(cur, h); cur = c.included.Load() {
	}
}

// Result is the outcome of an included transaction.
type Result struct {
	Hash   string
	Height int64
}

// Signer submits one key's transactions in nonce order.
type Signer struct {
	c   *Client
	key *auth.Key

	mu     sync.Mutex
	next   uint64
	synced bool
}

// Signer returns a Signer for k. One key should have one Signer per process,
// or their nonces collide (they recover by resyncing, at the cost of a retry).
func (c *Client) Signer(k *auth.Key) *Signer { return &Signer{c: c, key: k} }

// Address is the signer's account.
func (s *Signer) Address() types.Address { return s.key.Address() }

// Submit signs msg with the next nonce, broadcasts it and waits until it is in
// a block. A message the ledger refuses returns its typed ledger error.
func (s *Signer) Submit(ctx context.Context, msg ledger.Msg) (*Result, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	hash, done, err := s.broadcast(ctx, msg)
	if err != nil {
		return nil, err
	}
	defer s.c.w.forget(hash)
	select {
	case o := <-done:
		for cur := s.c.included.Load(); cur < o.height && !s.c.included.CompareAndSwap(cur, o.height); cur = s.c.included.Load() {
		}
		r := &Result{Hash: fmt.Sprintf("%X", hash), Height: o.height}
		return r, ledger.FromCode(ledger.Code(o.code), o.log)
	case <-ctx.Done():
		s.mu.Lock()
		s.synced = false // it may still land: ask the chain before the next
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: %X", ErrTimeout, hash)
	}
}

// broadcast signs and sends msg, registered with the waiter first.
func (s *Signer) broadcast(ctx context.Context, msg ledger.Msg) ([32]byte, <-chan outcome, error) {
	var zero [32]byte
	chainID, err := s.c.ChainID(ctx)
	if err != nil {
		return zero, nil, err
	}
	// Broadcasting under the lock keeps this key's transactions in nonce
	// order in the mempool; waiting for inclusion happens outside it.
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if !s.synced {
			acc, err := s.c.Account(ctx, s.key.Address())
			if err != nil {
				return zero, nil, err
			}
			s.next, s.synced = acc.Nonce, true
		}
		tx := ledger.Tx{ChainID: chainID, Nonce: s.next, Msg: msg}
		tx.Sign(s.key)
		b := tx.Encode()
		hash := ledger.TxHash(b)
		done, err := s.c.w.register(ctx, hash)
		if err != nil {
			return zero, nil, transport(err)
		}
		res, err := s.c.rpc.BroadcastTxSync(ctx, b)
		if err != nil || res.Code != 0 {
			s.c.w.forget(hash)
		}
		if err != nil && isTxInCache(err) && attempt == 0 {
			// These exact bytes were seen: another signer of this key used
			// the nonce for the same message. Resync and use the next one.
			s.synced = false
			continue
		}
		if err != nil {
			s.synced = false // unknown whether it got in: ask the chain next time
			return zero, nil, fmt.Errorf("broadcast: %w", transport(err))
		}
		if res.Code == uint32(ledger.CodeBadNonce) && attempt == 0 {
			s.synced = false
			continue
		}
		if res.Code != 0 {
			return zero, nil, ledger.FromCode(ledger.Code(res.Code), res.Log)
		}
		s.next++
		return hash, done, nil
	}
}

// isTxInCache recognises CometBFT's mempool refusal of bytes it has seen
// recently. It reaches us only as the text of a JSON-RPC error, so this is the
// one place that looks at an error's words.
func isTxInCache(err error) bool { return strings.Contains(err.Error(), "tx already exists in cache") }

// AppHashAt returns the app hash recorded in the header of block height+1,
// which is the state after block height.
func (c *Client) AppHashAt(ctx context.Context, height int64) ([]byte, error) {
	next := height + 1
	b, err := c.rpc.Block(ctx, &next)
	if err != nil {
		return nil, err
	}
	return b.Block.Header.AppHash, nil
}

// reset drops idle connections after an error, so that the retry dials again:
// a kept-alive connection can outlive the validator (or the RPC server) that
// answered on it, and keep failing while a fresh one would succeed.
func (c *Client) reset() { c.hc.CloseIdleConnections() }
