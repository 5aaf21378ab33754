package codec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/deoss/deoss/internal/types"
)

// pattern returns n bytes with byte i = i mod 251, the input of the shared
// vectors.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// patternReader streams the same bytes without holding them.
type patternReader struct{ off, n int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n-p.off {
		b = b[:p.n-p.off]
	}
	for i := range b {
		b[i] = byte((p.off + int64(i)) % 251)
	}
	p.off += int64(len(b))
	return len(b), nil
}

type fault int

const (
	faultNone fault = iota
	faultMissing
	faultCorrupt
	faultShort
	faultLong
)

type fragKey struct {
	seg uint64
	idx int
}

// memStore keeps encoded fragments in memory: a Sink for the encoder and a
// FragmentSource for the decoder, with a fault per fragment and a log of what
// was opened.
type memStore struct {
	mu     sync.Mutex
	frags  map[fragKey][]byte
	obs    map[fragKey][]byte // v2 outboards
	faults map[fragKey]fault
	opened map[fragKey]int
	sliced map[fragKey]int64  // bytes asked for by OpenSlice
	whole  map[fragKey][]byte // whole-fragment slices, built once
	// streams are whole fragments as outboard streams, built once.
	streams map[fragKey][]byte
}

func newMemStore() *memStore {
	return &memStore{frags: map[fragKey][]byte{}, obs: map[fragKey][]byte{}, faults: map[fragKey]fault{}, opened: map[fragKey]int{}, sliced: map[fragKey]int64{}, whole: map[fragKey][]byte{}, streams: map[fragKey][]byte{}}
}

func (m *memStore) WriteSegment(s *Segment) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, f := range s.Fragments {
		switch s.FragmentHashes[i] {
		case types.Sum(f):
		case Sum(types.FormatV2, f):
			m.obs[fragKey{s.Index, i}], _ = Outboard(f)
		default:
			return fmt.Errorf("segment %d fragment %d: hash handed to the sink is wrong", s.Index, i)
		}
		m.frags[fragKey{s.Index, i}] = bytes.Clone(f)
	}
	return nil
}

// sliceStore is a memStore that also serves v2 slices, as nodes do; with
// outboards set, whole fragments come as outboard streams (as nodes send
// them), else as slices.
type sliceStore struct {
	*memStore
	outboards bool
}

func (m sliceStore) OpenSlice(_ context.Context, seg uint64, idx int, off, n int64) (io.ReadCloser, Encoding, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := fragKey{seg, idx}
	m.opened[k]++
	b, ok := m.frags[k]
	ob := m.obs[k]
	if !ok || ob == nil || m.faults[k] == faultMissing {
		return nil, EncSlice, errMissing
	}
	m.sliced[k] += n
	enc := EncSlice
	if m.outboards && off == 0 && n == int64(len(b)) {
		enc = EncOutboard
	}
	// Whole-fragment slices are built once: the decode benchmarks measure
	// the reader's verification, not this fake node's encoding.
	out, ok := m.whole[k]
	if enc == EncOutboard {
		if out, ok = m.streams[k]; !ok {
			out = append(bytes.Clone(ob), b...)
			m.streams[k] = out
		}
	} else if !ok || off != 0 || n != int64(len(b)) {
		var sl bytes.Buffer
		if err := WriteSlice(&sl, bytes.NewReader(b), ob, off, n); err != nil {
			return nil, EncSlice, err
		}
		out = sl.Bytes()
		if off == 0 && n == int64(len(b)) {
			m.whole[k] = out
		}
	}
	return io.NopCloser(bytes.NewReader(spoil(out, m.faults[k]))), enc, nil
}

func (m *memStore) slicedBytes() map[fragKey]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := make(map[fragKey]int64, len(m.sliced))
	for k, v := range m.sliced {
		c[k] = v
	}
	return c
}

var errMissing = errors.New("fragment not here")

func (m *memStore) OpenFragment(_ context.Context, seg uint64, idx int) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := fragKey{seg, idx}
	m.opened[k]++
	b, ok := m.frags[k]
	if !ok {
		return nil, errMissing
	}
	if m.faults[k] == faultMissing {
		return nil, errMissing
	}
	b = spoil(b, m.faults[k])
	return io.NopCloser(bytes.NewReader(b)), nil
}

// spoil returns b as fault f serves it (a copy when changed: b is kept).
func spoil(b []byte, f fault) []byte {
	switch f {
	case faultCorrupt:
		b = bytes.Clone(b)
		b[len(b)/2] ^= 0x01
	case faultShort:
		b = b[:len(b)-1]
	case faultLong:
		b = append(bytes.Clone(b), 0)
	}
	return b
}

func (m *memStore) setFault(seg uint64, f fault, idxs ...int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, i := range idxs {
		m.faults[fragKey{seg, i}] = f
	}
}

func (m *memStore) resetFaults() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.faults = map[fragKey]fault{}
	m.opened = map[fragKey]int{}
	m.sliced = map[fragKey]int64{}
}

func (m *memStore) openedCount() map[fragKey]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := make(map[fragKey]int, len(m.opened))
	for k, v := range m.opened {
		c[k] = v
	}
	return c
}

// testKey is derived once: Argon2id with 64 MiB is slow on purpose.
var testKey = sync.OnceValue(func() *Key {
	k, err := DeriveKey([]byte("correct horse battery staple"), bytes.Repeat([]byte{7}, types.SaltSize))
	if err != nil {
		panic(err)
	}
	return k
})

func encodeBytes(t testing.TB, data []byte, opts ...EncodeOption) (*Result, *memStore) {
	t.Helper()
	st := newMemStore()
	// The tests written for v1 stay on v1; v2 tests say WithFormat(2).
	opts = append([]EncodeOption{WithFormat(types.FormatV1)}, opts...)
	res, err := Encode(context.Background(), bytes.NewReader(data), st, opts...)
	if err != nil {
		t.Fatalf("encode %d bytes: %v", len(data), err)
	}
	return res, st
}

func decodeRange(t testing.TB, l *types.Layout, src FragmentSource, off, n int64, opts ...DecodeOption) ([]byte, error) {
	t.Helper()
	var out bytes.Buffer
	err := Decode(context.Background(), &out, l, src, off, n, opts...)
	return out.Bytes(), err
}

type readCloser = io.ReadCloser

type nopCloser struct{ io.Reader }

func (nopCloser) Close() error { return nil }

// testOwner is the owner of the v2 test files.
var testOwner = types.Address{1, 2, 3}

func v2() []EncodeOption { return []EncodeOption{WithFormat(types.FormatV2), WithOwner(testOwner)} }
