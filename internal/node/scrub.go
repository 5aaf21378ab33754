package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"lukechampine.com/blake3"

	"github.com/deoss/deoss/internal/backoff"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node/store"
	"github.com/deoss/deoss/internal/types"
)

// ScrubChain is what the scrubber needs of the chain.
type ScrubChain interface {
	Columns(ctx context.Context, node types.Address) ([]ledger.NodeColumn, error)
	File(ctx context.Context, fid types.FID) (*ledger.File, error)
	ReportLost(ctx context.Context, fid types.FID, column uint8) error
}

// scrubber re-reads every fragment of the columns the chain says this node
// holds, slowly (rate bytes a second), and checks it against its hash; a
// column with a fragment missing or wrong is reported lost (ReportLost),
// which costs the node less than the failed proofs it would otherwise earn
// and gets the column repaired sooner. A pass starts every interval, the
// first one an interval after the node starts (a restart does not re-read
// everything at once).
type scrubber struct {
	chain    ScrubChain
	store    store.Store
	self     types.Address
	log      *slog.Logger
	limit    *rate.Limiter
	interval time.Duration

	bytes prometheus.Counter
	lost  prometheus.Counter
}

func newScrubber(c ScrubChain, st store.Store, self types.Address, bytesPerSec int64, interval time.Duration, reg prometheus.Registerer, log *slog.Logger) *scrubber {
	s := &scrubber{chain: c, store: st, self: self, log: log, interval: interval,
		limit: rate.NewLimiter(rate.Limit(bytesPerSec), int(min(bytesPerSec, scrubRead))),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_node_scrubbed_bytes_total", Help: "Fragment bytes re-read and checked by the scrubber."}),
		lost:  prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_node_columns_lost_total", Help: "Columns the scrubber found missing or corrupt and reported lost."})}
	if reg != nil {
		reg.MustRegister(s.bytes, s.lost)
	}
	return s
}

// scrubRead is the unit the scrubber reads (and the rate is charged) in.
const scrubRead = 64 << 10

func (s *scrubber) run(ctx context.Context) {
	for {
		if backoff.Sleep(ctx, s.interval) != nil {
			return
		}
		start := time.Now()
		checked, lost, err := s.pass(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.log.Warn("scrub pass stopped; the next one starts over", "err", err)
			continue
		}
		s.log.Info("scrub pass done", "columns", checked, "lost", lost, "took", time.Since(start).Round(time.Second))
	}
}

// pass checks every reported column the chain assigns to the node once.
func (s *scrubber) pass(ctx context.Context) (checked, lost int, err error) {
	cols, err := s.chain.Columns(ctx, s.self)
	if err != nil {
		return 0, 0, err
	}
	for _, c := range cols {
		if !c.Reported {
			continue // still arriving: the reporter checks it
		}
		f, err := s.chain.File(ctx, c.FID)
		if errors.Is(err, ledger.ErrNotFound) {
			continue // deleted since
		}
		if err != nil {
			return checked, lost, err
		}
		if int(c.Column) >= types.TotalShards || f.Columns[c.Column].Node != s.self {
			continue
		}
		bad, err := s.column(ctx, f, c.Column)
		if err != nil {
			return checked, lost, err
		}
		checked++
		if bad == nil {
			continue
		}
		s.log.Error("column lost; reporting it", "fid", c.FID, "column", c.Column, "why", bad)
		if err := s.chain.ReportLost(ctx, c.FID, c.Column); err != nil && !errors.Is(err, ledger.ErrConflict) {
			return checked, lost, fmt.Errorf("report lost: %w", err)
		}
		s.lost.Inc()
		lost++
	}
	return checked, lost, nil
}

// column checks every fragment of one column: the reason it is lost, or
// nil. err is for what stops the pass (the context, a store failure that
// says nothing of the fragment).
func (s *scrubber) column(ctx context.Context, f *ledger.File, col uint8) (bad, err error) {
	for seg := range f.Layout.Segments {
		want := f.Layout.Segments[seg].Fragments[col]
		h, err := s.store.Lookup(ctx, store.Ref{FID: f.FID, Column: col, Segment: uint32(seg)})
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("segment %d: no fragment", seg), nil
		}
		if err != nil {
			return nil, err
		}
		if h != want {
			return fmt.Errorf("segment %d: holds %s, the chain says %s", seg, h, want), nil
		}
		if why, err := s.verify(ctx, want, f.Layout.Version, int64(f.Layout.FragmentLen(seg))); why != nil || err != nil {
			return why, err
		}
	}
	return nil, nil
}

// verify reads a fragment at the scrub rate and hashes it as its format
// does (v1 SHA-256, v2 BLAKE3, whose root the chain holds).
func (s *scrubber) verify(ctx context.Context, h types.Hash, format uint8, size int64) (bad, err error) {
	fr, err := s.store.Open(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("fragment %s: gone", h), nil
	}
	if err != nil {
		return fmt.Errorf("fragment %s: %w", h, err), nil // unreadable is lost
	}
	defer fr.Close()
	if fr.Size() != size {
		return fmt.Errorf("fragment %s: %d bytes, want %d", h, fr.Size(), size), nil
	}
	var hs hash.Hash = sha256.New()
	if format != types.FormatV1 {
		hs = blake3.New(32, nil)
	}
	buf := make([]byte, scrubRead)
	for off := int64(0); off < size; {
		n := int(min(int64(len(buf)), size-off))
		if err := s.limit.WaitN(ctx, min(n, s.limit.Burst())); err != nil {
			return nil, err
		}
		m, err := fr.ReadAt(buf[:n], off)
		if m < n {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("fragment %s at %d: %w", h, off, err), nil
		}
		hs.Write(buf[:n])
		s.bytes.Add(float64(n))
		off += int64(n)
	}
	if types.Hash(hs.Sum(nil)) != h {
		return fmt.Errorf("fragment %s: its bytes hash to %x", h, hs.Sum(nil)), nil
	}
	return nil, nil
}
