package chain

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// outcome is how an included transaction fared.
type outcome struct {
	height int64
	code   uint32
	log    string
}

// waiter follows committed blocks and tells each waiting transaction its
// outcome: two RPC calls per block however many transactions wait, where
// polling each transaction's hash would cost one call per transaction every
// few milliseconds.
type waiter struct {
	c *Client

	mu      sync.Mutex
	pending map[[32]byte]chan outcome
	running bool
	last    int64 // highest height scanned
}

// register starts waiting for hash. It must be called before the transaction
// is broadcast, so that no block can include it unseen.
func (w *waiter) register(ctx context.Context, hash [32]byte) (<-chan outcome, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending == nil {
		w.pending = map[[32]byte]chan outcome{}
	}
	if !w.running {
		h, err := w.c.Height(ctx)
		if err != nil {
			return nil, err
		}
		w.last, w.running = h, true
		go w.loop()
	}
	ch := make(chan outcome, 1)
	w.pending[hash] = ch
	return ch, nil
}

func (w *waiter) forget(hash [32]byte) {
	w.mu.Lock()
	delete(w.pending, hash)
	w.mu.Unlock()
}

func (w *waiter) loop() {
	for {
		w.mu.Lock()
		if len(w.pending) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		from := w.last + 1
		w.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		latest, err := w.c.Height(ctx)
		for h := from; err == nil && h <= latest; h++ {
			err = w.scan(ctx, h)
		}
		cancel()
		if err != nil {
			w.c.reset()
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// scan resolves the waiting transactions of block h.
func (w *waiter) scan(ctx context.Context, h int64) error {
	blk, err := w.c.rpc.Block(ctx, &h)
	if err != nil {
		return err
	}
	var res []outcome
	if len(blk.Block.Data.Txs) > 0 {
		br, err := w.c.rpc.BlockResults(ctx, &h)
		if err != nil {
			return err
		}
		for _, r := range br.TxsResults {
			res = append(res, outcome{height: h, code: r.Code, log: r.Log})
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, tx := range blk.Block.Data.Txs {
		if ch, ok := w.pending[sha256.Sum256(tx)]; ok && i < len(res) {
			ch <- res[i]
			delete(w.pending, sha256.Sum256(tx))
		}
	}
	w.last = h
	return nil
}
