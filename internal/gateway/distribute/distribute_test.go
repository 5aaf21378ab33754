package distribute

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/gateway/scheduler"
	"github.com/deoss/deoss/internal/gateway/work"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/nodeapi"
	"github.com/deoss/deoss/internal/types"
)

// memChain is a ledger in memory behind the Chain interface: each message
// is a block of its own. Hooks let a test act while a message is submitted.
type memChain struct {
	t  testing.TB
	mu sync.Mutex
	kv *ledger.MemKV
	l  *ledger.Ledger
	h  int64
	gw *auth.Key
	// beforeSubmit runs before a gateway message is applied (outside the
	// lock); an error fails the submit.
	beforeSubmit func(ctx context.Context, m ledger.Msg) error
}

const chainID = "deoss-dist-test"

func newMemChain(t testing.TB, gw *auth.Key, accounts ...types.Address) *memChain {
	c := &memChain{t: t, kv: ledger.NewMemKV(), gw: gw}
	c.l = ledger.New(c.kv, nil)
	g := &ledger.Genesis{ChainID: chainID, Dev: true, Params: ledger.DefaultParams()}
	for _, a := range append(accounts, gw.Address()) {
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: a, Balance: 1 << 40})
	}
	if err := c.l.InitChain(g); err != nil {
		t.Fatal(err)
	}
	c.commit()
	return c
}

func (c *memChain) commit() {
	changes, _ := c.l.Commit()
	c.kv.Apply(changes)
}

// as applies m sent by k in a block of its own.
func (c *memChain) as(k *auth.Key, m ledger.Msg) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var acc ledger.Account
	if b, err := c.l.Query("account/" + k.Address().String()); err == nil {
		json.Unmarshal(b, &acc)
	}
	tx := ledger.Tx{ChainID: chainID, Nonce: acc.Nonce, Msg: m}
	tx.Sign(k)
	c.h++
	c.l.BeginBlock(c.h, 1_700_000_000+c.h, nil)
	res := c.l.DeliverTx(tx.Encode())
	c.l.EndBlock()
	c.commit()
	if res.Code != ledger.CodeOK {
		return ledger.FromCode(res.Code, res.Log)
	}
	return nil
}

func (c *memChain) must(k *auth.Key, m ledger.Msg) {
	c.t.Helper()
	if err := c.as(k, m); err != nil {
		c.t.Fatalf("%s: %v", m.Name(), err)
	}
}

func (c *memChain) Submit(ctx context.Context, m ledger.Msg) error {
	if c.beforeSubmit != nil {
		if err := c.beforeSubmit(ctx, m); err != nil {
			return err
		}
	}
	return c.as(c.gw, m)
}

func query[T any](c *memChain, path string) (*T, error) {
	c.mu.Lock()
	b, err := c.l.Query(path)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var v T
	return &v, json.Unmarshal(b, &v)
}

func (c *memChain) File(_ context.Context, fid types.FID) (*ledger.File, error) {
	return query[ledger.File](c, "file/"+fid.String())
}

func (c *memChain) Owner(_ context.Context, fid types.FID, a types.Address) (*ledger.Owner, error) {
	return query[ledger.Owner](c, "owner/"+fid.String()+"/"+a.String())
}

func (c *memChain) Nodes(context.Context) ([]ledger.Node, error) {
	ns, err := query[[]ledger.Node](c, "nodes")
	if err != nil {
		return nil, err
	}
	return *ns, nil
}

// fakeNode answers fragment pushes the way a test says.
type fakeNode struct {
	key    *auth.Key
	srv    *httptest.Server
	answer atomic.Value  // string: "ok", a nodeapi code, "500"
	pushes *atomic.Int64 // shared by the env's nodes
	pushed chan struct{} // shared; gets a value (if room) on each push
	lies   atomic.Bool   // reads back other bytes than it was given

	mu   sync.Mutex
	held map[types.Hash][]byte // what was pushed, by its v1 and v2 hash
}

func (n *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == "GET" {
		n.serveRead(w, r)
		return
	}
	n.pushes.Add(1)
	select {
	case n.pushed <- struct{}{}:
	default:
	}
	body, _ := io.ReadAll(r.Body)
	switch a := n.answer.Load().(string); a {
	case "ok":
		n.mu.Lock()
		if n.held == nil {
			n.held = map[types.Hash][]byte{}
		}
		n.held[codec.Sum(types.FormatV1, body)] = body
		n.held[codec.Sum(types.FormatV2, body)] = body
		n.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	case "500":
		http.Error(w, `{"code":"internal","error":"disk on fire"}`, http.StatusInternalServerError)
	default:
		status := map[string]int{nodeapi.NoOrder: 404, nodeapi.NotAssigned: 403, nodeapi.NotPending: 409}[a]
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"code":%q,"error":"as the test says"}`, a)
	}
}

// serveRead answers the distributor's read-back: a whole fragment or a
// proof chunk, of the bytes pushed (or, lying, of others).
func (n *fakeNode) serveRead(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/fragment/"), "/")
	h, _ := types.ParseHash(parts[0])
	n.mu.Lock()
	b := bytes.Clone(n.held[h])
	n.mu.Unlock()
	if b == nil {
		http.Error(w, `{"code":"not_found","error":"no such fragment"}`, http.StatusNotFound)
		return
	}
	if n.lies.Load() {
		for i := range b {
			b[i] ^= 0x55
		}
	}
	if len(parts) == 3 && parts[1] == "chunk" {
		k, _ := strconv.ParseInt(parts[2], 10, 64)
		ob, _ := codec.Outboard(b)
		p, err := codec.SliceChunk(bytes.NewReader(b), ob, k)
		if err != nil {
			http.Error(w, `{"code":"bad_range","error":"no such chunk"}`, http.StatusBadRequest)
			return
		}
		w.Write(p)
		return
	}
	w.Write(b)
}

// env is a distributor over a ledger in memory, 14 fake nodes, a work area
// holding one encoded file and a queue with its record.
type env struct {
	t       *testing.T
	chain   *memChain
	user    *auth.Key
	nodes   map[types.Address]*fakeNode
	work    *work.Area
	workDir string
	queue   *pipeline.Queue
	sched   *scheduler.Scheduler
	fid     types.FID
	clock   *fakeClock
	d       *Distributor
	pushes  atomic.Int64
	pushed  chan struct{}
	// mallory and her gateway are funded strangers.
	mallory, malGW *auth.Key
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// encoded encodes one 1-segment file of each format version once for the
// package's tests; each test links its columns into its own work area.
func encoded(t *testing.T, v uint8) (string, types.FID) {
	encodeMu.Lock()
	defer encodeMu.Unlock()
	if e, ok := encodedFiles[v]; ok {
		return e.dir, e.fid
	}
	if encodeRoot == "" {
		dir, err := os.MkdirTemp("", "deoss-dist-")
		if err != nil {
			t.Fatal(err)
		}
		encodeRoot = dir
	}
	a, _ := work.Open(filepath.Join(encodeRoot, fmt.Sprint(v)))
	opts := []codec.EncodeOption{codec.WithFormat(v)}
	if v == types.FormatV2 {
		opts = append(opts, codec.WithOwner(testUser().Address()))
	}
	res, err := a.Encode(context.Background(), bytes.NewReader(bytes.Repeat([]byte("distribute me "), 1000)), opts...)
	if err != nil {
		t.Fatal(err)
	}
	e := encodedFile{filepath.Join(encodeRoot, fmt.Sprint(v), res.FID.String()), res.FID}
	encodedFiles[v] = e
	return e.dir, e.fid
}

type encodedFile struct {
	dir string
	fid types.FID
}

var (
	encodeMu     sync.Mutex
	encodeRoot   string
	encodedFiles = map[uint8]encodedFile{}
)

// testUser owns the package's test file: a v2 FID binds its owner.
var testUser = sync.OnceValue(func() *auth.Key {
	k, err := auth.FromSeed(bytes.Repeat([]byte{42}, 32))
	if err != nil {
		panic(err)
	}
	return k
})

func TestMain(m *testing.M) {
	code := m.Run()
	if encodeRoot != "" {
		os.RemoveAll(encodeRoot)
	}
	os.Exit(code)
}

func newEnv(t *testing.T) *env { return newEnvVersion(t, types.FormatV2) }

// newEnvVersion is newEnv with a file of format version v.
func newEnvVersion(t *testing.T, v uint8) *env {
	src, fid := encoded(t, v)
	root := t.TempDir()
	dst := filepath.Join(root, "work", fid.String())
	os.MkdirAll(dst, 0o700)
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		if err := os.Link(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	gw, _ := auth.Generate()
	user := testUser()
	e := &env{t: t, user: user, nodes: map[types.Address]*fakeNode{}, fid: fid, clock: &fakeClock{now: time.Unix(1_800_000_000, 0)},
		pushed: make(chan struct{}, 1)}
	var keys []*auth.Key
	e.mallory, _ = auth.Generate()
	e.malGW, _ = auth.Generate()
	addrs := []types.Address{user.Address(), e.mallory.Address(), e.malGW.Address()}
	for range 14 {
		k, _ := auth.Generate()
		keys = append(keys, k)
		addrs = append(addrs, k.Address())
	}
	e.chain = newMemChain(t, gw, addrs...)
	e.chain.must(gw, ledger.Msg{RegisterGateway: &ledger.RegisterGateway{Endpoint: "http://gateway.invalid"}})
	for _, k := range keys {
		n := &fakeNode{key: k, pushes: &e.pushes, pushed: e.pushed}
		n.answer.Store("ok")
		n.srv = httptest.NewServer(n)
		t.Cleanup(n.srv.Close)
		e.nodes[k.Address()] = n
		e.chain.must(k, ledger.Msg{RegisterNode: &ledger.RegisterNode{Endpoint: n.srv.URL, Capacity: 1 << 40, Stake: 1000}})
	}
	e.chain.must(user, ledger.Msg{BuyTerritory: &ledger.BuyTerritory{Name: "home", GiB: 1, Days: 30}})
	e.chain.must(user, ledger.Msg{Authorize: &ledger.Authorize{Gateway: gw.Address()}})
	var err error
	e.workDir = filepath.Join(root, "work")
	if e.work, err = work.Open(e.workDir); err != nil {
		t.Fatal(err)
	}
	if e.queue, err = pipeline.Open(root); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.queue.Close() })
	l, _ := e.work.Layout(fid)
	if _, err := e.queue.Add(pipeline.Record{FID: fid, Owner: user.Address(), Name: "f", Territory: "home", Size: l.Size, Updated: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	e.sched = scheduler.New(scheduler.Config{}, e.clock.Now)
	e.d = New(Config{Now: e.clock.Now, ReportDeadline: time.Minute}, e.chain, e.sched, e.work, e.queue, gw, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return e
}

// record is the file's record in the queue.
func (e *env) record() *pipeline.Record {
	e.t.Helper()
	r, err := e.queue.Get(e.fid, e.user.Address())
	if err != nil {
		e.t.Fatalf("record: %v", err)
	}
	return r
}

// step advances the file once, as the Run loop would.
func (e *env) step() error {
	r := e.record()
	err := e.d.advance1(context.Background(), r)
	if errors.Is(err, errStale) {
		return nil
	}
	return err
}

func (e *env) file() *ledger.File {
	e.t.Helper()
	f, err := e.chain.File(context.Background(), e.fid)
	if err != nil {
		e.t.Fatalf("file on chain: %v", err)
	}
	return f
}

// failures is how many failures the scheduler holds against each node.
func (e *env) failures() map[types.Address]float64 {
	out := map[types.Address]float64{}
	for _, s := range e.sched.Scores() {
		if s.Failures > 0 {
			out[s.Address] = s.Failures
		}
	}
	return out
}

// reportAll makes every assigned node report its column.
func (e *env) reportAll() {
	for j, c := range e.file().Columns {
		if !c.Reported {
			e.chain.must(e.nodes[c.Node].key, ledger.Msg{ReportColumn: &ledger.ReportColumn{FID: e.fid, Column: uint8(j)}})
		}
	}
}

func (e *env) territory() *ledger.Territory {
	e.t.Helper()
	t, err := query[ledger.Territory](e.chain, "territory/"+e.user.Address().String()+"/home")
	if err != nil {
		e.t.Fatal(err)
	}
	return t
}

func (e *env) setAll(answer string) {
	for _, n := range e.nodes {
		n.answer.Store(answer)
	}
}

// TestDistributeToCleaned: declared, pushed, reported, stored, cleaned; the
// work copy is gone and no node was charged.
func TestDistributeToCleaned(t *testing.T) {
	e := newEnv(t)
	for _, want := range []string{pipeline.Declared, pipeline.Distributing} {
		if err := e.step(); err != nil || e.record().State != want {
			t.Fatalf("step to %s: %v (%s)", want, err, e.record().State)
		}
	}
	e.reportAll()
	for _, want := range []string{pipeline.Stored, pipeline.Cleaned} {
		if err := e.step(); err != nil || e.record().State != want {
			t.Fatalf("step to %s: %v (%s)", want, err, e.record().State)
		}
	}
	if _, err := e.work.Layout(e.fid); !errors.Is(err, work.ErrNotFound) {
		t.Fatalf("work copy after cleaning: %v", err)
	}
	if f := e.failures(); len(f) != 0 {
		t.Fatalf("nodes charged: %v", f)
	}
}

// TestChargingRules: a push that fails on the node's side (refused, 5xx) is
// charged and its column moves; one that fails for the gateway's own reason
// or because of the file's state (no order, column not assigned, not
// pending) is not, and the column stays.
func TestChargingRules(t *testing.T) {
	for _, c := range []struct {
		answer  string
		charged bool
	}{
		{"500", true},
		{"refused", true},
		{nodeapi.NoOrder, false},
		{nodeapi.NotAssigned, false},
		{nodeapi.NotPending, false},
		{"work area unreadable", false},
	} {
		t.Run(c.answer, func(t *testing.T) {
			e := newEnv(t)
			if err := e.step(); err != nil {
				t.Fatal(err)
			}
			before := e.file().Columns
			switch c.answer {
			case "refused":
				for _, n := range e.nodes {
					n.srv.Close()
				}
			case "work area unreadable":
				os.Remove(filepath.Join(e.workDir, e.fid.String(), "col-03"))
			default:
				e.setAll(c.answer)
			}
			err := e.step()
			if err == nil {
				t.Fatal("a failed round reported no error")
			}
			charged := e.failures()
			moved := 0
			for j, col := range e.file().Columns {
				if col.Node != before[j].Node {
					moved++
				}
			}
			switch {
			case c.charged && (len(charged) == 0 || moved == 0):
				t.Fatalf("node at fault: %d nodes charged, %d columns moved (err %v)", len(charged), moved, err)
			case !c.charged && (len(charged) != 0 || moved != 0):
				t.Fatalf("not the node's fault, yet %d nodes charged and %d columns moved: %v", len(charged), moved, err)
			}
		})
	}
}

// TestNodeAtFault: the classification itself.
func TestNodeAtFault(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		{context.DeadlineExceeded, true},
		{&nodeapi.Error{Status: 507, Code: nodeapi.Full}, true},
		{&nodeapi.Error{Status: 503, Code: nodeapi.Busy}, true},
		{&nodeapi.Error{Status: 400, Code: nodeapi.HashMismatch}, true},
		{&nodeapi.Error{Status: 418, Code: "teapot"}, true},
		{fmt.Errorf("segment 0: %w", &nodeapi.Error{Status: 404, Code: nodeapi.NoOrder}), false},
		{&nodeapi.Error{Status: 401, Code: nodeapi.Unauthenticated}, false},
		{&nodeapi.Error{Status: 403, Code: nodeapi.NotAGateway}, false},
		{localError{errors.New("work area: no such file")}, false},
		{context.Canceled, false},
	} {
		if got := NodeAtFault(c.err); got != c.want {
			t.Errorf("NodeAtFault(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestReportDeadline: a node that takes its column but never reports is
// charged once when the deadline passes (on the injected clock), however
// many rounds it takes to move the column, and the column moves.
func TestReportDeadline(t *testing.T) {
	e := newEnv(t)
	e.step() // declared
	e.step() // pushed
	first := e.file().Columns
	if err := e.step(); err != nil || len(e.failures()) != 0 {
		t.Fatalf("before the deadline: %v, charged %v", err, e.failures())
	}
	e.clock.Add(time.Minute + time.Second)
	e.step() // 12 overdue; the 2 spare nodes take 2 columns, the rest wait
	e.step() // the rest may move to the nodes those 2 left
	moved := 0
	for j, c := range e.file().Columns {
		if c.Node != first[j].Node {
			moved++
		}
	}
	if moved < 2 {
		t.Fatalf("%d columns moved, want at least the 2 that the spare nodes can take", moved)
	}
	for a, n := range e.failures() {
		if n > 1.0001 {
			t.Fatalf("node %s charged %v times for one missed report", a, n)
		}
	}
	if len(e.failures()) != 12 {
		t.Fatalf("%d nodes charged, want the 12 that missed their report", len(e.failures()))
	}
}

// TestDeleteInEachState: a delete in any state of the pipeline ends with no
// order on chain, the territory's space back and the work copy gone.
func TestDeleteInEachState(t *testing.T) {
	for _, state := range []string{pipeline.Processed, pipeline.Declared, pipeline.Distributing, pipeline.Stored, pipeline.Cleaned} {
		t.Run(state, func(t *testing.T) {
			e := newEnv(t)
			for e.record().State != state {
				if e.record().State == pipeline.Distributing {
					e.reportAll()
				}
				if err := e.step(); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.queue.Delete(e.fid, e.user.Address(), e.clock.Now()); err != nil {
				t.Fatal(err)
			}
			if err := e.step(); err != nil {
				t.Fatal(err)
			}
			e.checkDeleted()
		})
	}
}

func (e *env) checkDeleted() {
	e.t.Helper()
	if _, err := e.queue.Get(e.fid, e.user.Address()); !errors.Is(err, pipeline.ErrNotFound) {
		e.t.Fatalf("record after the delete: %v", err)
	}
	if _, err := e.chain.File(context.Background(), e.fid); !errors.Is(err, ledger.ErrNotFound) {
		e.t.Fatalf("order on chain after the delete: %v", err)
	}
	if tr := e.territory(); tr.Used != 0 || tr.Locked != 0 {
		e.t.Fatalf("territory after the delete: %+v", tr)
	}
	if _, err := e.work.Layout(e.fid); !errors.Is(err, work.ErrNotFound) {
		e.t.Fatalf("work copy after the delete: %v", err)
	}
}

// TestDeleteWhileDeclaring: the delete arrives while the order is being
// declared. The declaration lands, but the record does not go back to
// declared over the delete: the next step deletes the order and the space
// returns.
func TestDeleteWhileDeclaring(t *testing.T) {
	e := newEnv(t)
	e.chain.beforeSubmit = func(_ context.Context, m ledger.Msg) error {
		if m.DeclareFile != nil {
			return e.queue.Delete(e.fid, e.user.Address(), e.clock.Now())
		}
		return nil
	}
	if err := e.step(); err != nil {
		t.Fatal(err)
	}
	if st := e.record().State; st != pipeline.Deleting {
		t.Fatalf("after the declaration the record is %s, want deleting", st)
	}
	if tr := e.territory(); tr.Locked == 0 {
		t.Fatal("the declaration did not land (the test shows nothing)")
	}
	if err := e.step(); err != nil {
		t.Fatal(err)
	}
	e.checkDeleted()
}

// TestRunJoins: Run returns only after the goroutines it started stopped,
// so the queue and the scheduler are not closed under them.
func TestRunJoins(t *testing.T) {
	e := newEnv(t)
	entered := make(chan struct{})
	var finished atomic.Bool
	e.chain.beforeSubmit = func(ctx context.Context, m ledger.Msg) error {
		close(entered)
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // a step that takes a moment to unwind
		finished.Store(true)
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.d.Run(ctx); close(done) }()
	<-entered
	cancel()
	<-done
	if !finished.Load() {
		t.Fatal("Run returned while a file's step was still running")
	}
}

// TestRunToCleaned: Run drives the file by events alone (queue changes and
// Wake), and a restarted distributor takes the file on where it stood.
func TestRunToCleaned(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.d.Run(ctx); close(done) }()
	e.waitState(pipeline.Distributing)
	cancel()
	<-done
	// A new distributor (a restarted gateway) over the same state.
	e.d = New(Config{Now: e.clock.Now, ReportDeadline: time.Minute}, e.chain, e.sched, e.work, e.queue, e.chain.gw, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go e.d.Run(ctx)
	e.waitPushes(e.pushes.Load() + 12) // every column pushed again after the restart
	e.reportAll()
	e.d.Wake()
	e.waitState(pipeline.Cleaned)
}

func (e *env) waitState(state string) {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		changed := e.queue.Changed()
		if r, err := e.queue.Get(e.fid, e.user.Address()); err == nil && r.State == state {
			return
		}
		select {
		case <-changed:
		case <-time.After(time.Until(deadline)):
			e.t.Fatalf("the file never reached %s (%s)", state, e.record().State)
		}
	}
}

func (e *env) waitPushes(n int64) {
	e.t.Helper()
	deadline := time.After(time.Minute)
	for e.pushes.Load() < n {
		select {
		case <-e.pushed:
		case <-deadline:
			e.t.Fatalf("%d pushes, want %d", e.pushes.Load(), n)
		}
	}
}

// TestV1DedupPoisoningRefused reproduces the poisoning of a v1 FID: mallory
// declares the victim's FID first with made-up fragment hashes (a v1 FID
// binds only the segment hashes), her nodes report, the record is stored.
// The victim's gateway no longer joins it: it names the reason, keeps its
// work copy, and the victim owns nothing poisoned. A v1 record with the
// gateway's own layout is still joined once every column reads back.
func TestV1DedupPoisoningRefused(t *testing.T) {
	e := newEnvVersion(t, types.FormatV1)
	l, err := e.work.Layout(e.fid)
	if err != nil {
		t.Fatal(err)
	}
	forged := *l
	forged.Segments = append([]types.SegmentLayout(nil), l.Segments...)
	for j := range forged.Segments[0].Fragments {
		forged.Segments[0].Fragments[j] = types.Sum([]byte{byte(j), 0xbad & 0xff})
	}
	if codec.FileID(&forged) != e.fid {
		t.Fatal("the forged v1 layout should keep the FID")
	}
	e.chain.must(e.malGW, ledger.Msg{RegisterGateway: &ledger.RegisterGateway{Endpoint: "http://mallory.invalid"}})
	e.chain.must(e.mallory, ledger.Msg{BuyTerritory: &ledger.BuyTerritory{Name: "m", GiB: 1, Days: 30}})
	e.chain.must(e.mallory, ledger.Msg{Authorize: &ledger.Authorize{Gateway: e.malGW.Address()}})
	var cols [types.TotalShards]types.Address
	i := 0
	for a := range e.nodes {
		if i < types.TotalShards {
			cols[i] = a
			i++
		}
	}
	e.chain.must(e.malGW, ledger.Msg{DeclareFile: &ledger.DeclareFile{Owner: e.mallory.Address(), FID: e.fid, Name: "x", Territory: "m", Layout: forged, Columns: cols}})
	e.reportAll()
	if e.file().State != ledger.FileStored {
		t.Fatal("mallory's record is not stored")
	}
	err = e.step()
	if !errors.Is(err, ErrForeignLayout) {
		t.Fatalf("joining a poisoned record: %v", err)
	}
	if e.file().HasOwner(e.user.Address()) {
		t.Fatal("the victim became an owner of the poisoned record")
	}
	if _, err := e.work.Layout(e.fid); err != nil {
		t.Fatalf("the work copy went: %v", err)
	}
	if st := e.record().State; st == pipeline.Stored || st == pipeline.Cleaned {
		t.Fatalf("the victim's file is %s", st)
	}

	// The honest case: another owner's record with this very layout, on
	// nodes that hold the bytes, is joined and then cleaned.
	e2 := newEnvVersion(t, types.FormatV1)
	e2.chain.must(e2.malGW, ledger.Msg{RegisterGateway: &ledger.RegisterGateway{Endpoint: "http://other.invalid"}})
	e2.chain.must(e2.mallory, ledger.Msg{BuyTerritory: &ledger.BuyTerritory{Name: "m", GiB: 1, Days: 30}})
	e2.chain.must(e2.mallory, ledger.Msg{Authorize: &ledger.Authorize{Gateway: e2.malGW.Address()}})
	i = 0
	for a, n := range e2.nodes {
		if i < types.TotalShards {
			cols[i] = a
			rc, _ := e2.work.Fragment(e2.fid, 0, i)
			b, _ := io.ReadAll(rc)
			rc.Close()
			n.held = map[types.Hash][]byte{codec.Sum(types.FormatV1, b): b}
			i++
		}
	}
	e2.chain.must(e2.malGW, ledger.Msg{DeclareFile: &ledger.DeclareFile{Owner: e2.mallory.Address(), FID: e2.fid, Name: "x", Territory: "m", Layout: *l, Columns: cols}})
	e2.reportAll()
	for _, want := range []string{pipeline.Stored, pipeline.Cleaned} {
		if err := e2.step(); err != nil || e2.record().State != want {
			t.Fatalf("honest join, step to %s: %v (%s)", want, err, e2.record().State)
		}
	}
	if !e2.file().HasOwner(e2.user.Address()) {
		t.Fatal("the second owner was not added")
	}
}

// TestReadBackBeforeCleaning: a stored file's work copy stays while any
// column's node serves bytes that do not verify, and goes once all do.
func TestReadBackBeforeCleaning(t *testing.T) {
	e := newEnv(t)
	for range 2 {
		if err := e.step(); err != nil {
			t.Fatal(err)
		}
	}
	e.reportAll()
	liar := e.nodes[e.file().Columns[7].Node]
	liar.lies.Store(true)
	err := e.step()
	if err == nil || !strings.Contains(err.Error(), "column 7") || !errors.Is(err, codec.ErrSliceCorrupt) {
		t.Fatalf("read-back with a lying node: %v", err)
	}
	if st := e.record().State; st != pipeline.Distributing {
		t.Fatalf("state %s with a column that does not read back", st)
	}
	liar.lies.Store(false)
	for _, want := range []string{pipeline.Stored, pipeline.Cleaned} {
		if err := e.step(); err != nil || e.record().State != want {
			t.Fatalf("step to %s: %v (%s)", want, err, e.record().State)
		}
	}
}

func (c *memChain) Territory(_ context.Context, o types.Address, name string) (*ledger.Territory, error) {
	return query[ledger.Territory](c, "territory/"+o.String()+"/"+name)
}

// TestUndeclarableGivesUp: a file whose territory cannot take it is retried,
// its note saying why, and after GiveUp (24 h) it is failed and its work
// copy freed, instead of being retried forever.
func TestUndeclarableGivesUp(t *testing.T) {
	e := newEnv(t)
	size := e.record().Size
	if err := e.queue.Remove(e.fid, e.user.Address()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.queue.Add(pipeline.Record{FID: e.fid, Owner: e.user.Address(), Name: "f", Territory: "gone", Size: size, Updated: e.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	err := e.step()
	if err == nil || !strings.Contains(err.Error(), `no territory "gone"`) {
		t.Fatalf("first try: %v", err)
	}
	if _, err := e.work.Layout(e.fid); err != nil {
		t.Fatalf("the copy went before the give-up: %v", err)
	}
	e.clock.Add(23 * time.Hour)
	if err := e.step(); err == nil {
		t.Fatal("declared into a territory that is not there")
	}
	e.clock.Add(2 * time.Hour)
	if err := e.step(); err != nil {
		t.Fatalf("give-up: %v", err)
	}
	r := e.record()
	if r.State != pipeline.Failed || !strings.Contains(r.Note, "gave up") {
		t.Fatalf("record: %+v", r)
	}
	if _, err := e.work.Layout(e.fid); err == nil {
		t.Fatal("the work copy of a failed file was kept")
	}
	if p, _ := e.queue.Pending(); len(p) != 0 {
		t.Fatalf("a failed file is still pending: %+v", p)
	}
}
