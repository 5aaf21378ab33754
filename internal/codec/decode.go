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
	// The decoder reads at most the fragment's length + 1 bytes, checks the
	// length and the hash, and closes the reader. Any error makes the
	// decoder try other fragments. It is called concurrently.
	OpenFragment(ctx context.Context, segment uint64, index int) (io.ReadCloser, error)
}

// SliceSource is a FragmentSource that also serves byte ranges of format v2
// fragments. The decoder uses it for v2 files, so a range read moves about
// the bytes of the range, not whole fragments.
type SliceSource interface {
	FragmentSource
	// OpenSlice returns bytes [off, off+n) of fragment index of a segment in
	// one of the encodings of Encoding, which the decoder verifies against
	// the fragment hash before it uses a byte.
	OpenSlice(ctx context.Context, segment uint64, index int, off, n int64) (rc io.ReadCloser, enc Encoding, err error)
}

// Encoding is how a SliceSource's answer carries a range of a fragment.
type Encoding int

const (
	// EncSlice: a Bao slice of the range (16 KiB groups; WriteSlice).
	EncSlice Encoding = iota
	// EncWhole: the whole raw fragment (a local copy without its outboard):
	// hashed whole, then the range is taken.
	EncWhole
	// EncOutboard: the fragment's outboard, then the whole raw fragment
	// (WriteOutboardStream), for a range that is the whole fragment: it is
	// verified 16 KiB at a time like a slice, and a node sends the fragment
	// from its file with sendfile.
	EncOutboard
)

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
	onGood       func(segment uint64, index int, b []byte)
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

// WithVerifiedFragment calls f (concurrently) with every whole fragment the
// decoder read and verified against its hash, before the buffer is reused:
// the gateway's cache keeps them without hashing them again.
func WithVerifiedFragment(f func(segment uint64, index int, b []byte)) DecodeOption {
	return func(c *decodeConfig) { c.onGood = f }
}

// WithHedge starts further fragments of a segment when its reads have not
// all finished after d, so one slow source does not set the pace: the first
// four good fragments win and the rest are cancelled. Zero (the default)
// waits for each read to finish or fail.
func WithHedge(d time.Duration) DecodeOption { return func(c *decodeConfig) { c.hedge = d } }

// WithSegmentCheck reads every v1 segment whole and checks it against its
// segment hash. Use it when the layout's fragment hashes come from a source
// the FID does not bind (a peer's layout of a file not yet on chain): a v1
// FID binds the segment hashes, not the fragment hashes. A v2 FID binds
// both, so the option changes nothing for v2.
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
	prof, _ := l.Profile() // Validate checked it
	d := &segmentDecoder{l: l, src: src, rs: rs, key: key, onBad: cfg.onBad, onGood: cfg.onGood, hedge: cfg.hedge,
		checkSegment: cfg.checkSegment && l.Version == types.FormatV1}
	d.slices, _ = src.(SliceSource)

	block := int64(prof.BlockSize(l.Encryption))
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
	slices       SliceSource // src when it serves v2 slices, else nil
	rs           reedsolomon.Encoder
	key          *Key
	onBad        func(*FragmentError)
	onGood       func(uint64, int, []byte)
	hedge        time.Duration
	checkSegment bool
}

// wholeBelow: v2 fragments up to this size are always read whole (a short
// last segment's, say).
const wholeBelow = 4 * types.ChunkGroup

// span is a byte range of each fragment of a segment, and the data
// fragments whose bytes in that range go to the reader.
type span struct {
	lo, hi int
	need   []int
}

// spans says which bytes of which data fragments segment s needs. v1 reads
// whole fragments; so does a whole v1 ciphertext (authenticated as one) or a
// segment checked against its hash. v2 reads only the range: the plaintext
// bytes, or the cipher blocks that hold them. Data fragments whose ranges
// are equal share a span, so a rebuild fetches one range of other fragments.
func (d *segmentDecoder) spans(s *decodeSlot) (spans []span, segLo, segHi int) {
	segLen := d.l.SegmentLen(int(s.index))
	f := segLen / types.DataShards
	segLo, segHi = s.lo, s.hi
	switch {
	case d.l.Version == types.FormatV1 && (d.key != nil || d.checkSegment):
		segLo, segHi = 0, segLen
	case d.key != nil:
		per := types.CipherBlock - types.GCMOverhead
		segLo, segHi = s.lo/per*types.CipherBlock, (s.hi+per-1)/per*types.CipherBlock
	}
	for i := segLo / f; i < types.DataShards && i*f < segHi; i++ {
		lo, hi := max(segLo-i*f, 0), min(segHi-i*f, f)
		// v1 reads whole fragments. So does v2 when the range is most of
		// one, or the fragment is small: it costs little more, and a whole
		// verified fragment can be cached (WithVerifiedFragment).
		if d.l.Version == types.FormatV1 || 2*(hi-lo) >= f || f <= wholeBelow {
			lo, hi = 0, f
		}
		if n := len(spans); n > 0 && spans[n-1].lo == lo && spans[n-1].hi == hi {
			spans[n-1].need = append(spans[n-1].need, i)
			continue
		}
		spans = append(spans, span{lo: lo, hi: hi, need: []int{i}})
	}
	return spans, segLo, segHi
}

// decode fills s.out with the wanted bytes of segment s.index.
func (d *segmentDecoder) decode(ctx context.Context, s *decodeSlot) error {
	meta := &d.l.Segments[s.index]
	spans, segLo, segHi := d.spans(s)
	// Spans of one segment are fetched at once: a range across a fragment
	// boundary waits for the slower of two reads, not their sum.
	errs := make([]error, len(spans))
	extras := make([][][]byte, len(spans))
	var wg sync.WaitGroup
	for k := range spans {
		run := func() {
			var shards [types.TotalShards][]byte
			var failures []*FragmentError
			shards, failures, extras[k], errs[k] = d.gather(ctx, s, &spans[k])
			if errs[k] == nil {
				errs[k] = d.rebuild(s, &shards, &spans[k], failures)
			}
		}
		if k == len(spans)-1 {
			run()
		} else {
			wg.Go(run)
		}
	}
	wg.Wait()
	for _, e := range extras {
		s.extra = append(s.extra, e...)
	}
	if err := firstError(errs); err != nil {
		return err
	}
	if d.checkSegment && types.Hash(sha256.Sum256(s.seg[:segHi])) != meta.Hash {
		return &SegmentError{Segment: s.index, Failures: []*FragmentError{{Segment: s.index, Index: -1, Err: ErrSegmentCorrupt}}}
	}
	if d.key == nil {
		s.out = s.seg[s.lo:s.hi]
		return nil
	}
	last := s.index == uint64(len(d.l.Segments)-1)
	if d.l.Version == types.FormatV1 {
		plain, err := d.key.open(s.seg, s.index, last)
		if err != nil {
			return err
		}
		s.out = plain[s.lo:s.hi]
		return nil
	}
	lastBlock := -1
	if last {
		lastBlock = d.l.SegmentLen(int(s.index))/types.CipherBlock - 1
	}
	first := segLo / types.CipherBlock
	plain, err := d.key.openBlocks(s.seg[segLo:segHi], s.index, first, lastBlock)
	if err != nil {
		return err
	}
	base := first * (types.CipherBlock - types.GCMOverhead)
	s.out = plain[s.lo-base : s.hi-base]
	return nil
}

// firstError returns the first non-nil error (a SegmentError when one
// span could not be rebuilt).
func firstError(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// fetched is the outcome of one fragment read.
type fetched struct {
	index int
	buf   []byte
	err   error
}

// gather reads range [sp.lo, sp.hi) of fragments until the data fragments in
// sp.need are all good, or four good ones can rebuild them. It starts with
// just the needed data fragments; a failure starts another fragment (data
// first, then parity) at once; each time the hedge delay passes with reads
// still running, enough others start that four good ones can arrive without
// them. When it returns, no read is running: the losers are cancelled and
// waited for, so none writes into s.seg while it is rebuilt. Buffers it took
// from the pool are returned as extra, for the caller to put back.
func (d *segmentDecoder) gather(ctx context.Context, s *decodeSlot, sp *span) (shards [types.TotalShards][]byte, failures []*FragmentError, extra [][]byte, err error) {
	f := d.l.FragmentLen(int(s.index))
	meta := &d.l.Segments[s.index]
	n := sp.hi - sp.lo
	var needed [types.TotalShards]bool
	for _, i := range sp.need {
		needed[i] = true
	}
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
		if needed[i] {
			buf = s.seg[i*f+sp.lo : i*f+sp.hi : i*f+sp.hi]
		} else {
			b := fragmentBufs.get()
			extra = append(extra, b)
			buf = b[:n:n]
		}
		wg.Go(func() {
			results <- fetched{i, buf, d.read(fctx, s.index, i, sp.lo, buf, f, meta.Fragments[i])}
		})
	}
	// launchMore starts untried fragments, data first, until good+pending
	// reaches four.
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
			} else if needed[i] {
				wanted = false
			}
		}
		return good, wanted
	}
	for _, i := range sp.need {
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
	return shards, failures, extra, err
}

// read fetches bytes [lo, lo+len(buf)) of a fragment of f bytes into buf and
// verifies them: a v1 fragment whole against its SHA-256, a v2 range as a
// verified slice (or, from a local copy, the whole fragment against its
// BLAKE3 hash).
func (d *segmentDecoder) read(ctx context.Context, seg uint64, i, lo int, buf []byte, f int, want types.Hash) error {
	var rc io.ReadCloser
	var err error
	if d.l.Version == types.FormatV2 && d.slices != nil {
		var enc Encoding
		if rc, enc, err = d.slices.OpenSlice(ctx, seg, i, int64(lo), int64(len(buf))); err != nil {
			return err
		}
		defer rc.Close()
		if enc != EncWhole {
			if enc == EncOutboard && (lo != 0 || len(buf) != f) {
				return fmt.Errorf("%w: an outboard stream for a part of the fragment", ErrSliceRange)
			}
			if enc == EncOutboard {
				err = VerifyOutboardStream(rc, buf, want)
			} else {
				err = VerifySlice(rc, buf, int64(f), int64(lo), want)
			}
			if err == nil && lo == 0 && len(buf) == f && d.onGood != nil {
				d.onGood(seg, i, buf)
			}
			return err
		}
	} else {
		if rc, err = d.src.OpenFragment(ctx, seg, i); err != nil {
			return err
		}
		defer rc.Close()
	}
	// A whole fragment: read, check its length and hash, take the range.
	full := buf
	if len(buf) != f {
		b := fragmentBufs.get()
		defer fragmentBufs.put(b)
		full = b[:f]
	}
	if err := readFragment(rc, full, d.l.Version, want); err != nil {
		return err
	}
	if d.onGood != nil {
		d.onGood(seg, i, full)
	}
	if len(buf) != f {
		copy(buf, full[lo:])
	}
	return nil
}

// rebuild reconstructs the missing needed data fragments' range from four
// good fragments' same range (Reed-Solomon works position by position) into
// s.seg, and verifies what it can.
func (d *segmentDecoder) rebuild(s *decodeSlot, shards *[types.TotalShards][]byte, sp *span, failures []*FragmentError) error {
	f := d.l.FragmentLen(int(s.index))
	// Reconstruct into the segment buffer: a missing data shard is given as a
	// zero-length slice whose capacity is its place in s.seg.
	required := make([]bool, types.TotalShards)
	input := make([][]byte, types.TotalShards)
	var rebuilt []int
	for i := range types.TotalShards {
		input[i] = shards[i]
	}
	for _, i := range sp.need {
		if shards[i] == nil {
			required[i] = true
			input[i] = s.seg[i*f+sp.lo : i*f+sp.lo : i*f+sp.hi]
			rebuilt = append(rebuilt, i)
		}
	}
	if len(rebuilt) == 0 {
		return nil
	}
	if err := d.rs.ReconstructSome(input, required); err != nil {
		return fmt.Errorf("segment %d: reconstruct: %w", s.index, err)
	}
	// The inputs were verified, but a rebuilt whole fragment is checked too:
	// with hashes from a layout whose parity does not match its data, a
	// rebuild would otherwise produce wrong bytes that no hash ever saw. A
	// rebuilt part of a v2 fragment has no hash of its own to check
	// (docs/format.md, "Rebuilt ranges").
	if sp.lo != 0 || sp.hi != f {
		return nil
	}
	meta := &d.l.Segments[s.index]
	for _, i := range rebuilt {
		if Sum(d.l.Version, s.seg[i*f:(i+1)*f]) != meta.Fragments[i] {
			return &SegmentError{Segment: s.index, Failures: append(failures,
				&FragmentError{Segment: s.index, Index: i, Err: fmt.Errorf("rebuilt: %w", ErrFragmentCorrupt)})}
		}
	}
	return nil
}

// readFragment reads a whole fragment from rc into buf and verifies its
// length and hash.
func readFragment(rc io.Reader, buf []byte, version uint8, want types.Hash) error {
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
	if Sum(version, buf) != want {
		return ErrFragmentCorrupt
	}
	return nil
}
