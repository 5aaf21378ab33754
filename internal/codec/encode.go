package codec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/reedsolomon"

	"github.com/deoss/deoss/internal/types"
)

// ErrSizeMismatch is returned when a stream's length differs from the size the
// caller declared with WithSize.
var ErrSizeMismatch = errors.New("stream length differs from the declared size")

// ErrTooLarge is returned when a stream needs more than types.MaxSegments
// segments.
var ErrTooLarge = errors.New("file exceeds the maximum number of segments")

// Segment is one encoded segment as the encoder hands it to a Sink.
type Segment struct {
	Index uint64
	// Hash is the hash of the segment's bytes (ciphertext when encrypted):
	// SHA-256 in v1, BLAKE3 in v2.
	Hash types.Hash
	// Fragments are the 12 shards, Layout.FragmentLen bytes each (a v2 last
	// segment's are shorter). They are borrowed:
	// valid only until WriteSegment returns.
	Fragments      [types.TotalShards][]byte
	FragmentHashes [types.TotalShards]types.Hash
}

// Sink receives encoded segments. WriteSegment is called once per segment, in
// index order, never concurrently; an error stops the encoder and is returned by
// Encode. The gateway's sink appends each fragment to its column file.
type Sink interface {
	WriteSegment(s *Segment) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(s *Segment) error

// WriteSegment calls f.
func (f SinkFunc) WriteSegment(s *Segment) error { return f(s) }

// Result is what Encode learned about the stream.
type Result struct {
	FID    types.FID
	Layout types.Layout
}

type encodeConfig struct {
	workers int
	size    int64 // -1: unknown
	key     *Key
	version uint8
	owner   types.Address
}

// EncodeOption configures Encode.
type EncodeOption func(*encodeConfig)

// WithWorkers sets how many segments are encoded at once (default GOMAXPROCS).
// Each costs 96 MiB of buffers; one more segment is read ahead.
func WithWorkers(n int) EncodeOption {
	return func(c *encodeConfig) {
		if n > 0 {
			c.workers = n
		}
	}
}

// WithSize declares the stream's length. Encode then fails with ErrSizeMismatch
// if the stream is shorter or longer, instead of encoding what it got.
func WithSize(n int64) EncodeOption { return func(c *encodeConfig) { c.size = n } }

// WithFormat picks the format version (default types.FormatV2; v1 only for
// tests and vectors).
func WithFormat(v uint8) EncodeOption { return func(c *encodeConfig) { c.version = v } }

// WithOwner names the file's owner, which a v2 FID binds.
func WithOwner(a types.Address) EncodeOption { return func(c *encodeConfig) { c.owner = a } }

// WithKey encrypts every segment with k (AES-256-GCM); the layout records k's
// salt.
func WithKey(k *Key) EncodeOption { return func(c *encodeConfig) { c.key = k } }

// encodeSlot is the memory of one segment in flight.
type encodeSlot struct {
	seg     Segment
	data    []byte // SegmentSize: the segment, then its 4 data fragments
	parity  []byte // (TotalShards-DataShards)*FragmentSize, nil until worked
	n       int    // user bytes in data
	segLen  int    // stored length of the segment
	last    bool
	parityL limiter
}

// Encode reads r to its end and encodes it per docs/format.md, handing each
// segment to sink in order. It holds at most workers+1 segments of input and
// workers segments of parity at a time, whatever the stream's length.
func Encode(ctx context.Context, r io.Reader, sink Sink, opts ...EncodeOption) (*Result, error) {
	cfg := encodeConfig{workers: runtime.GOMAXPROCS(0), size: -1, version: types.FormatV2}
	for _, o := range opts {
		o(&cfg)
	}
	prof, err := types.ProfileFor(cfg.version)
	if err != nil {
		return nil, err
	}
	res := &Result{Layout: types.Layout{Version: cfg.version}}
	l := &res.Layout
	if cfg.version == types.FormatV2 {
		if cfg.owner.IsZero() {
			return nil, errors.New("a v2 file needs its owner (WithOwner)")
		}
		l.Owner = cfg.owner
	}
	if cfg.key != nil {
		l.Encryption = types.EncryptionAES256GCM
		l.Salt = cfg.key.Salt()
	}
	block := prof.BlockSize(l.Encryption)
	if cfg.size >= 0 {
		if prof.Segments(uint64(cfg.size), l.Encryption) > types.MaxSegments {
			return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, cfg.size)
		}
		r = io.LimitReader(r, cfg.size+1) // one byte past the end reveals a longer stream
	}

	// Fewer segment workers than cores (a gateway bounds the memory of each
	// upload): each segment's Reed-Solomon and hashing use the other cores,
	// so a lone upload encodes with every core and concurrent ones share
	// them, with no more segments in memory.
	par := max(1, runtime.GOMAXPROCS(0)/cfg.workers)
	enc, err := reedsolomon.New(types.DataShards, types.ParityShards, reedsolomon.WithMaxGoroutines(par))
	if err != nil {
		return nil, err
	}
	pr := &peekReader{r: r}
	dataL := newLimiter(cfg.workers + 1)
	parityL := newLimiter(cfg.workers)
	var index uint64
	var total uint64
	done := false

	produce := func(ctx context.Context) (*encodeSlot, bool, error) {
		if done {
			return nil, false, nil
		}
		if err := dataL.acquire(ctx); err != nil {
			return nil, false, err
		}
		s := &encodeSlot{data: segmentBufs.get(), parityL: parityL}
		n, err := io.ReadFull(pr, s.data[:block])
		switch {
		case err == io.ErrUnexpectedEOF || err == io.EOF:
			done = true
		case err != nil:
			releaseEncodeSlot(s, dataL)
			return nil, false, fmt.Errorf("read: %w", err)
		default:
			done = pr.atEOF()
			if pr.err != nil {
				releaseEncodeSlot(s, dataL)
				return nil, false, fmt.Errorf("read: %w", pr.err)
			}
		}
		if n == 0 {
			// The stream ended on a segment boundary (or was empty):
			// nothing to encode.
			releaseEncodeSlot(s, dataL)
			return nil, false, nil
		}
		if index >= types.MaxSegments {
			releaseEncodeSlot(s, dataL)
			return nil, false, fmt.Errorf("%w (%d)", ErrTooLarge, types.MaxSegments)
		}
		s.segLen = prof.SegmentLen(n, l.Encryption)
		// Zero padding (also wipes a reused buffer's old bytes): to the
		// segment's end, or for v2 ciphertext to the last block's plaintext end.
		pad := s.segLen
		if cfg.key != nil && cfg.version == types.FormatV2 {
			pad = s.segLen / types.CipherBlock * plainPerBlock
		}
		clear(s.data[n:pad])
		s.n, s.last, s.seg.Index = n, done, index
		index++
		total += uint64(n)
		return s, true, nil
	}
	work := func(ctx context.Context, s *encodeSlot) error {
		if err := s.parityL.acquire(ctx); err != nil {
			return err
		}
		s.parity = parityBufs.get()
		switch {
		case cfg.key != nil && cfg.version == types.FormatV1:
			cfg.key.seal(s.data, s.seg.Index, s.last)
		case cfg.key != nil:
			cfg.key.sealBlocks(s.data, s.n, s.seg.Index, s.last)
		}
		return encodeSegment(enc, &s.seg, cfg.version, s.data[:s.segLen], s.parity, par)
	}
	deliver := func(s *encodeSlot) error {
		l.Segments = append(l.Segments, types.SegmentLayout{Hash: s.seg.Hash, Fragments: s.seg.FragmentHashes})
		return sink.WriteSegment(&s.seg)
	}
	finish := func(s *encodeSlot) { releaseEncodeSlot(s, dataL) }

	if err := ordered(ctx, cfg.workers, produce, work, deliver, finish); err != nil {
		return nil, err
	}
	l.Size = total
	if cfg.size >= 0 && total != uint64(cfg.size) {
		return nil, fmt.Errorf("%w: declared %d bytes, stream has %s", ErrSizeMismatch, cfg.size, describeLen(total, uint64(cfg.size)))
	}
	res.FID = FileID(l)
	return res, nil
}

func describeLen(got, want uint64) string {
	if got > want {
		return "more"
	}
	return fmt.Sprintf("%d", got)
}

func releaseEncodeSlot(s *encodeSlot, dataL limiter) {
	segmentBufs.put(s.data)
	dataL.release()
	if s.parity != nil {
		parityBufs.put(s.parity)
		s.parityL.release()
	}
}

// encodeSegment erasure-codes one segment and hashes it and its fragments
// with the version's hash. data is the segment (its stored length, a
// multiple of 4) and becomes the data fragments in place; parity receives
// the parity fragments.
func encodeSegment(enc reedsolomon.Encoder, seg *Segment, version uint8, data, parity []byte, par int) error {
	f := len(data) / types.DataShards
	shards := seg.Fragments[:]
	for i := range types.DataShards {
		shards[i] = data[i*f : (i+1)*f : (i+1)*f]
	}
	for i := range types.ParityShards {
		shards[types.DataShards+i] = parity[i*f : (i+1)*f : (i+1)*f]
	}
	if err := enc.Encode(shards); err != nil {
		return err
	}
	hashAll(version, data, seg, par)
	return nil
}

// hashAll hashes the segment and its fragments on par goroutines. The
// segment (4 fragments long) goes first, then the fragments, each to the
// goroutine that is free: the loads come out even.
func hashAll(version uint8, data []byte, seg *Segment, par int) {
	if par <= 1 {
		seg.Hash = Sum(version, data)
		for i, s := range seg.Fragments {
			seg.FragmentHashes[i] = Sum(version, s)
		}
		return
	}
	next := make(chan int, types.TotalShards+1)
	for i := -1; i < types.TotalShards; i++ {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range par {
		wg.Go(func() {
			for i := range next {
				if i < 0 {
					seg.Hash = Sum(version, data)
				} else {
					seg.FragmentHashes[i] = Sum(version, seg.Fragments[i])
				}
			}
		})
	}
	wg.Wait()
}

// peekReader reads one byte ahead so that the encoder knows, when a segment
// fills up, whether it is the last one (the encryption nonce depends on it).
type peekReader struct {
	r      io.Reader
	peeked []byte
	buf    [1]byte
	err    error
}

func (p *peekReader) Read(b []byte) (int, error) {
	if len(p.peeked) > 0 && len(b) > 0 {
		b[0] = p.peeked[0]
		p.peeked = nil
		n, err := p.r.Read(b[1:])
		return n + 1, err
	}
	return p.r.Read(b)
}

// atEOF reports whether the stream has no more bytes. An error other than EOF
// is kept in p.err.
func (p *peekReader) atEOF() bool {
	if len(p.peeked) > 0 {
		return false
	}
	for {
		n, err := p.r.Read(p.buf[:])
		if n == 1 {
			p.peeked = p.buf[:1]
			return false
		}
		if err == io.EOF {
			return true
		}
		if err != nil {
			p.err = err
			return true
		}
	}
}
