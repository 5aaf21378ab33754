package pack

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fxamacker/cbor/v2"
	"lukechampine.com/blake3"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

const (
	magic = "DPK1"
	// MaxHeader bounds a record's header (names are at most 255 bytes).
	MaxHeader = 1 << 12
	// MaxObject is the largest object a buffer takes: one segment, so that
	// one object never straddles two packs.
	MaxObject = types.SegmentSize
)

// Errors of a Buffer.
var (
	ErrNotFound = errors.New("pack: object not buffered")
	ErrTooLarge = fmt.Errorf("pack: an object is at most %d bytes", MaxObject)
	ErrCorrupt  = errors.New("pack: buffered bytes do not match their object id")
	ErrClosed   = errors.New("pack: buffer closed")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Object is what a buffer keeps of one object: what DeclarePack lists.
type Object struct {
	OID       types.FID     `cbor:"1,keyasint"`
	Owner     types.Address `cbor:"2,keyasint"`
	Name      string        `cbor:"3,keyasint"`
	Territory string        `cbor:"4,keyasint"`
	Private   bool          `cbor:"5,keyasint,omitempty"`
	// Encryption: a client-side encrypted object's bytes are ciphertext
	// (its OID says so); the gateway does not encrypt packed objects.
	Encryption types.Encryption `cbor:"6,keyasint,omitempty"`
	Length     uint64           `cbor:"7,keyasint"`
	// Time is when it was appended (Unix nanoseconds).
	Time    int64 `cbor:"8,keyasint"`
	Deleted bool  `cbor:"9,keyasint,omitempty"`
	// From is the older pack a compaction copies the object out of: its
	// declaration moves the object instead of adding it.
	From *types.FID `cbor:"10,keyasint,omitempty"`
	// Content is the BLAKE3 of the bytes, which the OID binds: a pack's
	// entry lists it so that the ledger can check the OID's owner and
	// length.
	Content types.Hash `cbor:"11,keyasint"`
}

// entry is an object's record in a log.
type entry struct {
	Object
	log  *logFile
	data int64 // offset of the bytes in the log
	end  int64 // where the record ends
}

type logFile struct {
	seq  uint64
	path string
	f    *os.File
	size atomic.Int64 // bytes of whole records written
	// members: the records live within this log, in order (a pack's
	// contents once sealed).
	members     []*entry
	memberBytes uint64 // the members' lengths
	byOID       map[types.FID]*entry

	syncMu sync.Mutex
	synced int64
}

// Buffer is the durable buffer of objects waiting for a pack. It is safe
// for concurrent use.
type Buffer struct {
	dir string
	now func() time.Time
	log *slog.Logger

	mu     sync.Mutex
	open   *logFile
	logs   map[uint64]*logFile
	index  map[types.FID]*entry // live objects
	closed bool

	memHeld atomic.Int64 // bytes of uploads read into memory (AppendReader)
	// owed is what the live objects not yet on chain will be charged, by
	// owner and territory: the ingest counts it as pending, so that the
	// buffer cannot take more than a territory holds.
	owed map[owedKey]uint64
}

type owedKey struct {
	owner     types.Address
	territory string
}

func (b *Buffer) indexPut(e *entry) {
	b.index[e.OID] = e
	if e.From == nil { // a compaction's copy is charged already
		b.owed[owedKey{e.Owner, e.Territory}] += ledger.PackCharge(e.Length)
	}
}

func (b *Buffer) indexDel(oid types.FID) {
	e, ok := b.index[oid]
	if !ok {
		return
	}
	delete(b.index, oid)
	if e.From == nil {
		k := owedKey{e.Owner, e.Territory}
		if b.owed[k] -= min(b.owed[k], ledger.PackCharge(e.Length)); b.owed[k] == 0 {
			delete(b.owed, k)
		}
	}
}

// Owed is what owner's buffered objects will be charged once declared, by
// territory and in all (ingest.SessionBytes).
func (b *Buffer) Owed(owner types.Address) (map[string]uint64, uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	byT, all := map[string]uint64{}, uint64(0)
	for k, n := range b.owed {
		if k.owner == owner {
			byT[k.territory] += n
			all += n
		}
	}
	return byT, all
}

// Open opens (or creates) the buffer in dir and replays its logs.
func Open(dir string, now func() time.Time, log *slog.Logger) (*Buffer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	b := &Buffer{dir: dir, now: now, log: log, logs: map[uint64]*logFile{}, index: map[types.FID]*entry{}, owed: map[owedKey]uint64{}}
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil {
		return nil, err
	}
	spools, _ := filepath.Glob(filepath.Join(dir, "spool-*")) // a crash's leftovers: never acknowledged
	for _, s := range spools {
		os.Remove(s)
	}
	var seqs []uint64
	for _, n := range names {
		seq, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(n), ".log"), 10, 64)
		if err != nil {
			continue // not ours
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		l, err := b.replay(seq)
		if err != nil {
			b.closeLogs()
			return nil, err
		}
		b.logs[seq] = l
		b.open = l
	}
	if b.open == nil {
		if b.open, err = b.newLog(1); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b *Buffer) logPath(seq uint64) string {
	return filepath.Join(b.dir, fmt.Sprintf("%020d.log", seq))
}

func (b *Buffer) newLog(seq uint64) (*logFile, error) {
	p := b.logPath(seq)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syncDir(b.dir); err != nil {
		f.Close()
		return nil, err
	}
	l := &logFile{seq: seq, path: p, f: f, byOID: map[types.FID]*entry{}}
	b.logs[seq] = l
	return l, nil
}

// replay reads a log's records into the index, truncating it at its first
// bad record.
func (b *Buffer) replay(seq uint64) (*logFile, error) {
	p := b.logPath(seq)
	f, err := os.OpenFile(p, os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	l := &logFile{seq: seq, path: p, f: f, byOID: map[types.FID]*entry{}}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, st.Size()), 1<<16)
	var off int64
	for {
		o, dataAt, n, err := readRecord(r, off)
		if err == io.EOF {
			break
		}
		if err != nil && !errors.As(err, new(*badRecord)) {
			b.log.Warn("pack buffer: a bad record ends the log; truncated", "log", p, "offset", off, "dropped", st.Size()-off, "err", err)
			if err := f.Truncate(off); err != nil {
				f.Close()
				return nil, err
			}
			if err := f.Sync(); err != nil {
				f.Close()
				return nil, err
			}
			break
		}
		var bad *badRecord
		if errors.As(err, &bad) {
			// Framed but wrong (a flipped bit): only this record is lost.
			b.log.Error("pack buffer: a record does not verify; skipped", "log", p, "offset", off, "err", err)
			off += n
			continue
		}
		b.apply(l, o, dataAt, off+n)
		off += n
	}
	l.size.Store(off)
	l.synced = off
	return l, nil
}

// apply adds a record to the log's members and the index (b.mu held, or
// during Open).
func (b *Buffer) apply(l *logFile, o Object, dataAt, end int64) {
	if o.Deleted {
		if e, ok := l.byOID[o.OID]; ok {
			delete(l.byOID, o.OID)
			l.members = slices.DeleteFunc(l.members, func(m *entry) bool { return m == e })
			l.memberBytes -= e.Length
		}
		b.indexDel(o.OID)
		return
	}
	if _, ok := l.byOID[o.OID]; ok {
		return
	}
	e := &entry{Object: o, log: l, data: dataAt, end: end}
	l.byOID[o.OID] = e
	l.members = append(l.members, e)
	l.memberBytes += e.Length
	if _, ok := b.index[o.OID]; !ok {
		b.indexPut(e)
	}
}

// badRecord is a whole record that does not verify: the log goes on after
// it.
type badRecord struct{ why string }

func (e *badRecord) Error() string { return "pack: bad record: " + e.why }

// readRecord reads one record that starts at off; it returns the header,
// where the data lies, and the record's length (also with a *badRecord).
// Other errors mean the log's framing ends here.
func readRecord(r io.Reader, off int64) (Object, int64, int64, error) {
	var o Object
	var head [len(magic) + 8]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		if err == io.EOF {
			return o, 0, 0, io.EOF
		}
		return o, 0, 0, io.ErrUnexpectedEOF
	}
	if string(head[:len(magic)]) != magic {
		return o, 0, 0, errors.New("bad magic")
	}
	n := binary.BigEndian.Uint64(head[len(magic):])
	if n > MaxObject {
		return o, 0, 0, fmt.Errorf("data length %d", n)
	}
	crc := crc32.Update(0, castagnoli, head[len(magic):])
	h := blake3.New(32, nil)
	w := io.MultiWriter(h, crcWriter{&crc})
	if _, err := io.CopyN(w, r, int64(n)); err != nil {
		return o, 0, 0, io.ErrUnexpectedEOF
	}
	var hl [2]byte
	if _, err := io.ReadFull(r, hl[:]); err != nil {
		return o, 0, 0, io.ErrUnexpectedEOF
	}
	hn := binary.BigEndian.Uint16(hl[:])
	if hn > MaxHeader {
		return o, 0, 0, fmt.Errorf("header length %d", hn)
	}
	hdr := make([]byte, int(hn)+4)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return o, 0, 0, io.ErrUnexpectedEOF
	}
	crc = crc32.Update(crc, castagnoli, hl[:])
	crc = crc32.Update(crc, castagnoli, hdr[:hn])
	length := int64(len(head)) + int64(n) + 2 + int64(hn) + 4
	if binary.BigEndian.Uint32(hdr[hn:]) != crc {
		return o, 0, length, &badRecord{"CRC"}
	}
	if err := cbor.Unmarshal(hdr[:hn], &o); err != nil {
		return o, 0, length, &badRecord{"header: " + err.Error()}
	}
	// The CRC guards against torn writes; the OID against a writer's bug.
	var sum types.Hash
	h.Sum(sum[:0])
	switch {
	case o.Deleted && n != 0, !o.Deleted && o.Length != n:
		return o, 0, length, &badRecord{"header does not match the data's length"}
	case !o.Deleted && codec.ObjectID(o.Encryption, o.Owner, n, sum) != o.OID:
		return o, 0, length, &badRecord{"data does not match the object id"}
	}
	return o, off + int64(len(head)), length, nil
}

type crcWriter struct{ crc *uint32 }

func (c crcWriter) Write(p []byte) (int, error) {
	*c.crc = crc32.Update(*c.crc, castagnoli, p)
	return len(p), nil
}

// Append buffers the object whose bytes src holds (o.Length of them; o.OID
// and o.Time are set here) and returns once they are durable. An object
// already buffered is not written again. src is read twice (hashed, then
// copied), so it should be local.
func (b *Buffer) Append(o Object, src io.ReaderAt) (Object, error) {
	if o.Length > MaxObject {
		return o, ErrTooLarge
	}
	oid, sum, err := objectID(o.Encryption, o.Owner, io.NewSectionReader(src, 0, int64(o.Length)))
	if err != nil {
		return o, err
	}
	o.OID, o.Content, o.Deleted = oid, sum, false
	b.mu.Lock()
	if e, ok := b.index[o.OID]; ok {
		b.mu.Unlock()
		return e.Object, e.log.syncTo(e.end) // an earlier append may still be syncing
	}
	o.Time = b.now().UnixNano()
	l, end, err := b.write(o, io.NewSectionReader(src, 0, int64(o.Length)))
	b.mu.Unlock()
	if err != nil {
		return o, err
	}
	return o, l.syncTo(end)
}

// Delete drops a buffered object: a tombstone, durable when it returns.
func (b *Buffer) Delete(oid types.FID) error {
	b.mu.Lock()
	e, ok := b.index[oid]
	if !ok {
		b.mu.Unlock()
		return ErrNotFound
	}
	l, end, err := b.write(Object{OID: oid, Owner: e.Owner, Time: b.now().UnixNano(), Deleted: true}, nil)
	b.mu.Unlock()
	if err != nil {
		return err
	}
	return l.syncTo(end)
}

// write appends one record to the open log (b.mu held).
func (b *Buffer) write(o Object, data io.Reader) (*logFile, int64, error) {
	if b.closed {
		return nil, 0, ErrClosed
	}
	hdr, err := cbor.Marshal(o)
	if err != nil {
		return nil, 0, err
	}
	if len(hdr) > MaxHeader {
		return nil, 0, fmt.Errorf("pack: a header of %d bytes", len(hdr))
	}
	n := o.Length
	if o.Deleted {
		n = 0
	}
	l := b.open
	start := l.size.Load()
	w := bufio.NewWriterSize(io.NewOffsetWriter(l.f, start), 1<<16)
	var head [len(magic) + 8]byte
	copy(head[:], magic)
	binary.BigEndian.PutUint64(head[len(magic):], n)
	crc := crc32.Update(0, castagnoli, head[len(magic):])
	w.Write(head[:])
	if n > 0 {
		if _, err := io.CopyN(io.MultiWriter(w, crcWriter{&crc}), data, int64(n)); err != nil {
			return nil, 0, b.undo(l, start, err)
		}
	}
	var hl [2]byte
	binary.BigEndian.PutUint16(hl[:], uint16(len(hdr)))
	crc = crc32.Update(crc, castagnoli, hl[:])
	crc = crc32.Update(crc, castagnoli, hdr)
	w.Write(hl[:])
	w.Write(hdr)
	if err := binary.Write(w, binary.BigEndian, crc); err != nil {
		return nil, 0, b.undo(l, start, err)
	}
	if err := w.Flush(); err != nil {
		return nil, 0, b.undo(l, start, err)
	}
	end := start + int64(len(head)) + int64(n) + 2 + int64(len(hdr)) + 4
	l.size.Store(end)
	b.apply(l, o, start+int64(len(head)), end)
	return l, end, nil
}

// undo cuts a half-written record off (its writer gets err; nothing after
// it was written, as b.mu is held).
func (b *Buffer) undo(l *logFile, start int64, err error) error {
	if terr := l.f.Truncate(start); terr != nil {
		return errors.Join(err, terr)
	}
	return err
}

// syncTo returns once the log is durable up to end: an fsync that started
// after those bytes were written covers them, so a writer that waited for
// another's fsync is often done without one of its own.
func (l *logFile) syncTo(end int64) error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.synced >= end {
		return nil
	}
	upto := l.size.Load()
	if err := l.f.Sync(); err != nil {
		return err
	}
	l.synced = upto
	return nil
}

// Get returns a live buffered object's record.
func (b *Buffer) Get(oid types.FID) (Object, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.index[oid]
	if !ok {
		return Object{}, false
	}
	return e.Object, true
}

// Owned lists the live buffered objects of owner, in OID order.
func (b *Buffer) Owned(owner types.Address) []Object {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Object
	for _, e := range b.index {
		if e.Owner == owner {
			out = append(out, e.Object)
		}
	}
	slices.SortFunc(out, func(x, y Object) int { return bytes.Compare(x.OID[:], y.OID[:]) })
	return out
}

// Read returns a live buffered object's record and its bytes, verified
// against its OID before any is returned.
func (b *Buffer) Read(oid types.FID) (Object, *io.SectionReader, error) {
	b.mu.Lock()
	e, ok := b.index[oid]
	b.mu.Unlock()
	if !ok {
		return Object{}, nil, ErrNotFound
	}
	got, _, err := objectID(e.Encryption, e.Owner, io.NewSectionReader(e.log.f, e.data, int64(e.Length)))
	if err != nil {
		return e.Object, nil, err
	}
	if got != oid {
		return e.Object, nil, ErrCorrupt
	}
	return e.Object, io.NewSectionReader(e.log.f, e.data, int64(e.Length)), nil
}

// OpenStats describes the open log: how many live objects, their bytes and
// when the oldest came.
type OpenStats struct {
	Seq     uint64
	Objects int
	Bytes   uint64
	Oldest  time.Time
}

// OpenLog reports on the open log (what decides when it is sealed).
func (b *Buffer) OpenLog() OpenStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.open
	st := OpenStats{Seq: l.seq, Objects: len(l.members), Bytes: l.memberBytes}
	if len(l.members) > 0 { // members are in append order: the first came first
		st.Oldest = time.Unix(0, l.members[0].Time)
	}
	return st
}

// Seal closes the open log to appends (it becomes a pack) and opens the
// next; it reports the sealed log's number, or false when the open log has
// no members (nothing to pack).
func (b *Buffer) Seal() (uint64, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, false, ErrClosed
	}
	l := b.open
	if len(l.members) == 0 {
		return 0, false, nil
	}
	if err := l.syncTo(l.size.Load()); err != nil {
		return 0, false, err
	}
	next, err := b.newLog(l.seq + 1)
	if err != nil {
		return 0, false, err
	}
	b.open = next
	return l.seq, true, nil
}

// Sealed lists the sealed logs, oldest first.
func (b *Buffer) Sealed() []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []uint64
	for seq := range b.logs {
		if seq != b.open.seq {
			out = append(out, seq)
		}
	}
	slices.Sort(out)
	return out
}

// Placed is a member of a pack at its offset; Live says it is still
// buffered here (deleted ones stay in the bytes, and out of the
// declaration).
type Placed struct {
	Object
	Offset uint64
	Live   bool
}

// Pack is a sealed log's pack: its members in order, and their bytes.
type Pack struct {
	Seq     uint64
	Size    uint64
	Members []Placed
	parts   []*io.SectionReader
}

// Reader returns the pack's bytes: its members' bytes, end to end.
func (p *Pack) Reader() io.Reader {
	rs := make([]io.Reader, len(p.parts))
	for i, s := range p.parts {
		rs[i] = io.NewSectionReader(s, 0, s.Size())
	}
	return io.MultiReader(rs...)
}

// Pack returns sealed log seq's pack.
func (b *Buffer) Pack(seq uint64) (*Pack, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.logs[seq]
	if !ok || l == b.open {
		return nil, fmt.Errorf("pack: log %d is not sealed", seq)
	}
	p := &Pack{Seq: seq}
	for _, e := range l.members {
		p.Members = append(p.Members, Placed{Object: e.Object, Offset: p.Size, Live: b.index[e.OID] == e})
		p.parts = append(p.parts, io.NewSectionReader(l.f, e.data, int64(e.Length)))
		p.Size += e.Length
	}
	return p, nil
}

// Drop removes sealed log seq once its pack is declared: its objects are
// read from the chain's packs from then on.
func (b *Buffer) Drop(seq uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.logs[seq]
	if !ok || l == b.open {
		return fmt.Errorf("pack: log %d is not sealed", seq)
	}
	for oid, e := range b.index {
		if e.log == l {
			b.indexDel(oid)
		}
	}
	delete(b.logs, seq)
	// A read racing with this fails, and its caller reads the chain's pack.
	l.f.Close()
	if err := os.Remove(l.path); err != nil {
		return err
	}
	return syncDir(b.dir)
}

// Close closes the logs; appends after it fail.
func (b *Buffer) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	return b.closeLogs()
}

func (b *Buffer) closeLogs() error {
	var errs []error
	for _, l := range b.logs {
		errs = append(errs, l.f.Close())
	}
	return errors.Join(errs...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// objectID is the OID of the bytes r holds (an object of owner's).
func objectID(enc types.Encryption, owner types.Address, r io.Reader) (types.FID, types.Hash, error) {
	h := blake3.New(32, nil)
	n, err := io.Copy(h, r)
	var sum types.Hash
	if err != nil {
		return types.FID{}, sum, err
	}
	h.Sum(sum[:0])
	return codec.ObjectID(enc, owner, uint64(n), sum), sum, nil
}
