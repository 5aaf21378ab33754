package codec

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/reedsolomon"

	"github.com/deoss/deoss/internal/types"
)

// Decoding errors. Fragment-level problems arrive as *FragmentError wrapping
// one of the first three; a segment that cannot be rebuilt is a *SegmentError
// wrapping ErrNotEnoughFragments.
var (
	ErrFragmentCorrupt    = errors.New("fragment does not match its hash")
	ErrFragmentShort      = errors.New("fragment shorter than the fragment size")
	ErrFragmentLong       = errors.New("fragment longer than the fragment size")
	ErrNotEnoughFragments = errors.New("fewer than 4 good fragments")
	ErrRange              = errors.New("range outside the file")
	ErrKeyRequired        = errors.New("file is encrypted: a cipher is required")
	ErrKeyMismatch        = errors.New("key was derived for another file's salt")
)

// FragmentSource supplies fragments to the decoder.
type FragmentSource interface {
	// OpenFragment returns the bytes of fragment index (0..11) of a segment.
	// The decoder reads at most FragmentSize+1 bytes, checks the length and the
	// hash, and closes the reader. Any error makes the decoder try other
	// fragments. It is called concurrently.
	OpenFragment(ctx context.Context, segment uint64, index int) (io.ReadCloser, error)
}

// FragmentError says which fragment failed and why.
type FragmentError struct {
	Segment uint64
	Index   int
	Err     error
}

func (e *FragmentError) Error() string {
	return fmt.Sprintf("segment %d fragment %d: %v", e.Segment, e.Index, e.Err)
}

func (e *FragmentError) Unwrap() error { return e.Err }

// SegmentError says that a segment could not be rebuilt, with every fragment
// failure seen.
type SegmentError struct {
	Segment  uint64
	Failures []*FragmentError
}

func (e *SegmentError) Error() string {
	return fmt.Sprintf("segment %d: %v (%d fragments failed, first: %v)", e.Segment, ErrNotEnoughFragments, len(e.Failures), firstFailure(e.Failures))
}

func (e *SegmentError) Unwrap() error { return ErrNotEnoughFragments }

func firstFailure(f []*FragmentError) error {
	if len(f) == 0 {
		return nil
	}
	return f[0]
}

type decodeConfig struct {
	workers int
	key     *Key
	cipher  []byte
	onBad   func(*FragmentError)
}

// DecodeOption configures Decode.
type DecodeOption func(*decodeConfig)

// WithDecodeWorkers sets how many segments are fetched and rebuilt at once
// (default GOMAXPROCS); one more is held for in-order delivery.
func WithDecodeWorkers(n int) DecodeOption {
	return func(c *decodeConfig) {
		if n > 0 {
			c.workers = n
		}
	}
}

// WithDecodeKey decrypts with a key derived earlier (DeriveKey with the
// layout's salt).
func WithDecodeKey(k *Key) DecodeOption { return func(c *decodeConfig) { c.key = k } }

// WithCipher decrypts with a key derived from the user's cipher and the
// layout's salt.
func WithCipher(userCipher []byte) DecodeOption {
	return func(c *decodeConfig) { c.cipher = userCipher }
}

// WithBadFragment calls f (concurrently) for every fragment that failed: source
// errors, wrong lengths and hash mismatches. The gateway uses it to penalise the
// node that served the fragment.
func WithBadFragment(f func(*FragmentError)) DecodeOption {
	return func(c *decodeConfig) { c.onBad = f }
}

// decodeSlot is the memory of one segment in flight.
type decodeSlot struct {
	index uint64
	lo    int // first and one-past-last byte of the block wanted
	hi    int
	seg   []byte // SegmentSize: data fragments in place, then the plain block
	out   []byte // the bytes to deliver, a slice of seg
	extra [][]byte
}

// Decode writes bytes [offset, offset+length) of the file described by l to w,
// reading fragments from src. The layout must be valid (l.Validate); its FID is
// the caller's business. Every fragment is checked against its hash before a
// byte of it is used, and rebuilt fragments are checked again, so w only ever
// receives verified bytes: on an error, w has received a prefix of the range.
//
// When the data fragments covering the range are all good, Decode reads only
// those and does no Reed-Solomon work. Encrypted segments are decrypted whole.
func Decode(ctx context.Context, w io.Writer, l *types.Layout, src FragmentSource, offset, length int64, opts ...DecodeOption) error {
	cfg := decodeConfig{workers: runtime.GOMAXPROCS(0)}
	for _, o := range opts {
		o(&cfg)
	}
	if err := l.Validate(); err != nil {
		return err
	}
	if offset < 0 || length < 0 || uint64(offset) > l.Size || uint64(length) > l.Size-uint64(offset) {
		return fmt.Errorf("%w: %d bytes at %d of a %d-byte file", ErrRange, length, offset, l.Size)
	}
	if length == 0 {
		return nil
	}
	key, err := decodeKey(&cfg, l)
	if err != nil {
		return err
	}
	rs, err := reedsolomon.New(types.DataShards, types.ParityShards, reedsolomon.WithMaxGoroutines(1))
	if err != nil {
		return err
	}
	d := &segmentDecoder{l: l, src: src, rs: rs, key: key, onBad: cfg.onBad}

	block := int64(types.ProfileV1.BlockSize(l.Encryption))
	first, last := uint64(offset/block), uint64((offset+length-1)/block)
	next := first
	slots := newLimiter(cfg.workers + 1)
	produce := func(ctx context.Context) (*decodeSlot, bool, error) {
		if next > last {
			return nil, false, nil
		}
		if err := slots.acquire(ctx); err != nil {
			return nil, false, err
		}
		s := &decodeSlot{index: next, lo: 0, hi: int(block), seg: segmentBufs.get()}
		start := int64(next) * block
		if next == first {
			s.lo = int(offset - start)
		}
		if next == last {
			s.hi = int(offset + length - start)
		}
		next++
		return s, true, nil
	}
	work := func(ctx context.Context, s *decodeSlot) error { return d.decode(ctx, s) }
	deliver := func(s *decodeSlot) error {
		_, err := w.Write(s.out)
		return err
	}
	finish := func(s *decodeSlot) {
		segmentBufs.put(s.seg)
		for _, b := range s.extra {
			fragmentBufs.put(b)
		}
		slots.release()
	}
	return ordered(ctx, cfg.workers, produce, work, deliver, finish)
}

func decodeKey(cfg *decodeConfig, l *types.Layout) (*Key, error) {
	if l.Encryption == types.EncryptionNone {
		return nil, nil
	}
	switch {
	case cfg.key != nil:
		if !cfg.key.matches(l.Salt) {
			return nil, ErrKeyMismatch
		}
		return cfg.key, nil
	case len(cfg.cipher) > 0:
		return DeriveKey(cfg.cipher, l.Salt)
	}
	return nil, ErrKeyRequired
}

type segmentDecoder struct {
	l     *types.Layout
	src   FragmentSource
	rs    reedsolomon.Encoder
	key   *Key
	onBad func(*FragmentError)
}

// decode fills s.out with the wanted bytes of segment s.index.
func (d *segmentDecoder) decode(ctx context.Context, s *decodeSlot) error {
	const f = types.FragmentSize
	meta := &d.l.Segments[s.index]
	// Which data fragments hold the wanted bytes. Ciphertext is authenticated
	// as a whole, so an encrypted segment needs all four.
	needLo, needHi := 0, types.DataShards
	if d.key == nil {
		needLo, needHi = s.lo/f, (s.hi-1)/f+1
	}

	var shards [types.TotalShards][]byte
	var failures []*FragmentError
	var mu sync.Mutex
	fetch := func(ctx context.Context, idxs []int) {
		var wg sync.WaitGroup
		for _, i := range idxs {
			var buf []byte
			if i < types.DataShards {
				buf = s.seg[i*f : (i+1)*f : (i+1)*f]
			} else {
				buf = fragmentBufs.get()
				s.extra = append(s.extra, buf)
			}
			wg.Go(func() {
				err := readFragment(ctx, d.src, s.index, i, buf, meta.Fragments[i])
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					fe := &FragmentError{Segment: s.index, Index: i, Err: err}
					failures = append(failures, fe)
					if d.onBad != nil && ctx.Err() == nil {
						d.onBad(fe)
					}
					return
				}
				shards[i] = buf
			})
		}
		wg.Wait()
	}

	// Fast path: only the data fragments that cover the range.
	want := make([]int, 0, types.TotalShards)
	for i := needLo; i < needHi; i++ {
		want = append(want, i)
	}
	fetch(ctx, want)
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(failures) > 0 {
		if err := d.rebuild(ctx, s, &shards, needLo, needHi, fetch, &failures); err != nil {
			return err
		}
	}

	plain := s.seg
	if d.key != nil {
		last := s.index == uint64(len(d.l.Segments)-1)
		var err error
		if plain, err = d.key.open(s.seg, s.index, last); err != nil {
			return err
		}
	}
	s.out = plain[s.lo:s.hi]
	return nil
}

// rebuild fetches further fragments until four are good, then reconstructs the
// missing data fragments in [needLo, needHi) into s.seg and verifies them.
func (d *segmentDecoder) rebuild(ctx context.Context, s *decodeSlot, shards *[types.TotalShards][]byte,
	needLo, needHi int, fetch func(context.Context, []int), failures *[]*FragmentError) error {
	const f = types.FragmentSize
	tried := make([]bool, types.TotalShards)
	for i := needLo; i < needHi; i++ {
		tried[i] = true
	}
	good := func() int {
		n := 0
		for _, b := range shards {
			if b != nil {
				n++
			}
		}
		return n
	}
	// Data fragments first (a good one needs no rebuilding), then parity; ask
	// for exactly as many as are still missing, in parallel.
	for good() < types.DataShards {
		var batch []int
		for i := 0; i < types.TotalShards && len(batch) < types.DataShards-good(); i++ {
			if !tried[i] {
				tried[i] = true
				batch = append(batch, i)
			}
		}
		if len(batch) == 0 {
			return &SegmentError{Segment: s.index, Failures: *failures}
		}
		fetch(ctx, batch)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	// Reconstruct into the segment buffer: a missing data shard is given as a
	// zero-length slice whose capacity is its place in s.seg.
	required := make([]bool, types.TotalShards)
	input := make([][]byte, types.TotalShards)
	var rebuilt []int
	for i := range types.TotalShards {
		input[i] = shards[i]
		if i < types.DataShards && shards[i] == nil && i >= needLo && i < needHi {
			required[i] = true
			input[i] = s.seg[i*f : i*f : (i+1)*f]
			rebuilt = append(rebuilt, i)
		}
	}
	if err := d.rs.ReconstructSome(input, required); err != nil {
		return fmt.Errorf("segment %d: reconstruct: %w", s.index, err)
	}
	// The fragments were verified, but the rebuilt ones are checked too: with
	// hashes from a layout whose parity does not match its data, a rebuild
	// would otherwise produce wrong bytes that no hash ever saw.
	meta := &d.l.Segments[s.index]
	for _, i := range rebuilt {
		if types.Hash(sha256.Sum256(s.seg[i*f:(i+1)*f])) != meta.Fragments[i] {
			return &SegmentError{Segment: s.index, Failures: append(*failures,
				&FragmentError{Segment: s.index, Index: i, Err: fmt.Errorf("rebuilt: %w", ErrFragmentCorrupt)})}
		}
	}
	return nil
}

// readFragment reads a whole fragment into buf and verifies its length and hash.
func readFragment(ctx context.Context, src FragmentSource, seg uint64, index int, buf []byte, want types.Hash) error {
	rc, err := src.OpenFragment(ctx, seg, index)
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, buf)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return fmt.Errorf("%w: %d bytes", ErrFragmentShort, n)
	case err != nil:
		return err
	}
	var one [1]byte
	if m, _ := io.ReadFull(rc, one[:]); m > 0 {
		return ErrFragmentLong
	}
	if types.Hash(sha256.Sum256(buf)) != want {
		return ErrFragmentCorrupt
	}
	return nil
}
