package pack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deoss/deoss/internal/failpoint"
	"github.com/deoss/deoss/internal/fsutil"
	"github.com/deoss/deoss/internal/gateway/ingest"
	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// Ingester takes a pack's bytes as a file of the gateway's (ingest.Ingest).
type Ingester interface {
	Accept(ctx context.Context, body io.Reader, f ingest.File) (*pipeline.Record, error)
}

// Chain is what the packer asks of the chain.
type Chain interface {
	File(ctx context.Context, fid types.FID) (*ledger.File, error)
	// Submit sends a message signed by the gateway and waits for its block.
	Submit(ctx context.Context, m ledger.Msg) error
	Territory(ctx context.Context, owner types.Address, name string) (*ledger.Territory, error)
	Packed(ctx context.Context, oid types.FID) (*ledger.PackedView, error)
	PackEntries(ctx context.Context, pack types.FID) ([]ledger.PackEntryView, error)
}

// ObjectReader writes a packed object's bytes, verified, to w.
type ObjectReader func(ctx context.Context, oid types.FID, w io.Writer) error

// Records is the gateway's queue: what it did with a pack's file.
type Records interface {
	Records(fid types.FID) ([]pipeline.Record, error)
}

// Config tunes a Packer. Zero values take the defaults.
type Config struct {
	// Territory is the gateway's own territory that packs are stored in.
	Territory string
	// Threshold: objects of at most this many bytes are packed (default
	// 16 MiB).
	Threshold int64
	// SealBytes seals the open log once it holds this much (default a
	// segment less 64 KiB, so that most packs are one segment).
	SealBytes uint64
	// MaxAge seals the open log once its oldest object waited this long
	// (default 5 minutes).
	MaxAge time.Duration
	// Tick is how often the packer looks (default MaxAge/10, at most 10 s).
	Tick time.Duration
	// CompactAge and CompactDead: a pack declared at least CompactAge ago
	// (default a day) with at least CompactDead of its bytes deleted
	// (default 0.3) is compacted: its live objects are copied into the
	// buffer and moved to the next pack, and it goes with its last.
	CompactAge  time.Duration
	CompactDead float64
	Now         func() time.Time
}

// Packer seals the buffer's logs into packs, has each stored as a file of
// the gateway's, declares its objects, and then drops the log. Build it
// with NewPacker, then Run.
type Packer struct {
	cfg   Config
	buf   *Buffer
	gw    types.Address
	in    Ingester
	chain Chain
	queue Records
	log   *slog.Logger

	mu    sync.Mutex
	packs map[uint64]types.FID // sealed logs accepted as files in this process
	wake  chan struct{}
	// declaring is held from reading a pack's live members to their
	// declaration, and by deletes: a delete is either in the declaration
	// (and then on chain when Delete returns) or left out of it.
	declaring sync.Mutex
	// ready: the pack territory was active with room at the last look;
	// without it objects are not buffered (they could not be packed).
	ready  atomic.Bool
	looked atomic.Bool

	// Compaction: when each pack of this gateway was declared (kept in
	// declared.json beside the logs), and the object reader.
	read        ObjectReader
	declared    map[types.FID]int64
	lastCompact time.Time
}

// NewPacker assembles a packer; it does nothing until Run.
func NewPacker(cfg Config, buf *Buffer, gw types.Address, in Ingester, ch Chain, q Records, log *slog.Logger) *Packer {
	if cfg.SealBytes == 0 {
		cfg.SealBytes = types.SegmentSize - 64<<10
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 5 * time.Minute
	}
	if cfg.Tick <= 0 {
		cfg.Tick = min(cfg.MaxAge/10, 10*time.Second)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CompactAge <= 0 {
		cfg.CompactAge = 24 * time.Hour
	}
	if cfg.CompactDead <= 0 {
		cfg.CompactDead = 0.3
	}
	if cfg.Threshold <= 0 {
		cfg.Threshold = 16 << 20
	}
	cfg.Threshold = min(cfg.Threshold, MaxObject)
	p := &Packer{cfg: cfg, buf: buf, gw: gw, in: in, chain: ch, queue: q, log: log, packs: map[uint64]types.FID{}, wake: make(chan struct{}, 1),
		declared: map[types.FID]int64{}}
	if err := fsutil.ReadJSON(p.declaredPath(), &p.declared); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warn("pack: the record of declared packs does not read; their compaction waits for a restart that reads it", "err", err)
	}
	return p
}

// CompactWith turns compaction on, reading objects through read.
func (p *Packer) CompactWith(read ObjectReader) { p.read = read }

func (p *Packer) declaredPath() string { return filepath.Join(p.buf.dir, "declared.json") }

// Wake makes the packer look now (an append filled the open log, say).
func (p *Packer) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Run seals and declares until ctx ends.
func (p *Packer) Run(ctx context.Context) {
	t := time.NewTicker(p.cfg.Tick)
	defer t.Stop()
	for {
		p.Step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.wake:
		}
	}
}

// Step seals the open log if it is due and moves every sealed log on.
func (p *Packer) Step(ctx context.Context) {
	p.checkTerritory(ctx)
	st := p.buf.OpenLog()
	due := st.Objects >= ledger.MaxPackEntries || st.Bytes >= p.cfg.SealBytes ||
		(st.Objects > 0 && p.cfg.Now().Sub(st.Oldest) >= p.cfg.MaxAge)
	if due {
		if seq, ok, err := p.buf.Seal(); err != nil {
			p.log.Error("pack: seal", "err", err)
		} else if ok {
			p.log.Info("pack: sealed", "log", seq, "objects", st.Objects, "bytes", st.Bytes)
			failpoint.Hit(failpoint.PackSealed)
		}
	}
	if every := min(max(p.cfg.CompactAge/10, time.Second), 10*time.Minute); p.read != nil && p.cfg.Now().Sub(p.lastCompact) >= every {
		p.lastCompact = p.cfg.Now()
		p.compact(ctx)
	}
	for _, seq := range p.buf.Sealed() {
		if ctx.Err() != nil {
			return
		}
		if err := p.advance(ctx, seq); errors.Is(err, errWaiting) {
			p.log.Debug("pack: waiting", "log", seq, "err", err)
		} else if err != nil {
			p.log.Warn("pack: not declared yet", "log", seq, "err", err)
		}
	}
}

// advance takes one sealed log a step: accepted as a file (again, after a
// restart: its bytes and so its FID are the same, and the queue takes a
// file it holds once), declared once stored, dropped once declared.
func (p *Packer) advance(ctx context.Context, seq uint64) error {
	pk, err := p.buf.Pack(seq)
	if err != nil {
		return err
	}
	p.mu.Lock()
	fid, ok := p.packs[seq]
	p.mu.Unlock()
	if !ok {
		if pk.Size == 0 { // only deleted members: nothing to store
			return p.drop(seq)
		}
		rec, err := p.in.Accept(ctx, pk.Reader(), ingest.File{Owner: p.gw, Name: fmt.Sprintf("pack-%d", seq), Territory: p.cfg.Territory, Size: int64(pk.Size)})
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		fid = rec.FID
		p.mu.Lock()
		p.packs[seq] = fid
		p.mu.Unlock()
		failpoint.Hit(failpoint.PackAccepted)
	}
	f, err := p.chain.File(ctx, fid)
	if errors.Is(err, ledger.ErrNotFound) {
		// Not declared yet, or declared and gone (every entry refused or
		// deleted since): the queue knows which.
		if recs, qerr := p.queue.Records(fid); qerr == nil && len(recs) > 0 {
			if s := recs[0].State; s == pipeline.Stored || s == pipeline.Cleaned {
				return p.drop(seq)
			}
		}
		return fmt.Errorf("%w: pack %s not declared", errWaiting, fid)
	}
	switch {
	case err != nil:
		return err
	case f.Pack != nil: // declared (before a restart, say)
		p.recordDeclared(fid)
		return p.drop(seq)
	case f.State != ledger.FileStored:
		return fmt.Errorf("%w: pack %s is %s", errWaiting, fid, f.State)
	}
	p.declaring.Lock()
	defer p.declaring.Unlock()
	if pk, err = p.buf.Pack(seq); err != nil {
		return err
	}
	var entries []ledger.PackEntry
	for _, m := range pk.Members {
		if m.Live {
			entries = append(entries, ledger.PackEntry{OID: m.OID, Owner: m.Owner, Name: m.Name, Territory: m.Territory,
				Offset: m.Offset, Length: m.Length, Private: m.Private, From: m.From, Content: m.Content})
		}
	}
	if len(entries) == 0 { // all deleted while it was stored
		if err := p.chain.Submit(ctx, ledger.Msg{DeleteFile: &ledger.DeleteFile{FID: fid, Owner: p.gw}}); err != nil && !errors.Is(err, ledger.ErrNotFound) {
			return err
		}
		return p.drop(seq)
	}
	err = p.chain.Submit(ctx, ledger.Msg{DeclarePack: &ledger.DeclarePack{Pack: fid, Entries: entries}})
	if err != nil && !errors.Is(err, ledger.ErrConflict) { // conflict: declared already
		return fmt.Errorf("declare: %w", err)
	}
	p.log.Info("pack: declared", "log", seq, "pack", fid, "objects", len(entries))
	failpoint.Hit(failpoint.PackDeclared)
	p.recordDeclared(fid)
	return p.drop(seq)
}

// recordDeclared notes when a pack was declared, for compaction (once: a
// restart that finds its pack declared keeps the first time).
func (p *Packer) recordDeclared(fid types.FID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.declared[fid]; ok {
		return
	}
	p.declared[fid] = p.cfg.Now().Unix()
	if err := fsutil.WriteJSON(p.declaredPath(), p.declared); err != nil {
		p.log.Warn("pack: record a declared pack", "err", err)
	}
}

// errWaiting: a pack is on its way (declared, distributing), not stuck.
var errWaiting = errors.New("waiting")

func (p *Packer) drop(seq uint64) error {
	p.mu.Lock()
	delete(p.packs, seq)
	p.mu.Unlock()
	return p.buf.Drop(seq)
}

// Objects up to memSpoolMax are read into memory before they are appended,
// while at most memSpoolBudget bytes are held so (more waiting uploads spool
// to files): a file per object cost more than its fsync did.
const (
	memSpoolMax    = 1 << 20
	memSpoolBudget = 64 << 20
)

// AppendReader buffers an object read from r (o.Length bytes), read into
// memory or spooled to a file beside the logs first, so that a slow client
// holds no lock.
func (b *Buffer) AppendReader(o Object, r io.Reader) (Object, error) {
	if o.Length > MaxObject {
		return o, ErrTooLarge
	}
	if o.Length <= memSpoolMax {
		if held := b.memHeld.Add(int64(o.Length)); held <= memSpoolBudget {
			defer b.memHeld.Add(-int64(o.Length))
			p := make([]byte, o.Length+1)
			n, err := io.ReadFull(r, p)
			switch {
			case err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF):
				return o, err
			case err == nil || uint64(n) != o.Length:
				return o, fmt.Errorf("%w: %d bytes, declared %d", ingest.ErrSizeMismatch, n, o.Length)
			}
			return b.Append(o, bytes.NewReader(p[:n]))
		}
		b.memHeld.Add(-int64(o.Length))
	}
	f, err := os.CreateTemp(b.dir, "spool-*")
	if err != nil {
		return o, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, io.LimitReader(r, int64(o.Length)+1))
	switch {
	case err != nil:
		return o, err
	case uint64(n) != o.Length:
		return o, fmt.Errorf("%w: %d bytes, declared %d", ingest.ErrSizeMismatch, n, o.Length)
	}
	return b.Append(o, f)
}

// checkTerritory looks at the pack territory: packing waits while it is
// missing, expired or has less room than one more pack.
func (p *Packer) checkTerritory(ctx context.Context) {
	t, err := p.chain.Territory(ctx, p.gw, p.cfg.Territory)
	ok := err == nil && t.Active(p.cfg.Now().Unix()) && t.Free() >= 2*types.SegmentSize
	if p.ready.Swap(ok) != ok || !p.looked.Swap(true) {
		if ok {
			p.log.Info("pack: packing small objects", "territory", p.cfg.Territory, "threshold", p.cfg.Threshold)
		} else {
			p.log.Warn("pack: not packing: the gateway's pack territory is missing, expired or full", "territory", p.cfg.Territory, "err", err)
		}
	}
}

// Takes says whether an object of size bytes is packed now.
func (p *Packer) Takes(size int64) bool {
	return size > 0 && size <= p.cfg.Threshold && p.ready.Load()
}

// Put buffers an object (durable when it returns) and wakes the packer
// when the open log is due.
func (p *Packer) Put(o Object, r io.Reader) (Object, error) {
	o, err := p.buf.AppendReader(o, r)
	if err != nil {
		return o, err
	}
	if st := p.buf.OpenLog(); st.Bytes >= p.cfg.SealBytes || st.Objects >= ledger.MaxPackEntries {
		p.Wake()
	}
	return o, nil
}

// Read returns a buffered object and its verified bytes.
func (p *Packer) Read(oid types.FID) (Object, *io.SectionReader, error) { return p.buf.Read(oid) }

// Buffered says oid is in the buffer (its pack not declared yet).
func (p *Packer) Buffered(oid types.FID) bool {
	_, ok := p.buf.Get(oid)
	return ok
}

// Delete drops a buffered object.
// Once it returns, the object is either not declared by this gateway or
// already on chain (and the caller deletes it there).
func (p *Packer) Delete(oid types.FID) error {
	p.declaring.Lock()
	defer p.declaring.Unlock()
	return p.buf.Delete(oid)
}

// compact copies the live objects of this gateway's packs that are old and
// dead enough into the buffer, marked with the pack they leave; the next
// declaration moves them, and the old pack goes with its last object. At
// most a pack's worth of bytes is copied per look.
func (p *Packer) compact(ctx context.Context) {
	p.mu.Lock()
	var due []types.FID
	for fid, at := range p.declared {
		if p.cfg.Now().Sub(time.Unix(at, 0)) >= p.cfg.CompactAge {
			due = append(due, fid)
		}
	}
	p.mu.Unlock()
	var copied uint64
	for _, fid := range due {
		f, err := p.chain.File(ctx, fid)
		if errors.Is(err, ledger.ErrNotFound) { // gone: every object left it
			p.mu.Lock()
			delete(p.declared, fid)
			fsutil.WriteJSON(p.declaredPath(), p.declared)
			p.mu.Unlock()
			continue
		}
		if err != nil || f.Pack == nil || f.Layout.Size == 0 {
			continue
		}
		if dead := 1 - float64(f.Pack.LiveBytes)/float64(f.Layout.Size); dead < p.cfg.CompactDead {
			continue
		}
		entries, err := p.chain.PackEntries(ctx, fid)
		if err != nil {
			p.log.Warn("pack: list a pack to compact", "pack", fid, "err", err)
			continue
		}
		n := 0
		for _, e := range entries {
			if copied >= p.cfg.SealBytes || ctx.Err() != nil {
				break
			}
			if p.Buffered(e.OID) {
				continue // copied already, not declared yet
			}
			if err := p.copyOut(ctx, fid, e); err != nil {
				// Deleted since it was listed, most often.
				p.log.Info("pack: an object not copied out of a pack to compact", "pack", fid, "oid", e.OID, "err", err)
				continue
			}
			copied += e.Length
			n++
		}
		if n > 0 {
			p.log.Info("pack: compacting", "pack", fid, "live", f.Pack.LiveBytes, "size", f.Layout.Size, "copied", n)
		}
	}
}

func (p *Packer) copyOut(ctx context.Context, from types.FID, e ledger.PackEntryView) error {
	v, err := p.chain.Packed(ctx, e.OID)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(p.read(ctx, e.OID, pw))
	}()
	o, err := p.buf.AppendReader(Object{Owner: v.Owner, Name: v.Name, Territory: v.Territory, Private: v.Private, Length: v.Length, From: &from}, pr)
	pr.CloseWithError(errors.New("copied"))
	<-done
	if err == nil && o.OID != e.OID {
		// The reader verified the bytes against the OID: this is a bug.
		return errors.Join(fmt.Errorf("copied %s as %s", e.OID, o.OID), p.buf.Delete(o.OID))
	}
	return err
}
