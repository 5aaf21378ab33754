package codec

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/types"
)

// stallSource blocks reads of some fragments until their context ends, like
// a frozen node.
type stallSource struct {
	inner   FragmentSource
	stalled map[int]bool
}

func (s stallSource) OpenFragment(ctx context.Context, seg uint64, idx int) (io.ReadCloser, error) {
	if s.stalled[idx] {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.inner.OpenFragment(ctx, seg, idx)
}

func TestHedgeRoutesAroundStalledFragments(t *testing.T) {
	data := pattern(types.SegmentSize + 12345)
	res, store := encodeBytes(t, data)
	l := &res.Layout
	// Two data fragments never answer: without hedging the read would wait
	// for ever; with it, parity arrives and the bytes are right.
	src := stallSource{inner: store, stalled: map[int]bool{1: true, 3: true}}
	// A stalled read ends only with its context: that the reads finish
	// before this one's (generous, for loaded machines) deadline is what
	// shows the hedge at work; no wall-clock bound is asserted.
	for _, r := range [][2]int64{{0, int64(len(data))}, {types.FragmentSize + 10, 1000}} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		var out bytes.Buffer
		err := Decode(ctx, &out, l, src, r[0], r[1], WithHedge(20*time.Millisecond))
		cancel()
		if err != nil {
			t.Fatalf("range %v: %v (a stalled fragment was waited for)", r, err)
		}
		if !bytes.Equal(out.Bytes(), data[r[0]:r[0]+r[1]]) {
			t.Fatalf("range %v: wrong bytes", r)
		}
	}
	// Without hedging, a stalled read ends only with the caller's context.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := Decode(ctx, io.Discard, l, src, 0, int64(len(data))); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unhedged: %v", err)
	}
}

func TestSegmentCheck(t *testing.T) {
	data := pattern(5000)
	res, store := encodeBytes(t, data)
	// A forged layout: fragment 0 replaced, its hash updated to match. The
	// fragment hashes are not bound by the FID, the segment hash is.
	forged := res.Layout
	forged.Segments = append([]types.SegmentLayout(nil), res.Layout.Segments...)
	fake := bytes.Repeat([]byte{0xee}, types.FragmentSize)
	forged.Segments[0].Fragments[0] = types.Sum(fake)
	store.frags[fragKey{0, 0}] = fake
	if got, err := decodeRange(t, &forged, store, 0, 100); err != nil || bytes.Equal(got, data[:100]) {
		t.Fatalf("without the check the forgery should read as other bytes: %v", err)
	}
	if _, err := decodeRange(t, &forged, store, 0, 100, WithSegmentCheck()); !errors.Is(err, ErrNotEnoughFragments) {
		t.Fatalf("with the check: %v", err)
	}
	var se *SegmentError
	_, err := decodeRange(t, &forged, store, 0, 100, WithSegmentCheck())
	if !errors.As(err, &se) || !errors.Is(se.Failures[len(se.Failures)-1], ErrSegmentCorrupt) {
		t.Fatalf("segment error: %v", err)
	}
	// The honest layout passes the check.
	if got, err := decodeRange(t, &res.Layout, newStoreFrom(t, data), 0, 5000, WithSegmentCheck()); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("honest: %v", err)
	}
}

func newStoreFrom(t *testing.T, data []byte) FragmentSource {
	_, s := encodeBytes(t, data)
	return s
}
