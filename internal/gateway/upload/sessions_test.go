package upload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/deoss/deoss/internal/types"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func open(t *testing.T, root string, c *clock) *Sessions {
	t.Helper()
	s, err := Open(root, Options{TTL: time.Hour, MaxSize: 1 << 20, MaxChunkSize: 1 << 16, MinChunkSize: 1000, DefaultChunk: 1000, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	alice = types.Address{1}
	bob   = types.Address{2}
	ctx   = context.Background()
)

func data(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/256)
	}
	return b
}

// chunk returns chunk i of b for a chunk size and its hash.
func chunk(b []byte, size, i int) ([]byte, types.Hash) {
	c := b[i*size : min((i+1)*size, len(b))]
	return c, sha256.Sum256(c)
}

func TestOutOfOrderConcurrent(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	s := open(t, t.TempDir(), c)
	defer s.Close()
	file := data(10_500) // 11 chunks of 1000, the last 500
	sess, err := s.Create(Spec{Owner: alice, Name: "f", Territory: "home", Size: int64(len(file))}, nil)
	if err != nil || sess.Spec.Chunks() != 11 {
		t.Fatalf("create: %v %+v", err, sess)
	}
	// All chunks, in reverse order, each sent twice concurrently.
	var wg sync.WaitGroup
	created := make(chan bool, 22)
	for i := 10; i >= 0; i-- {
		for range 2 {
			wg.Go(func() {
				b, h := chunk(file, 1000, i)
				ok, err := s.PutChunk(ctx, sess.ID, alice, i, h, bytes.NewReader(b))
				if err != nil {
					t.Error(err)
				}
				created <- ok
			})
		}
	}
	wg.Wait()
	close(created)
	n := 0
	for ok := range created {
		if ok {
			n++
		}
	}
	if n != 11 {
		t.Fatalf("%d chunks created, want 11 (the rest were repeats)", n)
	}
	r, got, err := s.Reader(sess.ID, alice)
	if err != nil || got.ID != sess.ID {
		t.Fatal(err)
	}
	defer r.Close()
	out, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(out, file) {
		t.Fatalf("reassembled bytes differ: %v", err)
	}
}

func TestChunkRejections(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	s := open(t, t.TempDir(), c)
	defer s.Close()
	file := data(2500)
	sess, _ := s.Create(Spec{Owner: alice, Name: "f", Size: 2500, ChunkSize: 1000}, nil)
	b0, h0 := chunk(file, 1000, 0)
	b2, h2 := chunk(file, 1000, 2)
	other := bytes.Repeat([]byte{9}, 1000)
	cases := []struct {
		name  string
		id    string
		owner types.Address
		index int
		sum   types.Hash
		body  []byte
		want  error
	}{
		{"unknown session", "nope", alice, 0, h0, b0, ErrNotFound},
		{"another owner", sess.ID, bob, 0, h0, b0, ErrForbidden},
		{"index too large", sess.ID, alice, 3, h0, b0, ErrIndex},
		{"negative index", sess.ID, alice, -1, h0, b0, ErrIndex},
		{"checksum", sess.ID, alice, 0, h2, b0, ErrChecksum},
		{"short chunk", sess.ID, alice, 0, sha256.Sum256(b0[:999]), b0[:999], ErrChunkSize},
		{"long last chunk", sess.ID, alice, 2, sha256.Sum256(data(3000)[2000:2600]), data(3000)[2000:2600], ErrChunkSize},
		{"larger than declared", sess.ID, alice, 0, h0, append(bytes.Clone(b0), 1), ErrChunkSize},
	}
	for _, tc := range cases {
		if _, err := s.PutChunk(ctx, tc.id, tc.owner, tc.index, tc.sum, bytes.NewReader(tc.body)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if ok, err := s.PutChunk(ctx, sess.ID, alice, 2, h2, bytes.NewReader(b2)); !ok || err != nil {
		t.Fatalf("last chunk: %v", err)
	}
	if _, err := s.PutChunk(ctx, sess.ID, alice, 2, sha256.Sum256(other[:500]), bytes.NewReader(other[:500])); !errors.Is(err, ErrConflict) {
		t.Fatalf("different bytes: %v", err)
	}
	st, err := s.State(sess.ID, alice)
	if err != nil || len(st.Stored) != 1 || st.Stored[0] != (Range{2, 2}) || len(st.Missing) != 1 || st.Missing[0] != (Range{0, 1}) {
		t.Fatalf("state: %+v %v", st, err)
	}
	var ie *IncompleteError
	if _, _, err := s.Reader(sess.ID, alice); !errors.As(err, &ie) || Count(ie.Missing) != 2 || !errors.Is(err, ErrIncomplete) {
		t.Fatalf("incomplete: %v", err)
	}
	// Bad specs.
	for _, spec := range []Spec{{Owner: alice, Size: -1}, {Owner: alice, Size: 2 << 20}, {Owner: alice, Size: 10, ChunkSize: 1 << 20}} {
		if _, err := s.Create(spec, nil); !errors.Is(err, ErrBadSpec) {
			t.Errorf("spec %+v: %v", spec, err)
		}
	}
}

func TestRestartExpiryAbort(t *testing.T) {
	c := &clock{time.Unix(1000, 0)}
	root := t.TempDir()
	s := open(t, root, c)
	file := data(1500)
	sess, _ := s.Create(Spec{Owner: alice, Size: 1500}, nil)
	b, h := chunk(file, 1000, 1)
	s.PutChunk(ctx, sess.ID, alice, 1, h, bytes.NewReader(b))
	s.Close()

	// After a restart the session and its chunk are there.
	s = open(t, root, c)
	defer s.Close()
	st, err := s.State(sess.ID, alice)
	if err != nil || len(st.Stored) != 1 || st.Missing[0] != (Range{0, 0}) {
		t.Fatalf("after restart: %+v %v", st, err)
	}
	b0, h0 := chunk(file, 1000, 0)
	s.PutChunk(ctx, sess.ID, alice, 0, h0, bytes.NewReader(b0))
	r, _, err := s.Reader(sess.ID, alice)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(out, file) {
		t.Fatal("bytes differ after restart")
	}
	// Abort removes it all.
	if err := s.Remove(sess.ID, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := s.State(sess.ID, alice); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after abort: %v", err)
	}
	if _, err := os.Stat(s.dir(sess.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("chunks left after abort")
	}
	// Expiry: a session past its TTL is gone for clients, then cleaned up.
	old, _ := s.Create(Spec{Owner: alice, Size: 10}, nil)
	c.t = c.t.Add(2 * time.Hour)
	fresh, _ := s.Create(Spec{Owner: alice, Size: 10}, nil)
	if _, err := s.State(old.ID, alice); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired session answered: %v", err)
	}
	os.MkdirAll(s.dir("orphan"), 0o700)
	n, err := s.Expire()
	if err != nil || n != 1 {
		t.Fatalf("expire: %d %v", n, err)
	}
	for _, gone := range []string{old.ID, "orphan"} {
		if _, err := os.Stat(s.dir(gone)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left", gone)
		}
	}
	if _, err := s.State(fresh.ID, alice); err != nil {
		t.Fatalf("live session removed: %v", err)
	}
	// An empty file has no chunks and is complete at once.
	empty, _ := s.Create(Spec{Owner: alice, Size: 0}, nil)
	r, _, err = s.Reader(empty.ID, alice)
	if err != nil {
		t.Fatal(err)
	}
	if out, _ := io.ReadAll(r); len(out) != 0 {
		t.Fatal("empty file has bytes")
	}
}

// TestSessionPaths: an id that is not exactly the generated form never
// reaches the disk: removing "sessions.db", a path with a slash or dots, or
// an unknown id is ErrNotFound and deletes nothing; another owner's session
// is ErrForbidden and stays whole.
func TestSessionPaths(t *testing.T) {
	root := t.TempDir()
	s := open(t, root, &clock{t: time.Unix(1_800_000_000, 0)})
	defer s.Close()
	file := data(1500)
	sess, err := s.Create(Spec{Owner: alice, Size: int64(len(file)), ChunkSize: 1000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c0, h0 := chunk(file, 1000, 0)
	if _, err := s.PutChunk(ctx, sess.ID, alice, 0, h0, bytes.NewReader(c0)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"sessions.db", "../sessions.db", sess.ID + "/../sessions.db", "..", ".", "",
		"0123456789abcdef0123456789abcdef", "0123456789ABCDEF0123456789ABCDEF", sess.ID + "0"} {
		if err := s.Remove(id, alice); !errors.Is(err, ErrNotFound) {
			t.Errorf("Remove(%q): %v, want not found", id, err)
		}
		if _, err := s.State(id, alice); !errors.Is(err, ErrNotFound) {
			t.Errorf("State(%q): %v", id, err)
		}
	}
	if err := s.Remove(sess.ID, bob); !errors.Is(err, ErrForbidden) {
		t.Fatalf("bob removes alice's session: %v", err)
	}
	if _, err := os.Stat(root + "/sessions.db"); err != nil {
		t.Fatalf("the session database: %v", err)
	}
	st, err := s.State(sess.ID, alice)
	if err != nil || len(st.Missing) != 1 {
		t.Fatalf("alice's session after the attempts: %+v %v", st, err)
	}
}

// Tiny chunks are refused (a session is never a million of them), the chunk
// count is capped, and the state answers runs, not every index.
func TestChunkLimits(t *testing.T) {
	s, err := Open(t.TempDir(), Options{TTL: time.Hour, MaxSize: 1 << 40, MaxChunkSize: 64 << 20, DefaultChunk: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, spec := range map[string]Spec{
		"1-byte chunks of 1 GiB": {Owner: alice, Size: 1 << 30, ChunkSize: 1},
		"just under 1 MiB":       {Owner: alice, Size: 1 << 30, ChunkSize: 1<<20 - 1},
		"over 10,000 chunks":     {Owner: alice, Size: 10_001 << 20, ChunkSize: 1 << 20},
	} {
		if _, err := s.Create(spec, nil); !errors.Is(err, ErrBadSpec) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// One small chunk is as small as the file; a large file without a
	// chunk size gets one that keeps it under the cap.
	if _, err := s.Create(Spec{Owner: alice, Size: 10, ChunkSize: 10}, nil); err != nil {
		t.Fatalf("one small chunk: %v", err)
	}
	big, err := s.Create(Spec{Owner: alice, Size: 200 << 30}, nil)
	if err != nil || big.Spec.Chunks() > DefaultMaxChunks {
		t.Fatalf("200 GiB with the default chunk: %v (%d chunks)", err, big.Spec.Chunks())
	}
	// Every other chunk of a 10,000-chunk session: 10,000 runs, in one
	// short answer.
	sess, err := s.Create(Spec{Owner: alice, Size: 10_000 << 20, ChunkSize: 1 << 20}, nil)
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{1}, 1<<20)
	sum := sha256.Sum256(chunk)
	for i := 0; i < 40; i += 2 {
		if _, err := s.PutChunk(ctx, sess.ID, alice, i, sum, bytes.NewReader(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := s.State(sess.ID, alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Stored) != 20 || Count(st.Stored) != 20 || Count(st.Missing) != 9_980 || st.Missing[19] != (Range{39, 9_999}) {
		t.Fatalf("runs: stored %v, missing %d in %d runs (last %v)", st.Stored, Count(st.Missing), len(st.Missing), st.Missing[len(st.Missing)-1])
	}
	if b, _ := json.Marshal(st); len(b) > 4096 {
		t.Fatalf("state answer of %d bytes", len(b))
	}
}

// The chunks of an encrypted session are sealed on disk and opened (and
// checked) as the session is read; a chunk damaged on disk fails the read,
// plain or sealed.
func TestEncryptedChunksAtRest(t *testing.T) {
	root := t.TempDir()
	key := bytes.Repeat([]byte{0x42}, 32)
	s, err := Open(root, Options{TTL: time.Hour, MaxSize: 1 << 30, MaxChunkSize: 8 << 20, DefaultChunk: 1 << 20,
		ChunkKey: func(w []byte) ([]byte, error) { return key, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	file := bytes.Repeat([]byte("PLAINTEXT-MARKER "), 200_000) // 3.4 MB
	put := func(sess *Session) {
		for i := range sess.Spec.Chunks() {
			b, h := chunk(file, int(sess.Spec.ChunkSize), i)
			if _, err := s.PutChunk(ctx, sess.ID, alice, i, h, bytes.NewReader(b)); err != nil {
				t.Fatal(err)
			}
		}
	}
	enc, err := s.Create(Spec{Owner: alice, Name: "e", Size: int64(len(file))}, []byte("wrapped"))
	if err != nil {
		t.Fatal(err)
	}
	put(enc)
	filepath.WalkDir(filepath.Join(root, enc.ID), func(p string, d os.DirEntry, err error) error {
		if b, _ := os.ReadFile(p); err == nil && !d.IsDir() && bytes.Contains(b, []byte("PLAINTEXT-MARKER")) {
			t.Errorf("%s holds plaintext of an encrypted session", p)
		}
		return nil
	})
	readAll := func(id string) ([]byte, error) {
		rc, _, err := s.Reader(id, alice)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	if got, err := readAll(enc.ID); err != nil || !bytes.Equal(got, file) {
		t.Fatalf("sealed chunks read back: %v", err)
	}
	plain, _ := s.Create(Spec{Owner: alice, Name: "p", Size: int64(len(file))}, nil)
	put(plain)
	for _, id := range []string{enc.ID, plain.ID} {
		p := filepath.Join(root, id, "2")
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 1
		os.WriteFile(p, b, 0o600)
		var ce *CorruptError
		if _, err := readAll(id); !errors.As(err, &ce) || ce.Index != 2 || !errors.Is(err, ErrCorrupt) {
			t.Errorf("damaged chunk of %s: %v", id, err)
		}
		if err := s.DropChunk(id, alice, 2); err != nil {
			t.Fatal(err)
		}
		if st, _ := s.State(id, alice); Count(st.Missing) != 1 || st.Missing[0] != (Range{2, 2}) {
			t.Errorf("after the drop: %+v", st.Missing)
		}
	}
	// A store that cannot seal takes no encrypted session.
	s2, err := Open(t.TempDir(), Options{TTL: time.Hour, MaxSize: 1 << 30, MaxChunkSize: 8 << 20, DefaultChunk: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Create(Spec{Owner: alice, Size: 10}, []byte("wrapped")); !errors.Is(err, ErrNoChunkKey) {
		t.Fatalf("encrypted session without a chunk key: %v", err)
	}
}
