package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	neturl "net/url"
	"time"

	"github.com/klauspost/reedsolomon"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/deoss/deoss/internal/backoff"
	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node/store"
	"github.com/deoss/deoss/internal/types"
)

// RepairChain is what the repairer needs of the chain.
type RepairChain interface {
	Restorals(ctx context.Context, limit int) (*ledger.RestoralQueue, error)
	Claims(ctx context.Context, node types.Address) ([]ledger.Restoral, error)
	ClaimRestoral(ctx context.Context, fid types.FID, col uint8) error
	CompleteRestoral(ctx context.Context, m *ledger.CompleteRestoral) error
	FileAt(ctx context.Context, fid types.FID, h int64) (*ledger.File, error)
	Node(ctx context.Context, a types.Address) (*ledger.Node, error)
	Gateways(ctx context.Context) ([]ledger.Gateway, error)
}

// maxGatewaySources bounds the gateways asked for a fragment that the
// holders could not give.
const maxGatewaySources = 8

// repairer takes restoral orders: it finishes its own claims first (a
// restart resumes them), then claims the first eligible order of the queue
// it can hold, rebuilds each segment's fragment from 4 verified fragments
// of the other holders, stores it with its outboard and completes the
// order. It works one order at a time, and its reads of other nodes are
// paced by rate (bytes a second), so repair leaves the node's own serving
// and uploads their bandwidth.
type repairer struct {
	chain  RepairChain
	store  store.Store
	self   types.Address
	log    *slog.Logger
	rate   *rate.Limiter
	client *http.Client
	poll   time.Duration

	restored prometheus.Counter
	bytes    prometheus.Counter
	failed   *prometheus.CounterVec
}

func newRepairer(c RepairChain, st store.Store, self types.Address, bytesPerSec int64, reg prometheus.Registerer, log *slog.Logger) *repairer {
	burst := int(max(bytesPerSec, types.FragmentSize))
	r := &repairer{chain: c, store: st, self: self, log: log, poll: 2 * time.Second,
		rate:   rate.NewLimiter(rate.Limit(bytesPerSec), burst),
		client: &http.Client{Timeout: 2 * time.Minute},
		restored: prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_node_restorals_total",
			Help: "Restoral orders this node completed."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_node_restored_bytes_total",
			Help: "Bytes of fragments this node rebuilt and stored for restoral orders."}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deoss_node_restoral_failures_total",
			Help: "Restorals given up, by reason: sources (fewer than 4 good fragments), store, chain."}, []string{"reason"})}
	if reg != nil {
		reg.MustRegister(r.restored, r.bytes, r.failed)
	}
	return r
}

func (r *repairer) run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := r.round(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("repair round", "err", err)
		}
		backoff.Sleep(ctx, r.poll)
	}
}

// round finishes the node's claims, then takes one order if it can.
func (r *repairer) round(ctx context.Context) error {
	claims, err := r.chain.Claims(ctx, r.self)
	if err != nil {
		return err
	}
	for _, o := range claims {
		r.restore(ctx, &o)
	}
	if len(claims) > 0 {
		return nil
	}
	q, err := r.chain.Restorals(ctx, 100)
	if err != nil {
		return err
	}
	for i := range q.Orders {
		o := &q.Orders[i]
		if o.Eligible > q.Now || o.From == r.self {
			continue
		}
		f, err := r.chain.FileAt(ctx, o.FID, 0)
		if err != nil || holds(f, r.self) {
			continue
		}
		if err := r.chain.ClaimRestoral(ctx, o.FID, o.Column); err != nil {
			// Taken by another node, not ours to hold, or over a cap:
			// the next order, or the next round.
			r.log.Debug("claim refused", "fid", o.FID, "column", o.Column, "err", err)
			continue
		}
		r.log.Info("claimed a restoral order", "fid", o.FID, "column", o.Column, "from", o.From, "reason", o.Reason, "health", o.Health)
		r.restore(ctx, o)
		return nil
	}
	return nil
}

func holds(f *ledger.File, a types.Address) bool {
	for _, c := range f.Columns {
		if c.Node == a {
			return true
		}
	}
	return false
}

// restore rebuilds and stores the column's missing fragments and completes
// the order. A failure leaves the claim to lapse (or to the next round).
func (r *repairer) restore(ctx context.Context, o *ledger.Restoral) {
	f, err := r.chain.FileAt(ctx, o.FID, 0)
	if err != nil {
		r.failed.WithLabelValues("chain").Inc()
		return
	}
	start := time.Now()
	var stored int64
	for seg := range f.Layout.Segments {
		want := f.Layout.Segments[seg].Fragments[o.Column]
		ref := store.Ref{FID: o.FID, Column: o.Column, Segment: uint32(seg)}
		if h, err := r.store.Lookup(ctx, ref); err == nil && h == want {
			continue // stored before a restart
		}
		frag, err := r.rebuild(ctx, f, seg, o.Column)
		if err != nil {
			r.failed.WithLabelValues("sources").Inc()
			r.log.Warn("restoral: cannot rebuild", "fid", o.FID, "column", o.Column, "segment", seg, "err", err)
			return
		}
		w := store.Want{Hash: want, Format: f.Layout.Version, Size: int64(len(frag))}
		if err := r.store.Put(ctx, ref, w, bytes.NewReader(frag)); err != nil {
			r.failed.WithLabelValues("store").Inc()
			r.log.Warn("restoral: cannot store", "fid", o.FID, "column", o.Column, "segment", seg, "err", err)
			return
		}
		stored += int64(len(frag))
	}
	m := &ledger.CompleteRestoral{FID: o.FID, Column: o.Column, Digest: ledger.ColumnDigest(&f.Layout, o.Column)}
	if err := r.chain.CompleteRestoral(ctx, m); err != nil {
		r.failed.WithLabelValues("chain").Inc()
		r.log.Warn("restoral: complete refused", "fid", o.FID, "column", o.Column, "err", err)
		return
	}
	r.restored.Inc()
	r.bytes.Add(float64(stored))
	r.log.Info("restored a column", "fid", o.FID, "column", o.Column, "bytes", stored, "took", time.Since(start).Round(time.Millisecond))
}

// rebuild fetches 4 verified fragments of segment seg from the other
// holders (in a random order, healthy ones first), then if need be from
// the gateways' caches, and computes fragment col from them, checked
// against the chain's hash.
func (r *repairer) rebuild(ctx context.Context, f *ledger.File, seg int, col uint8) ([]byte, error) {
	size := f.Layout.FragmentLen(seg)
	shards := make([][]byte, types.TotalShards)
	order := rand.Perm(types.TotalShards)
	// Healthy columns first: a suspect or exiting node may still serve,
	// but is likelier not to.
	var first, later []int
	for _, j := range order {
		switch {
		case j == int(col) || f.Columns[j].Down == ledger.DownLost:
		case f.Columns[j].Down == "":
			first = append(first, j)
		default:
			later = append(later, j)
		}
	}
	got := 0
	var errs []error
	for _, j := range append(first, later...) {
		if got == types.DataShards {
			break
		}
		n, err := r.chain.Node(ctx, f.Columns[j].Node)
		if err != nil {
			errs = append(errs, fmt.Errorf("column %d: %w", j, err))
			continue
		}
		h := f.Layout.Segments[seg].Fragments[j]
		b, err := r.fetch(ctx, n.Endpoint+"/fragment/"+h.String(), f.Layout.Version, h, size)
		if err != nil {
			errs = append(errs, fmt.Errorf("column %d: %w", j, err))
			continue
		}
		shards[j] = b
		got++
	}
	if got < types.DataShards {
		got += r.fromGateways(ctx, f, seg, col, shards, types.DataShards-got, &errs)
	}
	if got < types.DataShards {
		return nil, errors.Join(append(errs, fmt.Errorf("%d good fragments of %d needed", got, types.DataShards))...)
	}
	enc, err := reedsolomon.New(types.DataShards, types.ParityShards, reedsolomon.WithMaxGoroutines(1))
	if err != nil {
		return nil, err
	}
	required := make([]bool, types.TotalShards)
	required[col] = true
	if err := enc.ReconstructSome(shards, required); err != nil {
		return nil, err
	}
	if h := codec.Sum(f.Layout.Version, shards[col]); h != f.Layout.Segments[seg].Fragments[col] {
		// The four matched their hashes, so this means a layout whose
		// fragments are not one code word: nothing to store.
		return nil, fmt.Errorf("rebuilt fragment hashes to %s, not %s", h, f.Layout.Segments[seg].Fragments[col])
	}
	return shards[col], nil
}

// fromGateways fills up to need missing shards from the registered
// gateways that still hold the file (their peer route serves the cache and
// the work area); it returns how many it found.
func (r *repairer) fromGateways(ctx context.Context, f *ledger.File, seg int, col uint8, shards [][]byte, need int, errs *[]error) int {
	gws, err := r.chain.Gateways(ctx)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("gateways: %w", err))
		return 0
	}
	found := 0
	size := f.Layout.FragmentLen(seg)
	for _, g := range gws[:min(len(gws), maxGatewaySources)] {
		for j := range types.TotalShards {
			if found == need {
				return found
			}
			if j == int(col) || shards[j] != nil {
				continue
			}
			h := f.Layout.Segments[seg].Fragments[j]
			url := fmt.Sprintf("%s/peer/fragment/%s/%d/%d?hash=%s", g.Endpoint, f.FID, seg, j, h)
			b, err := r.fetch(ctx, url, f.Layout.Version, h, size)
			var ue *neturl.Error
			if errors.As(err, &ue) {
				*errs = append(*errs, fmt.Errorf("gateway %s: %w", g.Endpoint, err))
				break // away: the next gateway
			}
			if err != nil {
				// A cache holds some fragments, not always all.
				*errs = append(*errs, fmt.Errorf("gateway %s column %d: %w", g.Endpoint, j, err))
				continue
			}
			shards[j] = b
			found++
		}
	}
	return found
}

// fetch reads a whole fragment from url and checks it against its hash
// (the chain's) before it is used.
func (r *repairer) fetch(ctx context.Context, url string, version uint8, want types.Hash, size int) ([]byte, error) {
	if err := r.rate.WaitN(ctx, min(size, r.rate.Burst())); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status)
	}
	b := make([]byte, size+1)
	k, err := io.ReadFull(resp.Body, b)
	if err != io.ErrUnexpectedEOF || k != size {
		return nil, fmt.Errorf("%d bytes, want %d", k, size)
	}
	b = b[:size]
	if codec.Sum(version, b) != want {
		return nil, codec.ErrFragmentCorrupt
	}
	return b, nil
}
