package pipeline

import (
	"errors"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deoss/deoss/internal/types"
)

func TestQueue(t *testing.T) {
	root := t.TempDir()
	q, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	r := Record{FID: types.FID{1}, Owner: types.Address{2}, Name: "a", Territory: "home", Size: 10}
	got, err := q.Add(r)
	if err != nil || got.State != Processed {
		t.Fatalf("add: %+v %v", got, err)
	}
	// Adding again (a retried complete) keeps the first record.
	r.Name = "b"
	if got, _ := q.Add(r); got.Name != "a" {
		t.Fatalf("re-add replaced the record: %+v", got)
	}
	// Another owner of the same bytes is another record.
	q.Add(Record{FID: types.FID{1}, Owner: types.Address{3}, Name: "c"})
	q.Close()
	q, _ = Open(root)
	defer q.Close()
	if p, err := q.Pending(); err != nil || len(p) != 2 {
		t.Fatalf("pending after reopen: %v %v", p, err)
	}
	if _, err := q.Get(types.FID{9}, types.Address{2}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}

// TestCleanedLeaveTheActiveSet: cleaned records move to a bounded history,
// so Pending (which the distributor, /metrics and file lists call) reads the
// files in flight only, however many were ever uploaded.
func TestCleanedLeaveTheActiveSet(t *testing.T) {
	q, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	n := HistorySize + 500
	for i := range n {
		fid := types.FID{byte(i), byte(i >> 8), 1}
		q.Add(Record{FID: fid, Owner: types.Address{2}})
		for _, step := range [][2]string{{Processed, Declared}, {Declared, Distributing}, {Distributing, Stored}, {Stored, Cleaned}} {
			if err := q.Transition(fid, types.Address{2}, step[0], step[1], time.Now()); err != nil {
				t.Fatal(err)
			}
		}
	}
	q.Add(Record{FID: types.FID{0xff}, Owner: types.Address{2}})
	if p, err := q.Pending(); err != nil || len(p) != 1 {
		t.Fatalf("pending: %d records, %v; want the one in flight", len(p), err)
	}
	var active, history int
	q.db.View(func(tx *bolt.Tx) error {
		active, history = tx.Bucket(bucketFiles).Stats().KeyN, tx.Bucket(bucketHistory).Stats().KeyN
		return nil
	})
	if active != 1 || history != HistorySize {
		t.Fatalf("active %d, history %d; want 1 and %d", active, history, HistorySize)
	}
	// The newest cleaned records still answer Get (metadata); the oldest
	// aged out.
	if r, err := q.Get(types.FID{byte(n - 1), byte((n - 1) >> 8), 1}, types.Address{2}); err != nil || r.State != Cleaned {
		t.Fatalf("newest cleaned: %+v %v", r, err)
	}
	if _, err := q.Get(types.FID{0, 0, 1}, types.Address{2}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("oldest cleaned: %v", err)
	}
}

// TestTransitionAndDelete: a move from a state the record left fails with
// ErrMoved (a delete came in); a delete takes a record from any state, a
// cleaned one back from the history; every write wakes Changed.
func TestTransitionAndDelete(t *testing.T) {
	q, _ := Open(t.TempDir())
	defer q.Close()
	fid, owner := types.FID{7}, types.Address{8}
	ch := q.Changed()
	q.Add(Record{FID: fid, Owner: owner})
	select {
	case <-ch:
	default:
		t.Fatal("Add did not signal a change")
	}
	if err := q.Delete(fid, owner, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := q.Transition(fid, owner, Processed, Declared, time.Now()); !errors.Is(err, ErrMoved) {
		t.Fatalf("a move over a delete: %v", err)
	}
	if r, _ := q.Get(fid, owner); r.State != Deleting {
		t.Fatalf("state %s", r.State)
	}
	q.Remove(fid, owner)
	q.Add(Record{FID: fid, Owner: owner})
	for _, st := range [][2]string{{Processed, Stored}, {Stored, Cleaned}} {
		q.Transition(fid, owner, st[0], st[1], time.Now())
	}
	if held, _ := q.Holds(fid); held {
		t.Fatal("a cleaned record holds the work copy")
	}
	if err := q.Delete(fid, owner, time.Now()); err != nil {
		t.Fatal(err)
	}
	if p, _ := q.Pending(); len(p) != 1 || p[0].State != Deleting {
		t.Fatalf("a deleted cleaned record is not back in flight: %+v", p)
	}
	if err := q.Delete(types.FID{9}, owner, time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete of nothing: %v", err)
	}
}
