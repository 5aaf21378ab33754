package distribute

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/backoff"
	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/gateway/scheduler"
	"github.com/deoss/deoss/internal/gateway/work"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/nodeapi"
	"github.com/deoss/deoss/internal/tlsutil"
	"github.com/deoss/deoss/internal/types"
)

// Chain is what distribution asks of the chain.
type Chain interface {
	File(ctx context.Context, fid types.FID) (*ledger.File, error)
	// Owner returns one owner of a file, or ledger.ErrNotFound.
	Owner(ctx context.Context, fid types.FID, a types.Address) (*ledger.Owner, error)
	Nodes(ctx context.Context) ([]ledger.Node, error)
	// Territory returns an owner's territory, or ledger.ErrNotFound.
	Territory(ctx context.Context, owner types.Address, name string) (*ledger.Territory, error)
	// Submit sends a message signed by the gateway and waits for its block.
	Submit(ctx context.Context, m ledger.Msg) error
}

// Config tunes distribution. Zero values take the defaults.
type Config struct {
	// PushTimeout bounds pushing one fragment to a node (default 1 min).
	PushTimeout time.Duration
	// ReportDeadline is how long a node has, after its column was pushed, to
	// report it on chain before the column moves elsewhere (default 2 min).
	ReportDeadline time.Duration
	// Files is how many files are advanced at once (default 4).
	Files int
	// MaxWait is the longest the distributor sleeps without a wake-up: a
	// safety net for a chain event it missed (default 5 s).
	MaxWait time.Duration
	// Now is the clock (default time.Now); deadlines and back-offs follow it.
	Now func() time.Time
	// TLS verifies nodes that speak https (nil: the system's roots).
	TLS *tls.Config
	// GiveUp is how long a file whose territory cannot take it (full,
	// expired, gone) is retried before the gateway gives up on it: state
	// failed, its copy freed (default 24 h).
	GiveUp time.Duration
}

func (c *Config) defaults() {
	if c.PushTimeout == 0 {
		c.PushTimeout = time.Minute
	}
	if c.ReportDeadline == 0 {
		c.ReportDeadline = 2 * time.Minute
	}
	if c.GiveUp == 0 {
		c.GiveUp = 24 * time.Hour
	}
	if c.Files == 0 {
		c.Files = 4
	}
	if c.MaxWait == 0 {
		c.MaxWait = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Distributor moves files from processed to cleaned: it declares them,
// pushes their columns, replaces nodes that fail or do not report, frees the
// work area once the chain says stored, and carries out deletes. One file
// (of one owner) is worked on by one goroutine at a time, so a delete is
// ordered with declaring and distributing.
type Distributor struct {
	cfg   Config
	chain Chain
	sched *scheduler.Scheduler
	work  *work.Area
	queue *pipeline.Queue
	key   *auth.Key
	hc    *http.Client
	log   *slog.Logger
	m     *Metrics
	wake  chan struct{}

	mu       sync.Mutex
	inFlight map[string]bool
	pushed   map[colKey]pushState
	backoff  map[string]retry // files whose last step failed
}

// retry is when a file that failed may be tried again, after how many
// failures in a row.
type retry struct {
	at       time.Time
	failures int
}

// retries is the back-off of a file whose step failed.
var retries = backoff.Policy{Base: 500 * time.Millisecond, Max: 30 * time.Second}

type colKey struct {
	fid types.FID
	col int
}

type pushState struct {
	node    types.Address
	at      time.Time
	charged bool // the missed report was charged; only the move remains
}

// New assembles a distributor; it starts nothing. Its metrics go to reg.
func New(cfg Config, ch Chain, s *scheduler.Scheduler, w *work.Area, q *pipeline.Queue, key *auth.Key, reg prometheus.Registerer, log *slog.Logger) *Distributor {
	cfg.defaults()
	return &Distributor{cfg: cfg, chain: ch, sched: s, work: w, queue: q, key: key, log: log, m: newMetrics(reg),
		hc:   &http.Client{Transport: tlsutil.Transport(cfg.TLS, 4)},
		wake: make(chan struct{}, 1), inFlight: map[string]bool{}, pushed: map[colKey]pushState{}, backoff: map[string]retry{}}
}

// Wake makes the distributor look at its files now (a block with file
// events came, say). It never blocks.
func (d *Distributor) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run advances files until ctx ends, and returns once every goroutine it
// started has stopped. It looks at the queue when a record changes, when
// Wake is called, when a back-off or a report deadline falls due, and at
// the latest after MaxWait.
func (d *Distributor) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, d.cfg.Files)
	for {
		changed := d.queue.Changed() // before reading: a change meanwhile wakes us
		recs, err := d.queue.Pending()
		if err != nil {
			d.log.Error("pipeline queue", "err", err)
		}
		now := d.cfg.Now()
		next := now.Add(d.cfg.MaxWait)
		for _, r := range recs {
			k := string(r.FID[:]) + string(r.Owner[:])
			d.mu.Lock()
			due := d.backoff[k].at
			busy := d.inFlight[k] || now.Before(due)
			if !busy {
				d.inFlight[k] = true
			} else if now.Before(due) && due.Before(next) {
				next = due
			}
			d.mu.Unlock()
			if busy {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				d.mu.Lock()
				delete(d.inFlight, k)
				d.mu.Unlock()
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				d.step(ctx, k, r)
			})
		}
		d.mu.Lock()
		for _, ps := range d.pushed {
			if dl := ps.at.Add(d.cfg.ReportDeadline); dl.Before(next) {
				next = dl
			}
		}
		d.mu.Unlock()
		timer := time.NewTimer(max(next.Sub(d.cfg.Now()), time.Millisecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-changed:
		case <-d.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// step advances one file once and books the outcome: a back-off after a
// failure, and the note that says why the file waits.
func (d *Distributor) step(ctx context.Context, k string, r pipeline.Record) {
	before := r.State
	err := d.advance1(ctx, &r)
	moved := r.State != before || errors.Is(err, errStale)
	if errors.Is(err, errStale) {
		err = nil
	}
	d.mu.Lock()
	delete(d.inFlight, k)
	if err == nil {
		delete(d.backoff, k)
	} else {
		b := d.backoff[k]
		b.at = d.cfg.Now().Add(retries.Delay(b.failures))
		b.failures++
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
	// The loop may have looked while this file was in flight: a new state
	// is taken on at once, a failure's back-off gets its timer.
	if moved || err != nil {
		d.Wake()
	}
}

// move changes a record's state from the one it was read in. A record that
// moved meanwhile (deleted) is left to the next round: errStale.
func (d *Distributor) move(r *pipeline.Record, state string) error {
	if r.State == state {
		return nil
	}
	err := d.queue.Transition(r.FID, r.Owner, r.State, state, d.cfg.Now())
	if errors.Is(err, pipeline.ErrMoved) || errors.Is(err, pipeline.ErrNotFound) {
		return errStale
	}
	if err == nil {
		d.log.Info("file state", "fid", r.FID, "state", state)
		r.State = state
	}
	return err
}

// ErrForeignLayout: a stored file of the same FID lists other fragment
// hashes than this gateway's copy (a poisoned v1 declaration).
var ErrForeignLayout = errors.New("the file on chain is not this upload")

// endpoints maps the registered nodes to their endpoints.
func (d *Distributor) endpoints(ctx context.Context) (map[types.Address]string, error) {
	nodes, err := d.chain.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	endpoint := make(map[types.Address]string, len(nodes))
	for _, n := range nodes {
		endpoint[n.Address] = n.Endpoint
	}
	return endpoint, nil
}

// readBack reads one fragment of every column back from its node and
// verifies it against this gateway's layout, before the work copy goes: a
// report on chain is a node's claim, and nodes are trusted for nothing. A v2
// column shows one 1 KiB proof chunk (about 2 KiB moved), a v1 column a
// whole fragment.
func (d *Distributor) readBack(ctx context.Context, f *ledger.File, l *types.Layout) error {
	if len(l.Segments) == 0 {
		return nil
	}
	endpoint, err := d.endpoints(ctx)
	if err != nil {
		return err
	}
	errs := make([]error, types.TotalShards)
	var wg sync.WaitGroup
	for j := range types.TotalShards {
		wg.Go(func() {
			seg := j % len(l.Segments)
			ep := endpoint[f.Columns[j].Node]
			if ep == "" {
				errs[j] = fmt.Errorf("column %d: node %s has no endpoint", j, f.Columns[j].Node)
				return
			}
			if err := d.readBack1(ctx, ep, l, seg, j); err != nil {
				errs[j] = fmt.Errorf("read-back of column %d from %s: %w", j, f.Columns[j].Node, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (d *Distributor) readBack1(ctx context.Context, ep string, l *types.Layout, seg, j int) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.PushTimeout)
	defer cancel()
	h := l.Segments[seg].Fragments[j]
	size := int64(l.FragmentLen(seg))
	url := ep + "/fragment/" + h.String()
	var chunk int64
	if l.Version != types.FormatV1 {
		chunk = int64(h[0]) % (size / types.ProofChunk) // spread over the fragment
		url += fmt.Sprintf("/chunk/%d", chunk)
	}
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nodeapi.ReadError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, size+1))
	if err != nil {
		return err
	}
	if l.Version != types.FormatV1 {
		_, err = codec.VerifyChunk(b, size, chunk, h)
		return err
	}
	if int64(len(b)) != size || codec.Sum(l.Version, b) != h {
		return codec.ErrFragmentCorrupt
	}
	return nil
}

// errStale: the record changed under this step; the next round takes it
// from its new state. It is not a failure.
var errStale = errors.New("record changed meanwhile")

// advance1 takes one step (or several) for a file; r.State follows.
func (d *Distributor) advance1(ctx context.Context, r *pipeline.Record) error {
	switch r.State {
	case pipeline.Deleting:
		return d.remove(ctx, r)
	case pipeline.Stored:
		if err := d.freeWork(r.FID); err != nil {
			return err
		}
		return d.move(r, pipeline.Cleaned)
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
			d.m.reportWait.Observe(d.cfg.Now().Sub(r.Updated).Seconds())
		}
		owns, err := d.owns(ctx, f, r.Owner)
		if err != nil {
			return err
		}
		if !owns {
			// Stored for someone else (v1 only: a v2 FID has one owner):
			// this owner is added, no second copy, but only if the stored
			// fragments are this file's. A v1 FID does not bind the
			// fragment hashes, so whoever declared it first may have
			// declared made-up ones (docs/security.md, "Dedup poisoning").
			if !f.Layout.Equal(l) {
				return fmt.Errorf("%w: the chain's record of %s lists other fragments than this upload's; not joining it, the work copy is kept", ErrForeignLayout, r.FID)
			}
			if err := d.chain.Submit(ctx, declareMsg(r, l, [types.TotalShards]types.Address{})); err != nil {
				return err
			}
		}
		// The work copy goes only once the nodes show they hold the bytes.
		if err := d.readBack(ctx, f, l); err != nil {
			return err
		}
		return d.move(r, pipeline.Stored)
	}
	if f.Gateway != d.key.Address() {
		return fmt.Errorf("another gateway's order for %s is pending", r.FID)
	}
	if err := d.move(r, pipeline.Distributing); err != nil {
		return err
	}
	return d.distribute(ctx, f, l)
}

// freeWork removes a file's work copy unless another owner's record of it
// still needs the columns.
func (d *Distributor) freeWork(fid types.FID) error {
	recs, err := d.queue.Records(fid)
	if err != nil {
		return err
	}
	for _, o := range recs {
		switch o.State {
		case pipeline.Processed, pipeline.Declared, pipeline.Distributing:
			return nil
		}
	}
	d.mu.Lock()
	for k := range d.pushed {
		if k.fid == fid {
			delete(d.pushed, k)
		}
	}
	d.mu.Unlock()
	return d.work.Remove(fid)
}

// remove carries out a delete: the owner's copy goes on chain (an order this
// gateway declared, pending or stored, returns its space), then the record
// and, when no other owner's record needs it, the work copy.
func (d *Distributor) remove(ctx context.Context, r *pipeline.Record) error {
	f, err := d.chain.File(ctx, r.FID)
	owns := false
	if err == nil {
		if owns, err = d.owns(ctx, f, r.Owner); err != nil {
			return err
		}
	}
	switch {
	case err == nil && owns:
		if err := d.chain.Submit(ctx, ledger.Msg{DeleteFile: &ledger.DeleteFile{FID: r.FID, Owner: r.Owner}}); err != nil {
			return fmt.Errorf("delete on chain: %w", err)
		}
	case err != nil && !errors.Is(err, ledger.ErrNotFound):
		return err
	}
	if err := d.queue.Remove(r.FID, r.Owner); err != nil {
		return err
	}
	d.log.Info("file deleted", "fid", r.FID, "owner", r.Owner)
	return d.freeWork(r.FID)
}

func declareMsg(r *pipeline.Record, l *types.Layout, cols [types.TotalShards]types.Address) ledger.Msg {
	return ledger.Msg{DeclareFile: &ledger.DeclareFile{Owner: r.Owner, FID: r.FID, Name: r.Name, Territory: r.Territory, Layout: *l, Columns: cols, Private: r.Private}}
}

// declare picks 12 nodes and declares the order. With fewer than 12 eligible
// nodes the file waits, processed, and is tried again.
func (d *Distributor) declare(ctx context.Context, r *pipeline.Record, l *types.Layout) error {
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
	if err := d.chain.Submit(ctx, declareMsg(r, l, cols)); err != nil {
		if why := d.undeclarable(ctx, r, l); why != "" {
			if waited := d.cfg.Now().Sub(r.Updated); waited >= d.cfg.GiveUp {
				return d.giveUp(r, fmt.Sprintf("gave up after %s: %s", waited.Round(time.Second), why))
			}
			return fmt.Errorf("%s (retried for up to %s): %w", why, d.cfg.GiveUp, err)
		}
		return err
	}
	return d.move(r, pipeline.Declared)
}

// undeclarable says why the owner's territory cannot take the file, or ""
// when it could (the refusal was of another kind: nodes, the chain).
func (d *Distributor) undeclarable(ctx context.Context, r *pipeline.Record, l *types.Layout) string {
	t, err := d.chain.Territory(ctx, r.Owner, r.Territory)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return fmt.Sprintf("the owner has no territory %q", r.Territory)
	case err != nil:
		return ""
	case !t.Active(d.cfg.Now().Unix()):
		return fmt.Sprintf("territory %q expired", r.Territory)
	case t.Free() < l.PaddedSize():
		return fmt.Sprintf("territory %q has %d bytes free, the file takes %d", r.Territory, t.Free(), l.PaddedSize())
	}
	return ""
}

// giveUp frees an undeclarable file's copy and marks it failed.
func (d *Distributor) giveUp(r *pipeline.Record, why string) error {
	d.log.Warn("giving up on a file", "fid", r.FID, "why", why)
	if err := d.queue.Fail(r.FID, r.Owner, r.State, d.cfg.Now(), why); err != nil {
		if errors.Is(err, pipeline.ErrMoved) || errors.Is(err, pipeline.ErrNotFound) {
			return errStale
		}
		return err
	}
	r.State, r.Note = pipeline.Failed, why
	return d.freeWork(r.FID)
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
	endpoint, err := d.endpoints(ctx)
	if err != nil {
		return err
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
// is overdue, charges the node (if it is at fault) and moves the column.
func (d *Distributor) column(ctx context.Context, f *ledger.File, l *types.Layout, j int, endpoint string, avoidMu *sync.Mutex, avoid map[types.Address]bool) error {
	node := f.Columns[j].Node
	k := colKey{f.FID, j}
	d.mu.Lock()
	ps, ok := d.pushed[k]
	d.mu.Unlock()
	switch {
	case ok && ps.node == node && d.cfg.Now().Sub(ps.at) < d.cfg.ReportDeadline:
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
	case endpoint == "":
		// The node cannot be reached at all: move the column, but a missing
		// endpoint is no failure of a push.
		d.log.Warn("node has no endpoint on chain; moving the column", "fid", f.FID, "column", j, "node", node)
		return d.reassign(ctx, f, j, avoidMu, avoid)
	}
	start := time.Now()
	seg, err := d.pushColumn(ctx, node, endpoint, f.FID, l, j)
	if err == nil {
		bytes := int64(l.ColumnBytes())
		d.sched.Success(node, bytes, time.Since(start))
		d.m.pushes.WithLabelValues("ok").Inc()
		d.m.bytesOut.Add(float64(bytes))
		d.mu.Lock()
		d.pushed[k] = pushState{node: node, at: d.cfg.Now()}
		d.mu.Unlock()
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err() // we stopped, not the node
	}
	var ne *nodeapi.Error
	if errors.As(err, &ne) && ne.Code == nodeapi.HashMismatch {
		// The node checked our bytes against the order: our copy may be
		// what is damaged. Then it is healed, and no node charged.
		if ok, verr := d.work.Verify(f.FID, l, seg, j); verr == nil && !ok {
			d.log.Warn("damaged fragment in the work area; rebuilding it", "fid", f.FID, "segment", seg, "column", j)
			if rerr := d.work.Repair(f.FID, l, seg, j); rerr != nil {
				return fmt.Errorf("work area: segment %d column %d: %w", seg, j, rerr)
			}
			return fmt.Errorf("segment %d column %d rebuilt in the work area; pushing again", seg, j)
		}
	}
	if !NodeAtFault(err) {
		d.m.pushes.WithLabelValues("not_charged").Inc()
		return fmt.Errorf("column %d: %w", j, err) // tried again later, on the same node
	}
	d.log.Warn("push failed; moving the column", "fid", f.FID, "column", j, "node", node, "err", err)
	d.m.pushes.WithLabelValues("failed").Inc()
	d.charge(node)
	return d.reassign(ctx, f, j, avoidMu, avoid)
}

// localError is a push that failed on the gateway's side: its work area,
// building or signing the request.
type localError struct{ error }

func (e localError) Unwrap() error { return e.error }

// NodeAtFault says whether a failed push is the node's doing: it could not
// be reached, timed out, failed inside (5xx), or refused bytes that are
// right. Failures on the gateway's side, and refusals that follow from the
// file's state (the order is gone, the column moved, the file is stored) or
// from the request itself, are not.
func NodeAtFault(err error) bool {
	if errors.As(err, new(localError)) || errors.Is(err, context.Canceled) {
		return false
	}
	var ne *nodeapi.Error
	if !errors.As(err, &ne) {
		return true // refused, reset or timed out
	}
	if ne.Status >= 500 {
		return true
	}
	switch ne.Code {
	case nodeapi.HashMismatch, nodeapi.Conflict, nodeapi.Body:
		return true // our copy verified (or the body was cut): the node is wrong
	case nodeapi.NoOrder, nodeapi.NotAssigned, nodeapi.NoSegment, nodeapi.NotPending,
		nodeapi.Unauthenticated, nodeapi.NotAGateway, nodeapi.BadFID, nodeapi.BadPosition,
		nodeapi.BadSize, nodeapi.TooLarge, nodeapi.RateLimited:
		return false
	}
	return true // an answer no node should give
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
func (d *Distributor) pushColumn(ctx context.Context, node types.Address, endpoint string, fid types.FID, l *types.Layout, j int) (uint64, error) {
	for s := range uint64(len(l.Segments)) {
		if err := d.pushFragment(ctx, node, endpoint, fid, s, j, int64(l.FragmentLen(int(s)))); err != nil {
			return s, fmt.Errorf("segment %d: %w", s, err)
		}
	}
	return 0, nil
}

func (d *Distributor) pushFragment(ctx context.Context, node types.Address, endpoint string, fid types.FID, s uint64, j int, size int64) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.PushTimeout)
	defer cancel()
	body, err := d.work.Fragment(fid, s, j)
	if err != nil {
		return localError{fmt.Errorf("work area: %w", err)}
	}
	defer body.Close()
	req, err := http.NewRequestWithContext(ctx, "PUT", fmt.Sprintf("%s/fragment/%s/%d/%d", endpoint, fid, j, s), body)
	if err != nil {
		return localError{err}
	}
	req.ContentLength = size
	// Signed for this node only; the body goes unhashed (UNSIGNED-PAYLOAD):
	// the node checks it against the fragment hash on chain instead.
	if err := auth.SignRequest(req, d.key, node, time.Minute); err != nil {
		return localError{err}
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return nodeapi.ReadError(resp)
	}
	return nil
}

// owns reports whether a owns f: from the owners the file's record lists,
// or, when it lists only the first of many, from the chain.
func (d *Distributor) owns(ctx context.Context, f *ledger.File, a types.Address) (bool, error) {
	if f.HasOwner(a) {
		return true, nil
	}
	if f.OwnerCount <= uint64(len(f.Owners)) {
		return false, nil
	}
	_, err := d.chain.Owner(ctx, f.FID, a)
	if errors.Is(err, ledger.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
