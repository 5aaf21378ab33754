package codec

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/deoss/deoss/internal/types"
)

// TestBadFragments: every kind of bad fragment is rejected, reported and routed
// around while four good ones exist, and is a typed error when they do not.
func TestBadFragments(t *testing.T) {
	data := input()[:S+F+7]
	res, st := encodeBytes(t, data)
	for _, f := range []struct {
		fault fault
		want  error
	}{
		{faultMissing, errMissing},
		{faultCorrupt, ErrFragmentCorrupt},
		{faultShort, ErrFragmentShort},
		{faultLong, ErrFragmentLong},
	} {
		sets := [][]int{{0}, {1, 2}, {0, 1, 2, 3}, {0, 1, 2, 3, 4, 5, 6, 7}}
		if raceEnabled {
			sets = [][]int{{1, 2}, {0, 1, 2, 3, 4, 5, 6, 7}}
		}
		for _, bad := range sets {
			st.resetFaults()
			st.setFault(0, f.fault, bad...)
			var mu sync.Mutex
			var reported []*FragmentError
			out, err := decodeRange(t, &res.Layout, st, 0, int64(len(data)), WithBadFragment(func(e *FragmentError) {
				mu.Lock()
				reported = append(reported, e)
				mu.Unlock()
			}))
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("fault %d on %v: %v", f.fault, bad, err)
			}
			// Every bad fragment that was tried is reported with its cause; the
			// data fragments are always tried first.
			if len(reported) == 0 {
				t.Fatalf("fault %d on %v: nothing reported", f.fault, bad)
			}
			for _, e := range reported {
				if e.Segment != 0 || !errors.Is(e, f.want) || !contains(bad, e.Index) {
					t.Fatalf("fault %d on %v: reported %v", f.fault, bad, e)
				}
			}
		}
		// Nine bad: segment 0 cannot be rebuilt; nothing is written.
		st.resetFaults()
		st.setFault(0, f.fault, 0, 1, 2, 3, 4, 5, 6, 7, 8)
		out, err := decodeRange(t, &res.Layout, st, 0, int64(len(data)))
		var se *SegmentError
		if !errors.As(err, &se) || !errors.Is(err, ErrNotEnoughFragments) || se.Segment != 0 || len(se.Failures) != 9 {
			t.Fatalf("fault %d on 9: %v", f.fault, err)
		}
		if len(out) != 0 {
			t.Fatalf("fault %d on 9: %d bytes written", f.fault, len(out))
		}
		// Nine bad in segment 1: exactly segment 0 is written, then the error.
		st.resetFaults()
		st.setFault(1, f.fault, 0, 1, 2, 3, 4, 5, 6, 7, 8)
		out, err = decodeRange(t, &res.Layout, st, 0, int64(len(data)))
		if !errors.Is(err, ErrNotEnoughFragments) || !bytes.Equal(out, data[:S]) {
			t.Fatalf("fault %d on segment 1: %v, %d bytes", f.fault, err, len(out))
		}
	}
}

// TestInconsistentLayout: a layout whose parity hashes match bytes that are not
// the parity of its data (a lying uploader). A rebuild through that parity
// would produce wrong bytes; the decoder checks the rebuilt fragment and
// refuses.
func TestInconsistentLayout(t *testing.T) {
	data := input()[:1000]
	res, st := encodeBytes(t, data)
	evil := bytes.Repeat([]byte{0xee}, F)
	st.frags[fragKey{0, 4}] = evil
	l := res.Layout
	l.Segments = []types.SegmentLayout{res.Layout.Segments[0]}
	l.Segments[0].Fragments[4] = types.Sum(evil)
	st.setFault(0, faultMissing, 0, 5, 6, 7, 8, 9, 10, 11)
	out, err := decodeRange(t, &l, st, 0, int64(len(data)))
	if !errors.Is(err, ErrFragmentCorrupt) && !errors.Is(err, ErrNotEnoughFragments) {
		t.Fatalf("lying parity: %v", err)
	}
	if len(out) != 0 {
		t.Fatal("bytes were written")
	}
}

func TestEncryption(t *testing.T) {
	data := input()[:B+10]
	res, st := encodeBytes(t, data, WithKey(testKey()))
	l := &res.Layout
	if l.Encryption != types.EncryptionAES256GCM || !bytes.Equal(l.Salt, testKey().Salt()) {
		t.Fatalf("layout: %v %x", l.Encryption, l.Salt)
	}
	plain, _ := encodeBytes(t, data)
	if plain.Layout.Segments[0].Hash == l.Segments[0].Hash {
		t.Fatal("ciphertext hashes equal plaintext hashes")
	}
	// The stored fragments do not contain the plaintext.
	if bytes.Contains(st.frags[fragKey{0, 0}], data[1000:1064]) {
		t.Fatal("plaintext visible in a data fragment")
	}
	out, err := decodeRange(t, l, st, 0, int64(len(data)), WithCipher([]byte("correct horse battery staple")))
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("WithCipher: %v", err)
	}
	out, err = decodeRange(t, l, st, 5, 10, WithCipher([]byte("wrong")))
	if !errors.Is(err, ErrAuthentication) || len(out) != 0 {
		t.Fatalf("wrong cipher: %v, %d bytes", err, len(out))
	}
	if _, err := decodeRange(t, l, st, 0, 1); !errors.Is(err, ErrKeyRequired) {
		t.Fatalf("no cipher: %v", err)
	}
	other, _ := DeriveKey([]byte("x"), bytes.Repeat([]byte{8}, types.SaltSize))
	if _, err := decodeRange(t, l, st, 0, 1, WithDecodeKey(other)); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("other salt: %v", err)
	}
	if _, err := DeriveKey(nil, l.Salt); !errors.Is(err, ErrEmptyCipher) {
		t.Fatalf("empty cipher: %v", err)
	}
	// Cut at a segment boundary: the new last segment was sealed as "not last",
	// so it does not open.
	cut := types.Layout{Version: l.Version, Encryption: l.Encryption, Salt: l.Salt, Size: B, Segments: l.Segments[:1]}
	if _, err := decodeRange(t, &cut, st, 0, B, WithDecodeKey(testKey())); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("truncated file: %v", err)
	}
	// A Key never prints its secret.
	for _, s := range []string{testKey().String(), testKey().GoString()} {
		if !bytes.Contains([]byte(s), []byte("salt")) || bytes.Contains([]byte(s), []byte("aead")) {
			t.Fatalf("key prints %q", s)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	data := input()[:2*S]
	ctx := context.Background()
	cases := map[string]struct {
		r    io.Reader
		opts []EncodeOption
		sink Sink
		want error
	}{
		"shorter":               {bytes.NewReader(data[:100]), []EncodeOption{WithSize(101)}, newMemStore(), ErrSizeMismatch},
		"longer":                {bytes.NewReader(data[:S+1]), []EncodeOption{WithSize(S)}, newMemStore(), ErrSizeMismatch},
		"longer by one segment": {bytes.NewReader(data[:2*S]), []EncodeOption{WithSize(S)}, newMemStore(), ErrSizeMismatch},
		"too large":             {bytes.NewReader(nil), []EncodeOption{WithSize(S*types.MaxSegments + 1)}, newMemStore(), ErrTooLarge},
		"reader":                {io.MultiReader(bytes.NewReader(data[:S+5]), iotest.ErrReader(errBoom)), nil, newMemStore(), errBoom},
		"reader at boundary":    {io.MultiReader(bytes.NewReader(data[:S]), iotest.ErrReader(errBoom)), nil, newMemStore(), errBoom},
		"sink": {bytes.NewReader(data), nil, SinkFunc(func(s *Segment) error {
			if s.Index == 1 {
				return errBoom
			}
			return nil
		}), errBoom},
	}
	before := runtime.NumGoroutine()
	for name, c := range cases {
		if _, err := Encode(ctx, c.r, c.sink, append(v2(), c.opts...)...); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Encode(cctx, bytes.NewReader(data), newMemStore(), WithFormat(types.FormatV1)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	// One-byte reads and a declared size that fits give the same result.
	want, _ := encodeBytes(t, data[:5000])
	got, err := Encode(ctx, iotest.OneByteReader(bytes.NewReader(data[:5000])), newMemStore(), WithSize(5000), WithFormat(types.FormatV1))
	if err != nil || got.FID != want.FID {
		t.Fatalf("one-byte reader: %v", err)
	}
	waitGoroutines(t, before)
}

func TestDecodeCancelAndWriterError(t *testing.T) {
	data := input()[:3*S]
	res, st := encodeBytes(t, data)
	before := runtime.NumGoroutine()
	err := Decode(context.Background(), failWriter{}, &res.Layout, st, 0, int64(len(data)))
	if !errors.Is(err, errBoom) {
		t.Fatalf("writer error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Decode(ctx, io.Discard, &res.Layout, st, 0, int64(len(data))); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	bad := res.Layout
	bad.Size++
	if err := Decode(context.Background(), io.Discard, &bad, st, 0, 1); !errors.Is(err, types.ErrInvalidLayout) {
		t.Fatalf("invalid layout: %v", err)
	}
	waitGoroutines(t, before)
}

// TestEncodeMemoryBounded encodes a 1 GiB stream and samples the heap: what it
// adds must stay under 300 MiB (2 workers: 3 segments of input and 2 of parity, 224 MiB).
func TestEncodeMemoryBounded(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("1 GiB: runs without -race and -short (.ci/run does)")
	}
	for _, p := range []*bufPool{segmentBufs, parityBufs, fragmentBufs} {
		p.drain()
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	const size = 1 << 30
	var segs int
	res, err := Encode(context.Background(), &patternReader{n: size}, SinkFunc(func(*Segment) error {
		segs++
		return nil
	}), append(v2(), WithWorkers(2))...)
	close(stop)
	<-sampled
	if err != nil || res.Layout.Size != size || segs != size/S {
		t.Fatalf("encode: %v, %d segments", err, segs)
	}
	peak -= base.HeapInuse // what the encoder holds, not what other tests left
	t.Logf("peak heap in use: %d MiB above the start", peak>>20)
	if peak > 300<<20 {
		t.Fatalf("peak heap %d MiB, want under 300 MiB", peak>>20)
	}
}

var errBoom = errors.New("boom")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errBoom }

func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines leaked: %d > %d\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
