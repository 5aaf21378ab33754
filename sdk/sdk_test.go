package sdk

import (
	"errors"
	"testing"
)

func TestChooseChunk(t *testing.T) {
	for _, c := range []struct {
		t    tuning
		want int64
	}{
		{tuning{}, 8 << 20},
		{tuning{RateBps: 100 << 20}, 64 << 20},
		{tuning{RateBps: 10 << 20}, 20 << 20},
		{tuning{RateBps: 10 << 20, Errors: 2}, 10 << 20},
		{tuning{RateBps: 1000}, 1 << 20},
	} {
		if got := chooseChunk(c.t); got != c.want {
			t.Errorf("%+v: %d, want %d", c.t, got, c.want)
		}
	}
}

func TestErrorIs(t *testing.T) {
	e := &Error{Status: 503}
	if !errors.Is(e, ErrUnavailable) || errors.Is(e, ErrNotFound) || !retryable(e) {
		t.Fatal("503")
	}
	if retryable(&Error{Status: 409}) {
		t.Fatal("409 is not retryable")
	}
}
