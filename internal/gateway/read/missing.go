package read

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/ttlcache"
	"github.com/deoss/deoss/internal/types"
)

// MissingChain submits a gateway's ReportMissing.
type MissingChain interface {
	Submit(ctx context.Context, m ledger.Msg) error
}

// MissingReporter tells the chain of fragments a node served wrong, so that
// it challenges the node on them (ReportMissing). Reports wait in a short
// queue and go one at a time; a fragment is reported once in 10 minutes,
// and what does not fit the queue is dropped (the chain bounds a gateway's
// reports per epoch anyway, and the node's epoch challenges go on).
// Construct with NewMissingReporter; Run sends until its context ends.
type MissingReporter struct {
	chain MissingChain
	log   *slog.Logger
	queue chan ledger.ReportMissing
	seen  *ttlcache.Cache[[3]uint64, bool]
}

// NewMissingReporter returns an idle reporter.
func NewMissingReporter(c MissingChain, log *slog.Logger) *MissingReporter {
	return &MissingReporter{chain: c, log: log, queue: make(chan ledger.ReportMissing, 64),
		seen: ttlcache.New[[3]uint64, bool](10*time.Minute, 10_000)}
}

// Report queues a report of fragment (seg, col) of fid; it never blocks.
func (m *MissingReporter) Report(fid types.FID, col uint8, seg uint64) {
	key := [3]uint64{fidWord(fid), uint64(col), seg}
	if _, ok := m.seen.Get(key); ok {
		return
	}
	m.seen.Put(key, true)
	select {
	case m.queue <- ledger.ReportMissing{FID: fid, Column: col, Segment: seg}:
	default:
	}
}

func fidWord(f types.FID) uint64 {
	var v uint64
	for _, b := range f[:8] {
		v = v<<8 | uint64(b)
	}
	return v
}

// Run sends queued reports until ctx ends.
func (m *MissingReporter) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-m.queue:
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := m.chain.Submit(sctx, ledger.Msg{ReportMissing: &r})
			cancel()
			switch {
			case err == nil:
				m.log.Info("reported a bad fragment to the chain", "fid", r.FID, "column", r.Column, "segment", r.Segment)
			case errors.Is(err, ledger.ErrTooMany), errors.Is(err, ledger.ErrConflict), errors.Is(err, ledger.ErrInvalid):
				m.log.Debug("bad fragment not reported", "fid", r.FID, "column", r.Column, "err", err)
			default:
				if ctx.Err() == nil {
					m.log.Warn("reporting a bad fragment", "fid", r.FID, "column", r.Column, "err", err)
				}
			}
		}
	}
}
