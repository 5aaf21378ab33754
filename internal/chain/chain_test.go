package chain

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/testutil"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startValidator runs the validator of home until the returned stop is called.
func startValidator(t *testing.T, home string) (*Client, func()) {
	t.Helper()
	v, err := NewValidator(home, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- v.Run(ctx, ready) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("validator: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("validator did not start")
	}
	c, err := Dial(v.RPC())
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if err := c.WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("validator stopped with %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return c, stop
}

func TestEmbeddedValidator(t *testing.T) {
	dir := t.TempDir()
	alice, bob := DevAccount("alice"), DevAccount("bob")
	homes, err := Testnet(dir, NetworkSpec{
		ChainID: "deoss-it", Validators: 1, BasePort: testutil.FreePorts(t, 2), TimeoutCommit: 10 * time.Millisecond,
		Genesis: ledger.Genesis{Dev: true, Params: ledger.DefaultParams(),
			Accounts: []ledger.GenesisAccount{{Address: alice.Address(), Balance: 1_000_000}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, stop := startValidator(t, homes[0])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	sa := c.Signer(alice)
	if _, err := sa.Submit(ctx, ledger.Msg{Transfer: &ledger.Transfer{To: bob.Address(), Amount: 250}}); err != nil {
		t.Fatal(err)
	}
	// Several in a row from one signer keep their nonce order.
	for range 5 {
		if _, err := sa.Submit(ctx, ledger.Msg{Transfer: &ledger.Transfer{To: bob.Address(), Amount: 10}}); err != nil {
			t.Fatal(err)
		}
	}
	if acc, err := c.Account(ctx, bob.Address()); err != nil || acc.Balance != 300 {
		t.Fatalf("bob: %+v %v", acc, err)
	}
	// A refused message comes back typed, and its nonce is used.
	_, err = sa.Submit(ctx, ledger.Msg{Transfer: &ledger.Transfer{To: bob.Address(), Amount: 1 << 40}})
	if !errors.Is(err, ledger.ErrInsufficientFunds) {
		t.Fatalf("overdraft: %v", err)
	}
	sb := c.Signer(bob)
	if _, err := sb.Submit(ctx, ledger.Msg{Faucet: &ledger.Faucet{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Submit(ctx, ledger.Msg{BuyTerritory: &ledger.BuyTerritory{Name: "home", GiB: 2, Days: 7}}); err != nil {
		t.Fatal(err)
	}
	var tr ledger.Territory
	if err := c.Query(ctx, "territory/"+bob.Address().String()+"/home", &tr); err != nil || tr.Total != 2<<30 {
		t.Fatalf("territory: %+v %v", tr, err)
	}
	if err := c.Query(ctx, "territory/"+bob.Address().String()+"/nope", &tr); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("missing territory: %v", err)
	}
	// A second signer for the same key (another process, say) collides on
	// the nonce once and recovers.
	if _, err := c.Signer(alice).Submit(ctx, ledger.Msg{Transfer: &ledger.Transfer{To: bob.Address(), Amount: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sa.Submit(ctx, ledger.Msg{Transfer: &ledger.Transfer{To: bob.Address(), Amount: 1}}); err != nil {
		t.Fatalf("stale signer did not recover: %v", err)
	}
	h1, _ := c.Height(ctx)
	stop()

	// Restart: the state is kept and blocks continue past the old height.
	c, stop = startValidator(t, homes[0])
	defer stop()
	if acc, err := c.Account(ctx, bob.Address()); err != nil || acc.Balance < 302 {
		t.Fatalf("after restart bob: %+v %v", acc, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		h2, err := c.Height(ctx)
		if err == nil && h2 > h1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new blocks after restart (height %d, was %d): %v", h2, h1, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.Signer(alice).Submit(ctx, ledger.Msg{Transfer: &ledger.Transfer{To: bob.Address(), Amount: 1}}); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}

// TestBench runs a small chain benchmark end to end: every order commits.
func TestBench(t *testing.T) {
	dir := t.TempDir()
	homes, err := Testnet(dir, NetworkSpec{ChainID: "deoss-bench", Validators: 1, BasePort: testutil.FreePorts(t, 2),
		TimeoutCommit: 10 * time.Millisecond, Genesis: ledger.Genesis{Dev: true, Params: ledger.DefaultParams()}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := startValidator(t, homes[0])
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Bench(ctx, c, BenchSpec{Txs: 60, Segments: 32, Gateways: 2, Users: 3, Concurrency: 8})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failures != 0 || res.TPS <= 0 || res.P50 <= 0 {
		t.Fatalf("bench: %+v", res)
	}
	t.Logf("%d orders of %d bytes: %.0f tx/s, commit p50 %.1f ms, p99 %.1f ms", res.Txs, res.TxBytes, res.TPS, res.P50ms, res.P99ms)
}

// TestFollow: the follower sees every block's events in order, and after the
// validator restarts it continues where it stopped, missing nothing.
func TestFollow(t *testing.T) {
	dir := t.TempDir()
	alice := DevAccount("alice")
	homes, err := Testnet(dir, NetworkSpec{ChainID: "deoss-follow", Validators: 1, BasePort: testutil.FreePorts(t, 2),
		TimeoutCommit: 10 * time.Millisecond, Genesis: ledger.Genesis{Dev: true, Params: ledger.DefaultParams()}})
	if err != nil {
		t.Fatal(err)
	}
	c, stop := startValidator(t, homes[0])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	type seen struct {
		height int64
		amount string
	}
	got := make(chan seen, 100)
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	var last int64
	go c.Follow(fctx, 1, func(be BlockEvents) error {
		if be.Height != last+1 {
			t.Errorf("block %d after %d", be.Height, last)
		}
		last = be.Height
		for _, e := range be.Events {
			if e.Type == "deoss.faucet" {
				got <- seen{be.Height, e.Attrs[1].Value}
			}
		}
		return nil
	})
	s := c.Signer(alice)
	submit := func() {
		if _, err := s.Submit(ctx, ledger.Msg{Faucet: &ledger.Faucet{}}); err != nil {
			t.Fatal(err)
		}
	}
	submit()
	submit()
	stop()
	// While the validator is down the follower waits; after the restart it
	// catches up with the block it had not read and the new ones.
	c2, stop2 := startValidator(t, homes[0])
	defer stop2()
	s = c2.Signer(alice)
	submit()
	for i := range 3 {
		select {
		case e := <-got:
			if e.amount == "" {
				t.Fatalf("event %d without amount", i)
			}
		case <-ctx.Done():
			t.Fatalf("saw %d of 3 faucet events", i)
		}
	}
}
