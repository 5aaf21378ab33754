package api

import (
	"errors"
	"testing"

	"github.com/deoss/deoss/internal/httpapi"
)

func TestParseRange(t *testing.T) {
	const size = 1000
	for _, c := range []struct {
		h       string
		off, n  int64
		partial bool
		status  int
	}{
		{"", 0, size, false, 0},
		{"bytes=0-99", 0, 100, true, 0},
		{"bytes=990-", 990, 10, true, 0},
		{"bytes=990-5000", 990, 10, true, 0},
		{"bytes=-10", 990, 10, true, 0},
		{"bytes=-5000", 0, size, true, 0},
		{"bytes=999-999", 999, 1, true, 0},
		{"bytes=1000-", 0, 0, false, 416},
		{"bytes=-0", 0, 0, false, 416},
		{"bytes=0-1,3-4", 0, 0, false, 416},
		{"bytes=5-1", 0, 0, false, 400},
		{"bytes=a-b", 0, 0, false, 400},
		{"bytes=-", 0, 0, false, 400},
		{"bytes=+1-2", 0, 0, false, 400},
		{"bytes=99999999999999999999-", 0, 0, false, 400},
		{"items=0-1", 0, 0, false, 400},
		{"bytes=12", 0, 0, false, 400},
	} {
		r, err := parseRange(c.h, size)
		if c.status != 0 {
			var e *httpapi.Error
			if !errors.As(err, &e) || e.Status != c.status {
				t.Errorf("%q: %v, want status %d", c.h, err, c.status)
			}
			continue
		}
		if err != nil || r.off != c.off || r.n != c.n || r.partial != c.partial {
			t.Errorf("%q: %+v %v, want %d+%d partial=%v", c.h, r, err, c.off, c.n, c.partial)
		}
	}
	if _, err := parseRange("bytes=0-", 0); err == nil {
		t.Error("a range of an empty file is unsatisfiable")
	}
}

// FuzzParseRange: never panics, and an accepted range lies inside the file.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"", "bytes=0-1", "bytes=-5", "bytes=7-", "bytes=1-2,3-4", "bytes=x"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
		}
		if size < 0 {
			return
		}
		r, err := parseRange(h, size)
		if err != nil {
			var e *httpapi.Error
			if !errors.As(err, &e) {
				t.Fatalf("%q: error without a status: %v", h, err)
			}
			return
		}
		if r.off < 0 || r.n < 0 || r.off+r.n > size || (h != "" && r.n == 0) {
			t.Fatalf("%q of %d: %+v", h, size, r)
		}
	})
}
