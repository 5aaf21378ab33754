package chain

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// BenchSpec is a chain benchmark: Txs storage orders of Segments segments
// each, declared by Gateways gateways for Users users, Concurrency at a time.
type BenchSpec struct {
	Txs, Segments, Gateways, Users, Concurrency int
}

// BenchResult is what a benchmark measured.
type BenchResult struct {
	Txs       int           `json:"txs"`
	TxBytes   int           `json:"tx_bytes"`
	Duration  time.Duration `json:"duration"`
	TPS       float64       `json:"tx_per_second"`
	P50, P99  time.Duration `json:"-"`
	P50ms     float64       `json:"commit_p50_ms"`
	P99ms     float64       `json:"commit_p99_ms"`
	Failures  int           `json:"failures"`
	FirstFail string        `json:"first_failure,omitempty"`
}

// Bench sets up accounts on a dev chain (through its faucet) and measures
// storage-order transactions: throughput, and latency from submission to the
// client seeing the commit.
func Bench(ctx context.Context, c *Client, spec BenchSpec) (*BenchResult, error) {
	gen := func(n int) []*auth.Key {
		ks := make([]*auth.Key, n)
		for i := range ks {
			ks[i], _ = auth.Generate()
		}
		return ks
	}
	nodes, gws, users := gen(types.TotalShards), gen(spec.Gateways), gen(spec.Users)
	// Setup, in parallel per account: fund, then register or buy and
	// authorize.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i, k := range nodes {
		g.Go(func() error {
			s := c.Signer(k)
			return submitAll(gctx, s,
				ledger.Msg{Faucet: &ledger.Faucet{}},
				ledger.Msg{RegisterNode: &ledger.RegisterNode{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", 9000+i), Capacity: 1 << 60, Stake: 1000}})
		})
	}
	for i, k := range gws {
		g.Go(func() error {
			return submitAll(gctx, c.Signer(k),
				ledger.Msg{Faucet: &ledger.Faucet{}},
				ledger.Msg{RegisterGateway: &ledger.RegisterGateway{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", 7000+i)}})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(32)
	for _, k := range users {
		g.Go(func() error {
			msgs := []ledger.Msg{{Faucet: &ledger.Faucet{}}, {BuyTerritory: &ledger.BuyTerritory{Name: "bench", GiB: 1 << 20, Days: 1}}}
			for _, gw := range gws {
				msgs = append(msgs, ledger.Msg{Authorize: &ledger.Authorize{Gateway: gw.Address()}})
			}
			return submitAll(gctx, c.Signer(k), msgs...)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}

	var cols [types.TotalShards]types.Address
	for j, k := range nodes {
		cols[j] = k.Address()
	}
	signers := make([]*Signer, len(gws))
	for i, k := range gws {
		signers[i] = c.Signer(k)
	}
	run := make([]byte, 8) // a run id: FIDs differ between runs on one chain
	_, _ = rand.Read(run)
	msgs := make([]ledger.Msg, spec.Txs)
	for i := range msgs {
		l := types.Layout{Version: types.FormatV1, Size: uint64(spec.Segments) * types.SegmentSize}
		for s := range spec.Segments {
			seg := types.SegmentLayout{Hash: types.Sum(fmt.Appendf(nil, "%x/%d/%d", run, i, s))}
			for j := range seg.Fragments {
				seg.Fragments[j] = types.Sum(fmt.Appendf(nil, "%x/%d/%d/%d", run, i, s, j))
			}
			l.Segments = append(l.Segments, seg)
		}
		msgs[i] = ledger.Msg{DeclareFile: &ledger.DeclareFile{
			Owner: users[i%len(users)].Address(), FID: codec.FileID(&l), Name: fmt.Sprintf("f%d", i),
			Territory: "bench", Layout: l, Columns: cols,
		}}
	}
	txBytes := len((&ledger.Tx{Msg: msgs[0]}).Encode()) + auth.SignatureSize

	lat := make([]time.Duration, spec.Txs)
	var next, failures atomic.Int64
	var firstFail sync.Once
	res := &BenchResult{Txs: spec.Txs, TxBytes: txBytes}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range spec.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= spec.Txs {
					return
				}
				t0 := time.Now()
				_, err := signers[(i+w)%len(signers)].Submit(ctx, msgs[i])
				lat[i] = time.Since(t0)
				if err != nil {
					failures.Add(1)
					firstFail.Do(func() { res.FirstFail = err.Error() })
				}
			}
		})
	}
	wg.Wait()
	res.Duration = time.Since(start)
	res.Failures = int(failures.Load())
	res.TPS = float64(spec.Txs) / res.Duration.Seconds()
	slices.Sort(lat)
	res.P50, res.P99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	res.P50ms, res.P99ms = ms(res.P50), ms(res.P99)
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func submitAll(ctx context.Context, s *Signer, msgs ...ledger.Msg) error {
	for _, m := range msgs {
		if _, err := s.Submit(ctx, m); err != nil {
			return fmt.Errorf("%s: %w", m.Name(), err)
		}
	}
	return nil
}
