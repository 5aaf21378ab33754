package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/gateway/scheduler"
	"github.com/deoss/deoss/internal/gateway/work"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// DistChain is what distribution asks of the chain.
type DistChain interface {
	File(ctx context.Context, fid types.FID) (*ledger.File, error)
	Nodes(ctx context.Context) ([]ledger.Node, error)
	// Submit sends a message signed by the gateway and waits for its block.
	Submit(ctx context.Context, m ledger.Msg) error
}

// DistConfig tunes distribution.
type DistConfig struct {
	// PushTimeout bounds pushing one fragment to a node.
	PushTimeout time.Duration
	// ReportDeadline is how long a node has, after its column was pushed, to
	// report it on chain before the column moves elsewhere.
	ReportDeadline time.Duration
	// Interval is how often pending files are looked at.
	Interval time.Duration
	// Files is how many files are advanced at once.
	Files int
}

// Distributor moves files from processed to cleaned: it declares them,
// pushes their columns, replaces nodes that fail or do not report, and frees
// the work area once the chain says stored.
type Distributor struct {
	cfg   DistConfig
	chain DistChain
	sched *scheduler.Scheduler
	work  *work.Area
	queue *pipeline.Queue
	key   *auth.Key
	hc    *http.Client
	log   *slog.Logger
	m     *metrics

	mu       sync.Mutex
	inFlight map[string]bool
	pushed   map[colKey]pushState
	backoff  map[string]retry // files whose last step failed
}

// retry is when a file that failed may be tried again, and how long the next
// wait is.
type retry struct {
	at   time.Time
	wait time.Duration
}

type colKey struct {
	fid types.FID
	col int
}

type pushState struct {
	node    types.Address
	at      time.Time
	charged bool // the missed report was charged; only the move remains
}

// NewDistributor assembles a distributor; it starts nothing.
func NewDistributor(cfg DistConfig, ch DistChain, s *scheduler.Scheduler, w *work.Area, q *pipeline.Queue, key *auth.Key, log *slog.Logger) *Distributor {
	if cfg.PushTimeout == 0 {
		cfg.PushTimeout = time.Minute
	}
	if cfg.ReportDeadline == 0 {
		cfg.ReportDeadline = 2 * time.Minute
	}
	if cfg.Interval == 0 {
		cfg.Interval = 200 * time.Millisecond
	}
	if cfg.Files == 0 {
		cfg.Files = 4
	}
	return &Distributor{cfg: cfg, chain: ch, sched: s, work: w, queue: q, key: key, log: log, m: newMetrics(q),
		hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}, inFlight: map[string]bool{}, pushed: map[colKey]pushState{}, backoff: map[string]retry{}}
}

// Run advances pending files until ctx ends.
func (d *Distributor) Run(ctx context.Context) {
	sem := make(chan struct{}, d.cfg.Files)
	for {
		recs, err := d.queue.Pending()
		if err != nil {
			d.log.Error("pipeline queue", "err", err)
		}
		for _, r := range recs {
			k := string(r.FID[:]) + string(r.Owner[:])
			d.mu.Lock()
			busy := d.inFlight[k] || time.Now().Before(d.backoff[k].at)
			if !busy {
				d.inFlight[k] = true
			}
			d.mu.Unlock()
			if busy {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			go func() {
				defer func() {
					<-sem
					d.mu.Lock()
					delete(d.inFlight, k)
					d.mu.Unlock()
				}()
				err := d.advance(ctx, r)
				d.mu.Lock()
				if err == nil {
					delete(d.backoff, k)
				} else {
					b := d.backoff[k]
					b.wait = min(max(2*b.wait, 500*time.Millisecond), 30*time.Second)
					b.at = time.Now().Add(b.wait)
					d.backoff[k] = b
				}
				d.mu.Unlock()
				if ctx.Err() != nil {
					return
				}
				note := ""
				if err != nil {
					note = err.Error()
					d.log.Warn("file not advanced; will retry", "fid", r.FID, "state", r.State, "err", err)
				}
				if note != r.Note {
					if err := d.queue.SetNote(r.FID, r.Owner, note); err != nil && !errors.Is(err, pipeline.ErrNotFound) {
						d.log.Warn("pipeline note", "fid", r.FID, "err", err)
					}
				}
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(d.cfg.Interval):
		}
	}
}

func (d *Distributor) setState(r pipeline.Record, state string) error {
	if r.State == state {
		return nil
	}
	d.log.Info("file state", "fid", r.FID, "state", state)
	return d.queue.SetState(r.FID, r.Owner, state, time.Now())
}

// advance takes one step (or several) for a file.
func (d *Distributor) advance(ctx context.Context, r pipeline.Record) error {
	if r.State == pipeline.Stored {
		if err := d.work.Remove(r.FID); err != nil {
			return err
		}
		return d.setState(r, pipeline.Cleaned)
	}
	l, err := d.work.Layout(r.FID)
	if err != nil {
		return fmt.Errorf("work area: %w", err)
	}
	f, err := d.chain.File(ctx, r.FID)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return d.declare(ctx, r, l)
	case err != nil:
		return err
	}
	if f.State == ledger.FileStored {
		if r.State == pipeline.Distributing {
			d.m.reportWait.Observe(time.Since(r.Updated).Seconds())
		}
		if !owns(f, r.Owner) {
			// Stored for someone else: this owner is added, no second copy.
			if err := d.chain.Submit(ctx, d.declareMsg(r, l, [types.TotalShards]types.Address{})); err != nil {
				return err
			}
		}
		return d.setState(r, pipeline.Stored)
	}
	if f.Gateway != d.key.Address() {
		return fmt.Errorf("another gateway's order for %s is pending", r.FID)
	}
	if err := d.setState(r, pipeline.Distributing); err != nil {
		return err
	}
	return d.distribute(ctx, f, l)
}

func owns(f *ledger.File, a types.Address) bool {
	for _, o := range f.Owners {
		if o.Address == a {
			return true
		}
	}
	return false
}

func (d *Distributor) declareMsg(r pipeline.Record, l *types.Layout, cols [types.TotalShards]types.Address) ledger.Msg {
	return ledger.Msg{DeclareFile: &ledger.DeclareFile{Owner: r.Owner, FID: r.FID, Name: r.Name, Territory: r.Territory, Layout: *l, Columns: cols}}
}

// declare picks 12 nodes and declares the order. With fewer than 12 eligible
// nodes the file waits, processed, and is tried again.
func (d *Distributor) declare(ctx context.Context, r pipeline.Record, l *types.Layout) error {
	var cols [types.TotalShards]types.Address
	if len(l.Segments) > 0 {
		nodes, err := d.candidates(ctx)
		if err != nil {
			return err
		}
		picked, err := d.sched.Pick(nodes, ledger.ColumnBytes(l), types.TotalShards, nil)
		if err != nil {
			return err
		}
		copy(cols[:], picked)
	}
	if err := d.chain.Submit(ctx, d.declareMsg(r, l, cols)); err != nil {
		return err
	}
	return d.setState(r, pipeline.Declared)
}

func (d *Distributor) candidates(ctx context.Context) ([]scheduler.Node, error) {
	ns, err := d.chain.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]scheduler.Node, len(ns))
	for i, n := range ns {
		out[i] = scheduler.Node{Address: n.Address, Free: n.Free(), Active: n.State == ledger.NodeActive}
	}
	return out, nil
}

// distribute pushes every unreported column to its node, in parallel, and
// moves the columns whose push failed or whose report is overdue.
func (d *Distributor) distribute(ctx context.Context, f *ledger.File, l *types.Layout) error {
	nodes, err := d.chain.Nodes(ctx)
	if err != nil {
		return err
	}
	endpoint := map[types.Address]string{}
	for _, n := range nodes {
		endpoint[n.Address] = n.Endpoint
	}
	// Replacements chosen in this round, by any column: two failing columns
	// must not move to the same node.
	var avoidMu sync.Mutex
	avoid := map[types.Address]bool{}
	for _, c := range f.Columns {
		avoid[c.Node] = true
	}
	// Columns fail independently: one column's trouble must not cancel the
	// others' pushes (a cancelled push would then be charged to a healthy
	// node).
	var wg sync.WaitGroup
	errs := make([]error, types.TotalShards)
	for j, c := range f.Columns {
		if !c.Reported {
			wg.Go(func() { errs[j] = d.column(ctx, f, l, j, endpoint[c.Node], &avoidMu, avoid) })
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// column pushes column j to its node, or, when the push fails or the report
// is overdue, charges the node and moves the column.
func (d *Distributor) column(ctx context.Context, f *ledger.File, l *types.Layout, j int, endpoint string, avoidMu *sync.Mutex, avoid map[types.Address]bool) error {
	node := f.Columns[j].Node
	k := colKey{f.FID, j}
	d.mu.Lock()
	ps, ok := d.pushed[k]
	d.mu.Unlock()
	switch {
	case ok && ps.node == node && time.Since(ps.at) < d.cfg.ReportDeadline:
		return nil // pushed; waiting for its report
	case ok && ps.node == node:
		// One missed report is one failure, however many rounds it takes
		// to find the column another node.
		if !ps.charged {
			d.log.Warn("report overdue; moving the column", "fid", f.FID, "column", j, "node", node)
			d.charge(node)
			d.mu.Lock()
			ps.charged = true
			d.pushed[k] = ps
			d.mu.Unlock()
		}
		return d.reassign(ctx, f, j, avoidMu, avoid)
	}
	start := time.Now()
	if seg, err := d.pushColumn(ctx, endpoint, f.FID, l, j); err != nil {
		if ctx.Err() != nil {
			return ctx.Err() // we stopped, not the node
		}
		var ne *nodeError
		if errors.As(err, &ne) && ne.Code == "hash_mismatch" {
			// The node checked our bytes against the order: our copy may
			// be what is damaged. Then it is healed, and no node charged.
			if ok, verr := d.work.Verify(f.FID, l, seg, j); verr == nil && !ok {
				d.log.Warn("damaged fragment in the work area; rebuilding it", "fid", f.FID, "segment", seg, "column", j)
				if rerr := d.work.Repair(f.FID, l, seg, j); rerr != nil {
					return fmt.Errorf("work area: segment %d column %d: %w", seg, j, rerr)
				}
				return fmt.Errorf("segment %d column %d rebuilt in the work area; pushing again", seg, j)
			}
		}
		d.log.Warn("push failed; moving the column", "fid", f.FID, "column", j, "node", node, "err", err)
		d.m.pushes.WithLabelValues("failed").Inc()
		d.charge(node)
		return d.reassign(ctx, f, j, avoidMu, avoid)
	}
	bytes := int64(len(l.Segments)) * types.FragmentSize
	d.sched.Success(node, bytes, time.Since(start))
	d.m.pushes.WithLabelValues("ok").Inc()
	d.m.bytesOut.Add(float64(bytes))
	d.mu.Lock()
	d.pushed[k] = pushState{node: node, at: time.Now()}
	d.mu.Unlock()
	return nil
}

// charge records a node's failure (and a cooldown it causes).
func (d *Distributor) charge(node types.Address) {
	if d.sched.Failure(node) {
		d.m.cooldowns.Inc()
		d.log.Warn("node sent to the cooldown pool", "node", node)
	}
}

// reassign moves column j of a pending file to a node not in avoid (the
// file's nodes and this round's other replacements), and adds it there.
func (d *Distributor) reassign(ctx context.Context, f *ledger.File, j int, mu *sync.Mutex, avoid map[types.Address]bool) error {
	cands, err := d.candidates(ctx)
	if err != nil {
		return err
	}
	mu.Lock()
	picked, err := d.sched.Pick(cands, ledger.ColumnBytes(&f.Layout), 1, avoid)
	if err == nil {
		avoid[picked[0]] = true
	}
	mu.Unlock()
	if err != nil {
		return err
	}
	err = d.chain.Submit(ctx, ledger.Msg{ReassignColumn: &ledger.ReassignColumn{FID: f.FID, Column: uint8(j), Node: picked[0]}})
	if err == nil {
		d.m.reassigned.Inc()
	}
	d.mu.Lock()
	delete(d.pushed, colKey{f.FID, j})
	d.mu.Unlock()
	return err // the next round pushes to the new node
}

// pushColumn stores every fragment of column j on the node at endpoint; on
// failure it says which segment failed.
func (d *Distributor) pushColumn(ctx context.Context, endpoint string, fid types.FID, l *types.Layout, j int) (uint64, error) {
	if endpoint == "" {
		return 0, errors.New("node has no endpoint on chain")
	}
	for s := range uint64(len(l.Segments)) {
		if err := d.pushFragment(ctx, endpoint, fid, s, j); err != nil {
			return s, fmt.Errorf("segment %d: %w", s, err)
		}
	}
	return 0, nil
}

// nodeError is a node's refusal, with its error code.
type nodeError struct {
	Status int
	Code   string
	Msg    string
}

func (e *nodeError) Error() string {
	return fmt.Sprintf("node answered %d %s: %s", e.Status, e.Code, e.Msg)
}

func (d *Distributor) pushFragment(ctx context.Context, endpoint string, fid types.FID, s uint64, j int) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.PushTimeout)
	defer cancel()
	body, err := d.work.Fragment(fid, s, j)
	if err != nil {
		return err
	}
	defer body.Close()
	req, err := http.NewRequestWithContext(ctx, "PUT", fmt.Sprintf("%s/fragment/%s/%d/%d", endpoint, fid, j, s), body)
	if err != nil {
		return err
	}
	req.ContentLength = types.FragmentSize
	if err := auth.SignRequest(req, d.key, time.Minute); err != nil {
		return err
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		var body struct {
			Code  string `json:"code"`
			Error string `json:"error"`
		}
		if json.Unmarshal(msg, &body) != nil {
			body.Error = string(bytes.TrimSpace(msg))
		}
		return &nodeError{Status: resp.StatusCode, Code: body.Code, Msg: body.Error}
	}
	return nil
}
