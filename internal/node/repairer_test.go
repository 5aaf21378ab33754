package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/node/store"
	"github.com/deoss/deoss/internal/types"
)

// repairFixture: a v2 file of one full segment whose 12 fragments are
// served by httptest nodes (column j by node j), and a chain that knows it.
type repairFixture struct {
	file  *ledger.File
	frags [][]byte
	srvs  []*httptest.Server
	chain *fakeRepairChain
	// corrupt, if set, makes node j serve a flipped byte.
	corrupt map[int]bool
}

type fakeRepairChain struct {
	file     *ledger.File
	nodes    map[types.Address]*ledger.Node
	gateways []ledger.Gateway
	done     []*ledger.CompleteRestoral
}

func (c *fakeRepairChain) Gateways(context.Context) ([]ledger.Gateway, error) { return c.gateways, nil }

func (c *fakeRepairChain) Restorals(context.Context, int) (*ledger.RestoralQueue, error) {
	return &ledger.RestoralQueue{}, nil
}
func (c *fakeRepairChain) Claims(context.Context, types.Address) ([]ledger.Restoral, error) {
	return nil, nil
}
func (c *fakeRepairChain) ClaimRestoral(context.Context, types.FID, uint8) error { return nil }
func (c *fakeRepairChain) CompleteRestoral(_ context.Context, m *ledger.CompleteRestoral) error {
	c.done = append(c.done, m)
	return nil
}
func (c *fakeRepairChain) FileAt(context.Context, types.FID, int64) (*ledger.File, error) {
	return c.file, nil
}
func (c *fakeRepairChain) Node(_ context.Context, a types.Address) (*ledger.Node, error) {
	if n, ok := c.nodes[a]; ok {
		return n, nil
	}
	return nil, ledger.ErrNotFound
}

func newRepairFixture(tb testing.TB) *repairFixture {
	data := make([]byte, types.SegmentSize)
	rand.Read(data)
	fx := &repairFixture{corrupt: map[int]bool{}}
	res, err := codec.Encode(context.Background(), bytes.NewReader(data), codec.SinkFunc(func(s *codec.Segment) error {
		for _, f := range s.Fragments {
			fx.frags = append(fx.frags, bytes.Clone(f))
		}
		return nil
	}), codec.WithOwner(types.Address{1}))
	if err != nil {
		tb.Fatal(err)
	}
	fx.file = &ledger.File{FID: res.FID, Layout: res.Layout, State: ledger.FileStored}
	fx.chain = &fakeRepairChain{file: fx.file, nodes: map[types.Address]*ledger.Node{}}
	for j := range types.TotalShards {
		j := j
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, res.Layout.Segments[0].Fragments[j].String()) {
				http.NotFound(w, r)
				return
			}
			b := fx.frags[j]
			if fx.corrupt[j] {
				b = bytes.Clone(b)
				b[100] ^= 1
			}
			w.Write(b)
		}))
		tb.Cleanup(srv.Close)
		fx.srvs = append(fx.srvs, srv)
		a := types.Address{byte(j + 10)}
		fx.file.Columns[j] = ledger.Column{Node: a, Reported: true}
		fx.chain.nodes[a] = &ledger.Node{Address: a, Endpoint: srv.URL}
	}
	return fx
}

// TestRepairerRebuilds: the repairer rebuilds a column from 4 good
// fragments, skipping sources that serve corrupt bytes or are gone, stores
// it with its outboard and completes with the column's digest; with fewer
// than 4 good sources it stores and completes nothing.
func TestRepairerRebuilds(t *testing.T) {
	fx := newRepairFixture(t)
	st := store.NewMemory(1<<40, types.FragmentSize)
	r := newRepairer(fx.chain, st, types.Address{0xee}, 1<<40, nil, slog.New(slog.DiscardHandler))
	const col = 5
	for j := range 6 { // six of the others bad: four good ones are left
		if j != col {
			fx.corrupt[j] = true
		}
	}
	fx.srvs[11].Close()
	o := &ledger.Restoral{FID: fx.file.FID, Column: col}
	r.restore(context.Background(), o)
	if len(fx.chain.done) != 1 || fx.chain.done[0].Digest != ledger.ColumnDigest(&fx.file.Layout, col) {
		t.Fatalf("completions: %+v", fx.chain.done)
	}
	want := fx.file.Layout.Segments[0].Fragments[col]
	if h, err := st.Lookup(context.Background(), store.Ref{FID: fx.file.FID, Column: col}); err != nil || h != want {
		t.Fatalf("stored %s, %v; want %s", h, err, want)
	}
	if _, err := st.Outboard(context.Background(), want); err != nil {
		t.Fatalf("no outboard: %v", err)
	}

	// Two more bad sources: 3 good ones (5, 6, 8) cannot rebuild column 7.
	fx.corrupt[10], fx.corrupt[9] = true, true
	st2 := store.NewMemory(1<<40, types.FragmentSize)
	r2 := newRepairer(fx.chain, st2, types.Address{0xee}, 1<<40, nil, slog.New(slog.DiscardHandler))
	r2.restore(context.Background(), &ledger.Restoral{FID: fx.file.FID, Column: 7})
	if len(fx.chain.done) != 1 {
		t.Fatal("completed without 4 good sources")
	}
	if _, err := st2.Lookup(context.Background(), store.Ref{FID: fx.file.FID, Column: 7}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("stored a fragment it could not rebuild: %v", err)
	}

	// A gateway that still caches the file fills in: one that is away and
	// one that does not hold it are passed over, one that serves a wrong
	// fragment is not believed, and the one that holds fragment 9
	// completes the four.
	peer := func(serve func(w http.ResponseWriter, idx string)) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			parts := strings.Split(r.URL.Path, "/") // /peer/fragment/fid/seg/idx
			if len(parts) != 6 || parts[3] != fx.file.FID.String() || r.URL.Query().Get("hash") == "" {
				http.NotFound(w, r)
				return
			}
			serve(w, parts[5])
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	empty := peer(func(w http.ResponseWriter, _ string) { http.Error(w, "not held", http.StatusNotFound) })
	liar := peer(func(w http.ResponseWriter, _ string) { w.Write(make([]byte, types.FragmentSize)) })
	holder := peer(func(w http.ResponseWriter, idx string) {
		if idx == "9" {
			w.Write(fx.frags[9])
			return
		}
		http.Error(w, "not held", http.StatusNotFound)
	})
	fx.chain.gateways = []ledger.Gateway{{Endpoint: "http://127.0.0.1:1"}, {Endpoint: empty}, {Endpoint: liar}, {Endpoint: holder}}
	r2.restore(context.Background(), &ledger.Restoral{FID: fx.file.FID, Column: 7})
	if len(fx.chain.done) != 2 || fx.chain.done[1].Column != 7 {
		t.Fatalf("not completed with a gateway's fragment: %+v", fx.chain.done)
	}
	if h, err := st2.Lookup(context.Background(), store.Ref{FID: fx.file.FID, Column: 7}); err != nil || h != fx.file.Layout.Segments[0].Fragments[7] {
		t.Fatalf("stored %s, %v", h, err)
	}
}

// BenchmarkRestoreFragment: one 8 MiB fragment rebuilt from 4 fetched over
// loopback HTTP (each hashed against the chain) and stored on disk with its
// outboard (fsync), beside the bound in the same run: fetching the 4 and
// storing 1 with nothing checked or computed.
func BenchmarkRestoreFragment(b *testing.B) {
	fx := newRepairFixture(b)
	st, err := store.OpenDisk(b.TempDir(), 1<<40, types.FragmentSize)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r := newRepairer(fx.chain, st, types.Address{0xee}, 1<<40, nil, slog.New(slog.DiscardHandler))
	ctx := context.Background()
	const col = 0
	ref := store.Ref{FID: fx.file.FID, Column: col}
	want := store.Want{Hash: fx.file.Layout.Segments[0].Fragments[col], Format: types.FormatV2, Size: types.FragmentSize}
	b.Run("bound", func(b *testing.B) {
		b.SetBytes(types.FragmentSize)
		for range b.N {
			for j := 1; j <= types.DataShards; j++ {
				resp, err := r.client.Get(fx.srvs[j].URL + "/fragment/" + fx.file.Layout.Segments[0].Fragments[j].String())
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, types.FragmentSize)
				if _, err := io.ReadFull(resp.Body, buf); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
			if err := st.Put(ctx, ref, want, bytes.NewReader(fx.frags[col])); err != nil {
				b.Fatal(err)
			}
			st.Release(ctx, ref)
		}
	})
	b.Run("restore", func(b *testing.B) {
		b.SetBytes(types.FragmentSize)
		for range b.N {
			frag, err := r.rebuild(ctx, fx.file, 0, col)
			if err != nil {
				b.Fatal(err)
			}
			if err := st.Put(ctx, ref, want, bytes.NewReader(frag)); err != nil {
				b.Fatal(err)
			}
			st.Release(ctx, ref)
		}
	})
}

// repairLoad runs a repairer at the default repair_rate beside a benchmark:
// rebuilding fragment 0 again and again into a disk store of its own
// (the same disk as the benchmark's). stop ends it and reports the rate it
// restored at.
func repairLoad(b *testing.B) (stop func()) {
	fx := newRepairFixture(b)
	st, err := store.OpenDisk(b.TempDir(), 1<<40, types.FragmentSize)
	if err != nil {
		b.Fatal(err)
	}
	r := newRepairer(fx.chain, st, types.Address{0xee}, DefaultConfig().RepairRate, nil, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	ref := store.Ref{FID: fx.file.FID}
	want := store.Want{Hash: fx.file.Layout.Segments[0].Fragments[0], Format: types.FormatV2, Size: types.FragmentSize}
	var restored int64
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			frag, err := r.rebuild(ctx, fx.file, 0, 0)
			if err != nil {
				continue
			}
			if st.Put(ctx, ref, want, bytes.NewReader(frag)) == nil {
				restored += int64(len(frag))
				st.Release(ctx, ref)
			}
		}
	}()
	return func() {
		b.StopTimer()
		cancel()
		<-done
		st.Close()
		b.ReportMetric(float64(restored)/time.Since(start).Seconds()/1e6, "repair-MB/s")
	}
}

// BenchmarkStoreV2DuringRepair_8MiB and BenchmarkReadDuringRepair_8MiB are
// BenchmarkStoreV2_8MiB and BenchmarkRead_8MiB with a repair running on the
// same node at the default rate: how much repair takes from uploads and
// downloads (the 4 source nodes are loopback servers on this machine too).
func BenchmarkStoreV2DuringRepair_8MiB(b *testing.B) {
	defer repairLoad(b)()
	benchStore(b, types.FormatV2)
}

func BenchmarkReadDuringRepair_8MiB(b *testing.B) {
	defer repairLoad(b)()
	BenchmarkRead_8MiB(b)
}
