package chain

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/deoss/deoss/internal/ledger"
)

// The store seeks: IterateFrom starts at from (never before the prefix)
// and stops at the prefix's end.
func TestStoreIterateFrom(t *testing.T) {
	s, err := openStore(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var changes []ledger.Change
	for _, k := range []string{"a/1", "b/1", "b/2", "b/3", "c/1"} {
		changes = append(changes, ledger.Change{Key: []byte(k), Value: []byte("v" + k)})
	}
	if err := s.commit(changes, 1, []byte("h")); err != nil {
		t.Fatal(err)
	}
	list := func(prefix, from string) string {
		var out []string
		s.IterateFrom([]byte(prefix), []byte(from), func(k, _ []byte) bool { out = append(out, string(k)); return true })
		return strings.Join(out, ",")
	}
	for _, c := range [][3]string{
		{"b/", "b/2", "b/2,b/3"},
		{"b/", "b/2\x00", "b/3"},
		{"b/", "a", "b/1,b/2,b/3"}, // before the prefix: from the prefix
		{"b/", "b/9", ""},
		{"", "b/3", "b/3,c/1"},
	} {
		if got := list(c[0], c[1]); got != c[2] {
			t.Errorf("IterateFrom(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
	var _ ledger.SeekKV = s
}
