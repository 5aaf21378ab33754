package node

import (
	"path/filepath"
	"testing"

	"github.com/deoss/deoss/internal/types"
)

// TestDeclaredHeightsKept: a noted declaration height survives a reopen (it
// is written before the fragment it guards) and goes when forgotten.
func TestDeclaredHeightsKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "declared.db")
	d, err := openDeclared(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b := types.FID{1}, types.FID{2}
	for _, n := range []struct {
		fid types.FID
		h   int64
	}{{a, 10}, {a, 10}, {b, 7}, {b, 9}} {
		if err := d.Note(n.fid, n.h); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	if d, err = openDeclared(path); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if h, ok := d.Height(a); !ok || h != 10 {
		t.Fatalf("a: %d %v", h, ok)
	}
	if h, ok := d.Height(b); !ok || h != 9 {
		t.Fatalf("b (declared again at 9): %d %v", h, ok)
	}
	if err := d.Forget(a); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Height(a); ok {
		t.Fatal("a forgotten, yet known")
	}
	if _, ok := d.Height(types.FID{3}); ok {
		t.Fatal("a file never noted is known")
	}
}
