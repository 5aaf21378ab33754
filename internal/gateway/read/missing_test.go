package read

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

type submitted struct {
	mu   sync.Mutex
	msgs []ledger.ReportMissing
	done chan struct{}
}

func (s *submitted) Submit(_ context.Context, m ledger.Msg) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, *m.ReportMissing)
	if len(s.msgs) == 2 {
		close(s.done)
	}
	return nil
}

// TestMissingReportedOnce: a bad fragment is reported to the chain once,
// however often it is read; another fragment gets its own report; a full
// queue drops reports instead of blocking a download.
func TestMissingReportedOnce(t *testing.T) {
	ch := &submitted{done: make(chan struct{})}
	m := NewMissingReporter(ch, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for range 5 {
		m.Report(types.FID{1}, 3, 0)
	}
	m.Report(types.FID{1}, 4, 0)
	for i := range 200 { // more than the queue holds, without a runner
		m.Report(types.FID{2}, 1, uint64(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	<-ch.done
	cancel()
	<-done
	if ch.msgs[0] != (ledger.ReportMissing{FID: types.FID{1}, Column: 3}) || ch.msgs[1] != (ledger.ReportMissing{FID: types.FID{1}, Column: 4}) {
		t.Fatalf("reports: %+v", ch.msgs[:2])
	}
	if n := len(m.queue); n > cap(m.queue) {
		t.Fatalf("queue %d", n)
	}
}
