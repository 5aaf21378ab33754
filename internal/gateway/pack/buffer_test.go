package pack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"lukechampine.com/blake3"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/types"
)

var owner = types.Address{1, 2, 3}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { c.t = c.t.Add(time.Second); return c.t }

func openAt(t *testing.T, dir string) *Buffer {
	t.Helper()
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	b, err := Open(dir, c.now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func content(i int) []byte { return bytes.Repeat(fmt.Appendf(nil, "object %d;", i), i%50+1) }

func add(t *testing.T, b *Buffer, data []byte) Object {
	t.Helper()
	o, err := b.Append(Object{Owner: owner, Name: "n", Territory: "home", Length: uint64(len(data))}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func readAll(t *testing.T, b *Buffer, oid types.FID) []byte {
	t.Helper()
	_, r, err := b.Read(oid)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestAppendReadReopen(t *testing.T) {
	dir := t.TempDir()
	b := openAt(t, dir)
	var oids []types.FID
	for i := range 20 {
		o := add(t, b, content(i))
		if want := codec.ObjectID(types.EncryptionNone, owner, uint64(len(content(i))), blake3.Sum256(content(i))); o.OID != want {
			t.Fatalf("OID %s, want %s", o.OID, want)
		}
		oids = append(oids, o.OID)
	}
	// The same bytes again: the same object, not a second record.
	st := b.OpenLog()
	if again := add(t, b, content(3)); again.OID != oids[3] || b.OpenLog().Objects != st.Objects {
		t.Fatalf("a duplicate was buffered twice")
	}
	if err := b.Delete(oids[5]); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(oids[5]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a second delete: %v", err)
	}
	if _, err := b.Append(Object{Owner: owner, Length: MaxObject + 1}, bytes.NewReader(nil)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("an object over a segment: %v", err)
	}
	b.Close()
	if _, err := b.Append(Object{Owner: owner, Length: 1}, bytes.NewReader([]byte{1})); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}

	b = openAt(t, dir)
	defer b.Close()
	for i, oid := range oids {
		_, ok := b.Get(oid)
		if i == 5 {
			if ok {
				t.Fatal("a deleted object came back")
			}
			continue
		}
		if got := readAll(t, b, oid); !bytes.Equal(got, content(i)) {
			t.Fatalf("object %d read back wrong", i)
		}
	}
	if st := b.OpenLog(); st.Objects != 19 {
		t.Fatalf("open log after restart: %+v", st)
	}
	if got := b.Owned(owner); len(got) != 19 {
		t.Fatalf("the owner's buffered objects: %d", len(got))
	}
	if got := b.Owned(types.Address{9}); len(got) != 0 {
		t.Fatalf("another owner's: %d", len(got))
	}
}

// Concurrent appends share fsyncs and every one is durable when it returns.
func TestConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	b := openAt(t, dir)
	var wg sync.WaitGroup
	oids := make([]types.FID, 200)
	errs := make(chan error, len(oids))
	for i := range oids {
		wg.Go(func() {
			o, err := b.Append(Object{Owner: owner, Name: "n", Territory: "home", Length: uint64(len(content(i)))}, bytes.NewReader(content(i)))
			if err != nil {
				errs <- err
			}
			oids[i] = o.OID
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	b.Close()
	b = openAt(t, dir)
	defer b.Close()
	for i, oid := range oids {
		if got := readAll(t, b, oid); !bytes.Equal(got, content(i)) {
			t.Fatalf("object %d read back wrong", i)
		}
	}
}

func logOf(t *testing.T, dir string) string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(names) == 0 {
		t.Fatal("no log")
	}
	return names[len(names)-1]
}

// A torn tail (a crash in the middle of a write, never acknowledged) is cut
// off; a flipped bit in a whole record loses that record only.
func TestTornAndCorruptRecords(t *testing.T) {
	dir := t.TempDir()
	b := openAt(t, dir)
	var oids []types.FID
	for i := range 5 {
		oids = append(oids, add(t, b, content(i)).OID)
	}
	b.Close()
	p := logOf(t, dir)
	raw, _ := os.ReadFile(p)
	// Flip a byte of object 1's data, and append half a record.
	at := bytes.Index(raw, content(1))
	raw[at] ^= 0xff
	good := len(raw)
	raw = append(raw, []byte(magic+"\x00\x00\x00\x00\x00\x00\x01\x00partial")...)
	os.WriteFile(p, raw, 0o600)

	b = openAt(t, dir)
	if _, ok := b.Get(oids[1]); ok {
		t.Fatal("a corrupt record was kept")
	}
	for _, i := range []int{0, 2, 3, 4} {
		if got := readAll(t, b, oids[i]); !bytes.Equal(got, content(i)) {
			t.Fatalf("object %d lost with its neighbour", i)
		}
	}
	if st, _ := os.Stat(p); st.Size() != int64(good) {
		t.Fatalf("torn tail not cut: %d bytes, want %d", st.Size(), good)
	}
	o := add(t, b, content(9)) // appends go on after the cut
	b.Close()
	b = openAt(t, dir)
	defer b.Close()
	if got := readAll(t, b, o.OID); !bytes.Equal(got, content(9)) {
		t.Fatal("the append after a cut was lost")
	}

	// Bytes that change under a live buffer are never served.
	raw, _ = os.ReadFile(p)
	at = bytes.Index(raw, content(2))
	f, _ := os.OpenFile(p, os.O_WRONLY, 0)
	f.WriteAt([]byte{raw[at] ^ 1}, int64(at))
	f.Close()
	if _, _, err := b.Read(oids[2]); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a read of changed bytes: %v", err)
	}
}

// A sealed log's pack has the same bytes after a restart, and deletes made
// after the seal only mark members dead.
func TestSealPackDrop(t *testing.T) {
	dir := t.TempDir()
	b := openAt(t, dir)
	var oids []types.FID
	for i := range 6 {
		oids = append(oids, add(t, b, content(i)).OID)
	}
	if err := b.Delete(oids[0]); err != nil { // before the seal: not a member
		t.Fatal(err)
	}
	seq, ok, err := b.Seal()
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, ok, _ := b.Seal(); ok {
		t.Fatal("an empty log was sealed")
	}
	if err := b.Delete(oids[2]); err != nil { // after: a dead member
		t.Fatal(err)
	}
	late := add(t, b, content(7)) // in the next log
	summary := func(b *Buffer) (string, types.Hash) {
		p, err := b.Pack(seq)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(p.Reader())
		if uint64(len(data)) != p.Size {
			t.Fatalf("pack of %d bytes says %d", len(data), p.Size)
		}
		s := ""
		for _, m := range p.Members {
			if !bytes.Equal(data[m.Offset:m.Offset+m.Length], readBack(t, m)) {
				t.Fatalf("member %s not at its offset", m.OID)
			}
			s += fmt.Sprintf("%s@%d/%v ", m.OID, m.Offset, m.Live)
		}
		return s, blake3.Sum256(data)
	}
	before, sum := summary(b)
	if want := 5; len(b.mustPack(t, seq).Members) != want {
		t.Fatalf("%d members, want %d", len(b.mustPack(t, seq).Members), want)
	}
	if b.mustPack(t, seq).Members[1].Live { // oids[2]
		t.Fatal("an object deleted after the seal is live")
	}
	b.Close()
	b = openAt(t, dir)
	defer b.Close()
	after, sum2 := summary(b)
	if before != after || sum != sum2 {
		t.Fatalf("the pack changed across a restart:\n%s\n%s", before, after)
	}
	if got := b.Sealed(); len(got) != 1 || got[0] != seq {
		t.Fatalf("sealed logs: %v", got)
	}
	if err := b.Drop(seq); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Get(oids[1]); ok {
		t.Fatal("a dropped pack's object is still buffered")
	}
	if got := readAll(t, b, late.OID); !bytes.Equal(got, content(7)) {
		t.Fatal("the open log's object went with the dropped pack")
	}
	if err := b.Drop(b.OpenLog().Seq); err == nil {
		t.Fatal("the open log was dropped")
	}
}

func (b *Buffer) mustPack(t *testing.T, seq uint64) *Pack {
	p, err := b.Pack(seq)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readBack(t *testing.T, m Placed) []byte {
	for i := range 10 {
		if c := content(i); uint64(len(c)) == m.Length && codec.ObjectID(types.EncryptionNone, owner, m.Length, blake3.Sum256(c)) == m.OID {
			return c
		}
	}
	t.Fatalf("member %s is no test object", m.OID)
	return nil
}

// FuzzReadRecord: the record decoder takes any bytes without a panic, never
// claims more than it read, and what it accepts verifies against its OID.
func FuzzReadRecord(f *testing.F) {
	dir := f.TempDir()
	b, _ := Open(dir, time.Now, slog.New(slog.DiscardHandler))
	b.Append(Object{Owner: owner, Name: "a", Length: 3}, bytes.NewReader([]byte("abc")))
	b.Append(Object{Owner: owner, Name: "b", Length: 1}, bytes.NewReader([]byte("d")))
	b.Close()
	seed, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%020d.log", 1)))
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Fuzz(func(t *testing.T, log []byte) {
		r := bytes.NewReader(log)
		var off int64
		for {
			o, dataAt, n, err := readRecord(r, off)
			if err != nil && !errors.As(err, new(*badRecord)) {
				return
			}
			if off+n > int64(len(log)) || n <= 0 {
				t.Fatalf("record at %d claims %d bytes of %d", off, n, len(log))
			}
			if err == nil && !o.Deleted {
				data := log[dataAt : dataAt+int64(o.Length)]
				if codec.ObjectID(o.Encryption, o.Owner, o.Length, blake3.Sum256(data)) != o.OID {
					t.Fatal("a record that does not verify was accepted")
				}
			}
			off += n
		}
	})
}

// TestOwed: what the buffer owes an owner's territories is every live
// object's charge until its log is dropped (declared), across a restart;
// deletes give it back, and a compaction's copy (charged already) owes
// nothing.
func TestOwed(t *testing.T) {
	dir := t.TempDir()
	b := openAt(t, dir)
	want := func(b *Buffer, home, all uint64) {
		t.Helper()
		byT, got := b.Owed(owner)
		if byT["home"] != home || got != all {
			t.Fatalf("owed %v, %d in all; want home %d, %d", byT, got, home, all)
		}
		if _, n := b.Owed(types.Address{9}); n != 0 {
			t.Fatalf("a stranger owes %d", n)
		}
	}
	a := add(t, b, content(1))    // 10 bytes: 4 KiB
	add(t, b, make([]byte, 5000)) // 8 KiB
	o, err := b.Append(Object{Owner: owner, Territory: "other", Length: 3}, bytes.NewReader([]byte("abc")))
	if err != nil {
		t.Fatal(err)
	}
	old := types.FID{5}
	if _, err := b.Append(Object{Owner: owner, Territory: "home", Length: 4, From: &old}, bytes.NewReader([]byte("copy"))); err != nil {
		t.Fatal(err)
	}
	want(b, 12<<10, 16<<10)
	if err := b.Delete(a.OID); err != nil {
		t.Fatal(err)
	}
	want(b, 8<<10, 12<<10)
	seq, _, err := b.Seal()
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	b = openAt(t, dir)
	defer b.Close()
	want(b, 8<<10, 12<<10)
	if err := b.Drop(seq); err != nil {
		t.Fatal(err)
	}
	want(b, 0, 0)
	if _, ok := b.Get(o.OID); ok {
		t.Fatal("a dropped log's object is still buffered")
	}
}
