package pipeline

import (
	"errors"
	"testing"

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
