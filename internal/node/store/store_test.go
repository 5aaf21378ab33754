package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/node/store"
	"github.com/deoss/deoss/internal/node/store/storetest"
	"github.com/deoss/deoss/internal/types"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(*testing.T) store.Store { return store.NewMemory(storetest.Capacity, storetest.MaxSize) },
	})
}

func TestDisk(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T) store.Store { return openDisk(t, t.TempDir()) },
		Reopen: func(t *testing.T, s store.Store) store.Store {
			d := s.(*store.Disk)
			root := d.Root()
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			return openDisk(t, root)
		},
	})
}

func openDisk(t *testing.T, root string) *store.Disk {
	t.Helper()
	d, err := store.OpenDisk(root, storetest.Capacity, storetest.MaxSize)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDiskLeftovers: what an interrupted write leaves (a temporary file, a
// renamed fragment the index never recorded) is gone after reopening, and the
// fragment can be stored again.
func TestDiskLeftovers(t *testing.T) {
	root := t.TempDir()
	d := openDisk(t, root)
	d.Close()
	b := bytes.Repeat([]byte("x"), 1000)
	h := types.Hash(sha256.Sum256(b))
	s := h.String()
	orphan := filepath.Join(root, "frags", s[:2], s[2:4], s)
	os.MkdirAll(filepath.Dir(orphan), 0o700)
	os.WriteFile(orphan, b, 0o600)
	os.WriteFile(filepath.Join(root, "tmp", "frag-123"), b[:10], 0o600)
	d = openDisk(t, root)
	defer d.Close()
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("unindexed fragment kept: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "tmp")); len(entries) != 0 {
		t.Fatalf("temporary files kept: %v", entries)
	}
	ref := store.Ref{FID: types.FID{1}}
	if err := d.Put(context.Background(), ref, store.V1(h), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if used, _ := d.Usage(); used != 1000 {
		t.Fatalf("used %d", used)
	}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	m := store.NewMemory(1<<20, 1<<16)
	b := bytes.Repeat([]byte("y"), 500)
	h := types.Hash(sha256.Sum256(b))
	if err := (store.Full{Store: m}).Put(ctx, store.Ref{}, store.V1(h), bytes.NewReader(b)); !errors.Is(err, store.ErrFull) {
		t.Fatalf("full: %v", err)
	}
	if err := m.Put(ctx, store.Ref{}, store.V1(h), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	f, _ := (store.Corrupt{Store: m}).Open(ctx, h)
	got := make([]byte, 500)
	f.ReadAt(got, 0)
	if types.Hash(sha256.Sum256(got)) == h {
		t.Fatal("corrupt wrapper served good bytes")
	}
	// A slow store gives up with its caller's context, not after its delay
	// (an hour: only a watchdog would end the wait otherwise).
	sctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	opened := make(chan error, 1)
	go func() {
		_, err := (store.Slow{Store: m, Delay: time.Hour}).Open(sctx, h)
		opened <- err
	}()
	select {
	case err := <-opened:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("slow: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the slow store ignored its caller's context")
	}
}
