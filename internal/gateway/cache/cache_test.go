package cache

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/deoss/deoss/internal/types"
)

func fragment(b byte) ([]byte, types.Hash) {
	f := bytes.Repeat([]byte{b}, types.FragmentSize)
	return f, types.Sum(f)
}

func put(c *Cache, f []byte, h types.Hash) { c.Put(h, f) }

func TestCacheLRUBound(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(dir, 3*types.FragmentSize)
	if err != nil {
		t.Fatal(err)
	}
	var hs []types.Hash
	for i := range 4 {
		f, h := fragment(byte(i))
		hs = append(hs, h)
		put(c, f, h)
		if i == 1 {
			// Touch the first: the second becomes the oldest.
			r, err := c.Open(hs[0])
			if err != nil {
				t.Fatal(err)
			}
			r.Close()
		}
	}
	if c.Size() > 3*types.FragmentSize {
		t.Fatalf("size %d over the bound", c.Size())
	}
	if c.Has(hs[1]) || !c.Has(hs[0]) || !c.Has(hs[2]) || !c.Has(hs[3]) {
		t.Fatal("evicted the wrong fragment")
	}
	r, _ := c.Open(hs[3])
	got, _ := io.ReadAll(r)
	r.Close()
	if types.Sum(got) != hs[3] {
		t.Fatal("cached bytes differ")
	}
	// Reopened, the cache holds the same and still fits.
	c2, _ := Open(dir, 2*types.FragmentSize)
	if c2.Size() != 2*types.FragmentSize || c2.Has(hs[1]) {
		t.Fatalf("reopened: %d", c2.Size())
	}
	if n, _ := os.ReadDir(dir); len(n) != 3 { // two fragments and layouts/
		t.Fatalf("files on disk: %d", len(n))
	}
}

// TestCachePutCopies: Put keeps a copy (the caller reuses its buffer) of
// any fragment size, and ignores a fragment bigger than the cache.
func TestCachePutCopies(t *testing.T) {
	c, _ := Open(t.TempDir(), 2*types.FragmentSize)
	f := bytes.Repeat([]byte{3}, 16<<10) // a v2 short fragment
	h := types.Sum(f)
	c.Put(h, f)
	f[0] = 9
	r, err := c.Open(h)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if len(got) != 16<<10 || got[0] != 3 || c.Size() != 16<<10 {
		t.Fatalf("cached %d bytes, first %d, size %d", len(got), got[0], c.Size())
	}
	big := make([]byte, 2*types.FragmentSize+1)
	c.Put(types.Sum(big), big)
	if c.Has(types.Sum(big)) {
		t.Fatal("cached a fragment bigger than the cache")
	}
}

func TestCacheLayouts(t *testing.T) {
	c, _ := Open(t.TempDir(), types.FragmentSize)
	var fid types.FID
	fid[0] = 1
	if _, err := c.Layout(fid); !errors.Is(err, ErrMiss) {
		t.Fatal(err)
	}
	l := &types.Layout{Version: 1, Size: 5}
	c.PutLayout(fid, l)
	got, err := c.Layout(fid)
	if err != nil || got.Size != 5 {
		t.Fatalf("%+v %v", got, err)
	}
	c.DropLayout(fid)
	if _, err := c.Layout(fid); !errors.Is(err, ErrMiss) {
		t.Fatal("layout kept after drop")
	}
}

// TestCacheLayoutsBounded: the layouts folder keeps at most MaxLayouts,
// the oldest out first, also across a reopen.
func TestCacheLayoutsBounded(t *testing.T) {
	dir := t.TempDir()
	c, _ := Open(dir, types.FragmentSize)
	fidOf := func(i int) types.FID { return types.FID{byte(i), byte(i >> 8), 9} }
	for i := range MaxLayouts + 10 {
		c.PutLayout(fidOf(i), &types.Layout{Version: 1, Size: uint64(i + 1)})
	}
	if n, _ := os.ReadDir(dir + "/layouts"); len(n) != MaxLayouts {
		t.Fatalf("%d layouts kept, want %d", len(n), MaxLayouts)
	}
	if c.HasFile(fidOf(0)) || !c.HasFile(fidOf(MaxLayouts+9)) {
		t.Fatal("evicted the wrong layouts")
	}
	c2, err := Open(dir, types.FragmentSize)
	if err != nil {
		t.Fatal(err)
	}
	c2.PutLayout(fidOf(99999), &types.Layout{Version: 1, Size: 1})
	if n, _ := os.ReadDir(dir + "/layouts"); len(n) != MaxLayouts {
		t.Fatalf("after a reopen: %d layouts kept, want %d", len(n), MaxLayouts)
	}
}
