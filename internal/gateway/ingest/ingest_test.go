package ingest

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/gateway/work"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestReadKeysKeptAMinute: a read key is derived once per file and cipher
// and kept a minute (Argon2id once per client, not per range); another
// cipher or another salt is another key; after the minute it is derived
// again.
func TestReadKeysKeptAMinute(t *testing.T) {
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	in := New(Config{Now: c.Now}, nil, nil, nil, nil)
	ctx := context.Background()
	salt := bytes.Repeat([]byte{3}, types.SaltSize)
	k1, err := in.Derive(ctx, []byte("open sesame"), salt)
	if err != nil {
		t.Fatal(err)
	}
	if k2, _ := in.Derive(ctx, []byte("open sesame"), salt); k2 != k1 {
		t.Fatal("the same cipher and salt derived again within the minute")
	}
	if k3, _ := in.Derive(ctx, []byte("open sesame!"), salt); k3 == k1 {
		t.Fatal("another cipher got the cached key")
	}
	if k4, _ := in.Derive(ctx, []byte("open sesame"), bytes.Repeat([]byte{4}, types.SaltSize)); k4 == k1 {
		t.Fatal("another salt got the cached key")
	}
	c.add(61 * time.Second)
	if k5, _ := in.Derive(ctx, []byte("open sesame"), salt); k5 == k1 {
		t.Fatal("the key outlived its minute")
	}
}

type bigTerritory struct{}

func (bigTerritory) Territory(context.Context, types.Address, string) (*ledger.Territory, error) {
	return &ledger.Territory{Total: 1 << 40, Expires: time.Now().Add(time.Hour).Unix()}, nil
}

// stalledBody says when it is first read, then gives nothing until unblocked.
type stalledBody struct {
	reading chan struct{}
	unblock chan struct{}
}

func (s *stalledBody) Read([]byte) (int, error) {
	select {
	case s.reading <- struct{}{}:
	default:
	}
	<-s.unblock
	return 0, io.ErrUnexpectedEOF
}

// TestStalledUploaderHoldsNoSlot: with one encode slot, an upload whose
// client sends nothing does not keep another upload waiting (it held the
// slot while it waited for its client).
func TestStalledUploaderHoldsNoSlot(t *testing.T) {
	root := t.TempDir()
	w, _ := work.Open(filepath.Join(root, "work"))
	q, err := pipeline.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	in := New(Config{Encodes: 1}, bigTerritory{}, w, q, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	owner := types.Address{7}
	stalled := &stalledBody{reading: make(chan struct{}, 1), unblock: make(chan struct{})}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stalled.unblock)
	wg.Go(func() {
		in.Accept(ctx, stalled, File{Owner: owner, Name: "stalled", Territory: "home", Size: 10 << 20})
	})
	select {
	case <-stalled.reading:
	case <-time.After(time.Minute):
		t.Fatal("the stalled upload never started")
	}
	done := make(chan error, 1)
	go func() {
		_, err := in.Accept(ctx, bytes.NewReader(bytes.Repeat([]byte("x"), 100_000)), File{Owner: owner, Name: "quick", Territory: "home", Size: 100_000})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the upload beside a stalled one: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("an upload waited a minute behind a stalled uploader")
	}
}

// countedTerritory is a territory whose size a test changes, counting the
// queries for it.
type countedTerritory struct {
	mu      sync.Mutex
	total   uint64
	expires int64
	queries int
}

func (c *countedTerritory) Territory(context.Context, types.Address, string) (*ledger.Territory, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queries++
	return &ledger.Territory{Total: c.total, Expires: c.expires}, nil
}

// TestTerritoryCachedForChecks: small uploads' space checks share one
// query a second; a check the cached territory would refuse asks the chain
// again, so space bought a moment ago is used at once.
func TestTerritoryCachedForChecks(t *testing.T) {
	root := t.TempDir()
	q, err := pipeline.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	c := &clock{now: time.Unix(1_800_000_000, 0)}
	ch := &countedTerritory{total: 1 << 20, expires: c.now.Add(time.Hour).Unix()}
	in := New(Config{Now: c.Now}, ch, nil, q, nil)
	ctx, owner := context.Background(), types.Address{7}
	hold := func(size int64) error {
		_, h, err := in.HoldStream(ctx, owner, "home", size, types.EncryptionNone, bytes.NewReader(nil))
		if err == nil {
			h.Release()
		}
		return err
	}
	for range 10 {
		if err := hold(1000); err != nil {
			t.Fatal(err)
		}
	}
	if ch.queries != 1 {
		t.Fatalf("10 checks within a second asked the chain %d times", ch.queries)
	}
	if err := hold(4 << 20); err == nil {
		t.Fatal("4 MiB held in a 1 MiB territory")
	}
	ch.mu.Lock()
	ch.total = 1 << 30 // bought more
	ch.mu.Unlock()
	if err := hold(4 << 20); err != nil {
		t.Fatalf("4 MiB right after the territory grew: %v", err)
	}
	c.add(2 * time.Second)
	before := ch.queries
	hold(1000)
	if ch.queries != before+1 {
		t.Fatal("the territory was not asked again after its second")
	}
}
