package codec

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

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
	ErrSegmentCorrupt     = errors.New("segment does not match its hash")
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
	workers      int
	key          *Key
	cipher       []byte
	onBad        func(*FragmentError)
	hedge        time.Duration
	checkSegment bool
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

// WithHedge starts further fragments of a segment when its reads have not
// all finished after d, so one slow source does not set the pace: the first
// four good fragments win and the rest are cancelled. Zero (the default)
// waits for each read to finish or fail.
func WithHedge(d time.Duration) DecodeOption { return func(c *decodeConfig) { c.hedge = d } }

// WithSegmentCheck reads every segment whole and checks it against its
// segment hash. Use it when the layout's fragment hashes come from a source
// the FID does not bind (a peer's layout of a file not yet on chain): the
// segment hashes are bound by the FID, the fragment hashes are not.
func WithSegmentCheck() DecodeOption { return func(c *decodeConfig) { c.checkSegment = true } }

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
	d := &segmentDecoder{l: l, src: src, rs: rs, key: key, onBad: cfg.onBad, hedge: cfg.hedge, checkSegment: cfg.checkSegment}

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
	l            *types.Layout
	src          FragmentSource
	rs           reedsolomon.Encoder
	key          *Key
	onBad        func(*FragmentError)
	hedge        time.Duration
	checkSegment bool
}

// decode fills s.out with the wanted bytes of segment s.index.
func (d *segmentDecoder) decode(ctx context.Context, s *decodeSlot) error {
	const f = types.FragmentSize
	meta := &d.l.Segments[s.index]
	// Which data fragments hold the wanted bytes. Ciphertext is authenticated
	// as a whole, and a segment checked against its hash is hashed whole, so
	// those need all four.
	needLo, needHi := 0, types.DataShards
	if d.key == nil && !d.checkSegment {
		needLo, needHi = s.lo/f, (s.hi-1)/f+1
	}
	shards, failures, err := d.gather(ctx, s, needLo, needHi)
	if err != nil {
		return err
	}
	if err := d.rebuild(s, &shards, needLo, needHi, failures); err != nil {
		return err
	}
	if d.checkSegment && types.Hash(sha256.Sum256(s.seg)) != meta.Hash {
		return &SegmentError{Segment: s.index, Failures: append(failures,
			&FragmentError{Segment: s.index, Index: -1, Err: ErrSegmentCorrupt})}
	}
	plain := s.seg
	if d.key != nil {
		last := s.index == uint64(len(d.l.Segments)-1)
		if plain, err = d.key.open(s.seg, s.index, last); err != nil {
			return err
		}
	}
	s.out = plain[s.lo:s.hi]
	return nil
}

// fetched is the outcome of one fragment read.
type fetched struct {
	index int
	buf   []byte
	err   error
}

// gather reads fragments until the data fragments in [needLo, needHi) are all
// good, or four good fragments can rebuild them. It starts with just the
// needed data fragments; a failure starts another fragment (data first, then
// parity) at once; each time the hedge delay passes with reads still
// running, enough others start that four good ones can arrive without them.
// When it returns, no read is running: the losers are cancelled and waited
// for, so none writes into s.seg while it is rebuilt.
func (d *segmentDecoder) gather(ctx context.Context, s *decodeSlot, needLo, needHi int) ([types.TotalShards][]byte, []*FragmentError, error) {
	const f = types.FragmentSize
	meta := &d.l.Segments[s.index]
	var shards [types.TotalShards][]byte
	var failures []*FragmentError
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan fetched, types.TotalShards)
	var wg sync.WaitGroup
	var tried [types.TotalShards]bool
	inflight := 0
	launch := func(i int) {
		tried[i] = true
		inflight++
		var buf []byte
		if i < types.DataShards {
			buf = s.seg[i*f : (i+1)*f : (i+1)*f]
		} else {
			buf = fragmentBufs.get()
			s.extra = append(s.extra, buf)
		}
		wg.Go(func() {
			results <- fetched{i, buf, readFragment(fctx, d.src, s.index, i, buf, meta.Fragments[i])}
		})
	}
	// launchMore starts untried fragments, data first, until good+pending
	// reaches four; it reports whether any was left to start.
	launchMore := func(good, pending int) {
		for i := 0; i < types.TotalShards && good+pending < types.DataShards; i++ {
			if !tried[i] {
				launch(i)
				pending++
			}
		}
	}
	apply := func(r fetched) {
		if r.err == nil {
			shards[r.index] = r.buf
			return
		}
		if fctx.Err() != nil {
			return // we cancelled it: not the source's fault
		}
		fe := &FragmentError{Segment: s.index, Index: r.index, Err: r.err}
		failures = append(failures, fe)
		if d.onBad != nil {
			d.onBad(fe)
		}
	}
	count := func() (good int, wanted bool) {
		wanted = true
		for i, b := range shards {
			if b != nil {
				good++
			} else if i >= needLo && i < needHi {
				wanted = false
			}
		}
		return good, wanted
	}
	for i := needLo; i < needHi; i++ {
		launch(i)
	}
	// The hedge fires every d: a fragment started by one hedge may stall
	// too.
	var hedge <-chan time.Time
	if d.hedge > 0 {
		t := time.NewTicker(d.hedge)
		defer t.Stop()
		hedge = t.C
	}
	var err error
	for {
		good, wanted := count()
		if wanted || good >= types.DataShards {
			break
		}
		if inflight == 0 {
			err = &SegmentError{Segment: s.index, Failures: failures}
			break
		}
		select {
		case r := <-results:
			inflight--
			apply(r)
			if r.err != nil {
				good, _ := count()
				launchMore(good, inflight)
			}
		case <-hedge:
			// The running reads may never finish: start enough others
			// that four good ones can arrive without them.
			launchMore(good, 0)
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			break
		}
	}
	cancel()
	wg.Wait()
	for inflight > 0 {
		r := <-results
		inflight--
		if r.err == nil && err == nil {
			shards[r.index] = r.buf // finished as it was cancelled: still good
		}
	}
	return shards, failures, err
}

// rebuild reconstructs the missing data fragments in [needLo, needHi) into
// s.seg from four good fragments, and verifies them.
func (d *segmentDecoder) rebuild(s *decodeSlot, shards *[types.TotalShards][]byte, needLo, needHi int, failures []*FragmentError) error {
	const f = types.FragmentSize
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
	if len(rebuilt) == 0 {
		return nil
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
			return &SegmentError{Segment: s.index, Failures: append(failures,
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
