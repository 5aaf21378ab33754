package upload

import (
	"bufio"
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/deoss/deoss/internal/fsutil"
	"github.com/deoss/deoss/internal/types"
)

// Errors of sessions; the gateway API maps them to HTTP statuses.
var (
	ErrNotFound   = errors.New("no such upload session (unknown, aborted or expired)")
	ErrForbidden  = errors.New("the upload session belongs to another account")
	ErrBadSpec    = errors.New("invalid upload session")
	ErrIndex      = errors.New("chunk index out of range")
	ErrChecksum   = errors.New("chunk does not match its checksum")
	ErrChunkSize  = errors.New("chunk has the wrong length")
	ErrConflict   = errors.New("a different chunk is already stored at this index")
	ErrIncomplete = errors.New("chunks are missing")
	ErrCorrupt    = errors.New("a stored chunk does not match its checksum (damaged on disk)")
	ErrNoChunkKey = errors.New("this gateway cannot keep encrypted sessions (no chunk key)")
)

// Spec is what a client declares when it creates a session.
type Spec struct {
	Owner     types.Address `json:"owner"`
	Name      string        `json:"name"`
	Territory string        `json:"territory"`
	Size      int64         `json:"size"`
	ChunkSize int64         `json:"chunk_size"`
	Private   bool          `json:"private,omitempty"`
	// Parts: the session takes numbered parts of any size, each replaced
	// when sent again, instead of fixed chunks (S3 multipart); Size and
	// ChunkSize are unused, the size is known at completion.
	Parts bool `json:"parts,omitempty"`
	// Stream: the session takes bytes in order at its offset (tus; see
	// stream.go); Size is -1 until declared. Partial: a stream that a
	// final one concatenates.
	Stream  bool `json:"stream,omitempty"`
	Partial bool `json:"partial,omitempty"`
}

// Chunks is the number of chunks of the spec.
func (s Spec) Chunks() int {
	if s.Size <= 0 || s.ChunkSize <= 0 { // empty, a stream or parts
		return 0
	}
	return int((s.Size + s.ChunkSize - 1) / s.ChunkSize)
}

// chunkLen is the length chunk i must have.
func (s Spec) chunkLen(i int) int64 {
	if i == s.Chunks()-1 {
		return s.Size - int64(i)*s.ChunkSize
	}
	return s.ChunkSize
}

// Session is a session's record.
type Session struct {
	ID      string    `json:"id"`
	Spec    Spec      `json:"spec"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// WrappedKey is the file's encryption key sealed with the gateway's
	// key-encryption key (codec.Key.Wrap); empty for a plain file.
	WrappedKey []byte `json:"wrapped_key,omitempty"`
	// PartBytes is what a parts session's parts hold; Extra is its
	// caller's (the S3 bucket, key and headers).
	PartBytes int64  `json:"part_bytes,omitempty"`
	Extra     []byte `json:"extra,omitempty"`
	// Offset is how many bytes of a stream are durable; Partials the
	// streams a final one reads in order.
	Offset   int64    `json:"offset,omitempty"`
	Partials []string `json:"partials,omitempty"`
	// FID is the file a finished stream became (its bytes are gone; the
	// record stays until it expires, for a client asking again).
	FID types.FID `json:"fid,omitzero"`
}

// State is a session with what it holds and lacks, for a client that
// resumes: runs of chunk indexes, so the answer stays small whatever the
// pattern of chunks sent.
type State struct {
	Session
	Stored  []Range `json:"stored"`
	Missing []Range `json:"missing"`
}

// Range is a run of chunk indexes, first to last inclusive; in JSON
// [first, last].
type Range [2]int

// Len is how many chunks the run has.
func (r Range) Len() int { return r[1] - r[0] + 1 }

// Count is how many chunks the runs have.
func Count(rs []Range) int {
	n := 0
	for _, r := range rs {
		n += r.Len()
	}
	return n
}

// Options are the limits of a session store.
type Options struct {
	TTL          time.Duration
	MaxSize      int64 // bytes of one file
	MaxChunkSize int64
	// MinChunkSize bounds every chunk but the last from below (default
	// 1 MiB) and MaxChunks the chunks of one session (default 10,000): a
	// session is never a million tiny chunks.
	MinChunkSize int64
	MaxChunks    int
	DefaultChunk int64
	Now          func() time.Time
	// ChunkKey opens an encrypted session's wrapped key into the key its
	// chunks are kept under (AES-256-CTR, a random IV a chunk file): the
	// plaintext of an encrypted upload never sits on the gateway's disk.
	// Without it, encrypted sessions are refused.
	ChunkKey func(wrappedKey []byte) ([]byte, error)
}

// Default limits of chunk counts and sizes.
const (
	DefaultMinChunkSize = 1 << 20
	DefaultMaxChunks    = 10_000
)

// Sessions is the session store: root/sessions.db (bbolt: each session and
// the hash of each stored chunk) and root/<session id>/<chunk index> files.
type Sessions struct {
	root string
	opts Options
	db   *bolt.DB
	mu   sync.Mutex // serialises chunk commits of one store (cheap; writes happen outside)
}

var (
	bucketSessions = []byte("sessions")
	bucketChunks   = []byte("chunks") // id/index -> sha256
)

// Open opens (or creates) the session store under root.
func Open(root string, opts Options) (*Sessions, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MinChunkSize == 0 {
		opts.MinChunkSize = DefaultMinChunkSize
	}
	if opts.MaxChunks == 0 {
		opts.MaxChunks = DefaultMaxChunks
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	db, err := fsutil.OpenDB(filepath.Join(root, "sessions.db"), bucketSessions, bucketChunks, bucketParts)
	if err != nil {
		return nil, err
	}
	return &Sessions{root: root, opts: opts, db: db}, nil
}

// Close closes the store.
func (s *Sessions) Close() error { return s.db.Close() }

// Create starts a session. A zero chunk size takes the default. wrappedKey,
// when not empty, is kept with the session for the encoder.
func (s *Sessions) Create(spec Spec, wrappedKey []byte) (*Session, error) {
	return s.CreateWith(spec, wrappedKey, nil)
}

// CreateWith is Create keeping extra with the session.
func (s *Sessions) CreateWith(spec Spec, wrappedKey, extra []byte) (*Session, error) {
	spec, err := s.Check(spec)
	if err != nil {
		return nil, err
	}
	if len(wrappedKey) > 0 && s.opts.ChunkKey == nil {
		return nil, ErrNoChunkKey
	}
	sess, err := s.newSession(spec, wrappedKey, extra)
	if err != nil {
		return nil, err
	}
	return sess, s.put(sess)
}

// newSession makes a session with a fresh id and its folder.
func (s *Sessions) newSession(spec Spec, wrappedKey, extra []byte) (*Session, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	now := s.opts.Now()
	sess := &Session{ID: hex.EncodeToString(id), Spec: spec, Created: now, Expires: now.Add(s.opts.TTL), WrappedKey: wrappedKey, Extra: extra}
	if err := os.MkdirAll(s.dir(sess.ID), 0o700); err != nil {
		return nil, err
	}
	return sess, nil
}

// put writes a session's record.
func (s *Sessions) put(sess *Session) error {
	b, _ := json.Marshal(sess)
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSessions).Put([]byte(sess.ID), b) })
}

// Check validates a spec against the store's limits (ErrBadSpec) and fills
// in the chunk size when it is zero: what Create would make of it.
func (s *Sessions) Check(spec Spec) (Spec, error) {
	if spec.Parts {
		spec.Size, spec.ChunkSize = 0, 0
		return spec, nil
	}
	if spec.ChunkSize == 0 {
		// The default, or larger when the file would need too many chunks.
		spec.ChunkSize = max(s.opts.DefaultChunk, (spec.Size+int64(s.opts.MaxChunks)-1)/int64(s.opts.MaxChunks))
	}
	switch {
	case spec.Size < 0 || spec.Size > s.opts.MaxSize:
		return spec, fmt.Errorf("%w: size must be 0 to %d bytes", ErrBadSpec, s.opts.MaxSize)
	case spec.ChunkSize <= 0 || spec.ChunkSize > s.opts.MaxChunkSize:
		return spec, fmt.Errorf("%w: chunk size must be 1 to %d bytes", ErrBadSpec, s.opts.MaxChunkSize)
	case spec.ChunkSize < s.opts.MinChunkSize && spec.ChunkSize < spec.Size:
		// One chunk may be as small as the file; more must be large.
		return spec, fmt.Errorf("%w: chunk size must be at least %d bytes (or the whole file)", ErrBadSpec, s.opts.MinChunkSize)
	case spec.Chunks() > s.opts.MaxChunks:
		return spec, fmt.Errorf("%w: %d chunks; at most %d (a chunk size of at least %d bytes)", ErrBadSpec,
			spec.Chunks(), s.opts.MaxChunks, (spec.Size+int64(s.opts.MaxChunks)-1)/int64(s.opts.MaxChunks))
	}
	return spec, nil
}

func (s *Sessions) dir(id string) string { return filepath.Join(s.root, id) }

// validID reports whether id has the form Create gives ids: 32 lowercase
// hex characters. Only such ids reach the database or name a folder, so no
// request can name sessions.db, another folder or a path with a slash.
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// get loads a live session owned by owner.
func (s *Sessions) get(id string, owner types.Address) (*Session, error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	var sess Session
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions).Get([]byte(id))
		if b == nil {
			return ErrNotFound
		}
		return json.Unmarshal(b, &sess)
	})
	if err != nil {
		return nil, err
	}
	if !s.opts.Now().Before(sess.Expires) {
		return nil, ErrNotFound
	}
	if sess.Spec.Owner != owner {
		return nil, ErrForbidden
	}
	return &sess, nil
}

func chunkKey(id string, i int) []byte { return []byte(id + "/" + strconv.Itoa(i)) }

// PutChunk stores chunk index of a session from r, which must hash to sum and
// have the chunk's length. It returns created=false when the identical chunk
// was already stored (r is then not read).
func (s *Sessions) PutChunk(ctx context.Context, id string, owner types.Address, index int, sum types.Hash, r io.Reader) (created bool, err error) {
	sess, err := s.get(id, owner)
	if err != nil {
		return false, err
	}
	if index < 0 || index >= sess.Spec.Chunks() {
		return false, fmt.Errorf("%w: %d of %d chunks", ErrIndex, index, sess.Spec.Chunks())
	}
	if held, ok := s.chunkHash(id, index); ok {
		if held != sum {
			return false, fmt.Errorf("%w: chunk %d", ErrConflict, index)
		}
		return false, nil
	}
	want := sess.Spec.chunkLen(index)
	sealed, err := s.chunkStream(sess)
	if err != nil {
		return false, err
	}
	f, err := os.CreateTemp(s.dir(id), ".chunk-*")
	if err != nil {
		return false, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	var dst io.Writer = f
	if sealed != nil {
		// An encrypted session's chunk goes to disk sealed: a random IV,
		// then the chunk in AES-256-CTR. The checksum is the plaintext's.
		iv := make([]byte, aes.BlockSize)
		if _, err := rand.Read(iv); err != nil {
			f.Close()
			return false, err
		}
		if _, err := f.Write(iv); err != nil {
			f.Close()
			return false, err
		}
		dst = cipher.StreamWriter{S: cipher.NewCTR(sealed, iv), W: f}
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(dst, h), io.LimitReader(fsutil.ContextReader(ctx, r), want+1))
	if err == nil && n != want {
		err = fmt.Errorf("%w: chunk %d is %d bytes, want %d", ErrChunkSize, index, n, want)
	}
	if err == nil && types.Hash(h.Sum(nil)) != sum {
		err = fmt.Errorf("%w: chunk %d", ErrChecksum, index)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, err
	}
	// Two uploads of the same chunk may race here: the first to commit wins;
	// the second finds the same hash (success) or another one (conflict).
	s.mu.Lock()
	defer s.mu.Unlock()
	if held, ok := s.chunkHash(id, index); ok {
		if held != sum {
			return false, fmt.Errorf("%w: chunk %d", ErrConflict, index)
		}
		return false, nil
	}
	if err := os.Rename(tmp, filepath.Join(s.dir(id), strconv.Itoa(index))); err != nil {
		return false, err
	}
	if err := fsutil.SyncDir(s.dir(id)); err != nil {
		return false, err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketSessions).Get([]byte(id)) == nil {
			return ErrNotFound // aborted meanwhile
		}
		return tx.Bucket(bucketChunks).Put(chunkKey(id, index), sum[:])
	})
	return err == nil, err
}

func (s *Sessions) chunkHash(id string, i int) (types.Hash, bool) {
	var h types.Hash
	var ok bool
	_ = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketChunks).Get(chunkKey(id, i)); v != nil {
			copy(h[:], v)
			ok = true
		}
		return nil
	})
	return h, ok
}

// State returns a session with its stored and missing chunks.
func (s *Sessions) State(id string, owner types.Address) (*State, error) {
	sess, err := s.get(id, owner)
	if err != nil {
		return nil, err
	}
	if sess.Spec.Stream { // a tus upload: not for the chunk routes
		return nil, ErrNotFound
	}
	// One read of the session's chunk keys, not one per chunk.
	held := make([]bool, sess.Spec.Chunks())
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketChunks).Cursor()
		prefix := []byte(id + "/")
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if i, err := strconv.Atoi(string(k[len(prefix):])); err == nil && i >= 0 && i < len(held) {
				held[i] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	st := &State{Session: *sess, Stored: []Range{}, Missing: []Range{}}
	for i := 0; i < len(held); {
		j := i
		for j+1 < len(held) && held[j+1] == held[i] {
			j++
		}
		if held[i] {
			st.Stored = append(st.Stored, Range{i, j})
		} else {
			st.Missing = append(st.Missing, Range{i, j})
		}
		i = j + 1
	}
	return st, nil
}

// CorruptError names a stored chunk that no longer matches its checksum.
type CorruptError struct{ Index int }

func (e *CorruptError) Error() string { return fmt.Sprintf("%v: chunk %d", ErrCorrupt, e.Index) }

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// DropChunk forgets a stored chunk (one found damaged), so that the client
// sends it again.
func (s *Sessions) DropChunk(id string, owner types.Address, index int) error {
	if _, err := s.get(id, owner); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketChunks).Delete(chunkKey(id, index)) }); err != nil {
		return err
	}
	return os.Remove(filepath.Join(s.dir(id), strconv.Itoa(index)))
}

// IncompleteError lists the chunks a complete session still lacks.
type IncompleteError struct{ Missing []Range }

func (e *IncompleteError) Error() string {
	return fmt.Sprintf("%v: %d missing (first %d)", ErrIncomplete, Count(e.Missing), e.Missing[0][0])
}

func (e *IncompleteError) Unwrap() error { return ErrIncomplete }

// chunkStream is the block cipher an encrypted session's chunks are kept
// under (nil for a plain session).
func (s *Sessions) chunkStream(sess *Session) (cipher.Block, error) {
	if len(sess.WrappedKey) == 0 {
		return nil, nil
	}
	if s.opts.ChunkKey == nil {
		return nil, ErrNoChunkKey
	}
	k, err := s.opts.ChunkKey(sess.WrappedKey)
	if err != nil {
		return nil, err
	}
	return aes.NewCipher(k)
}

// Reader streams a complete session's bytes in order; it holds one chunk file
// open at a time, never the file. Each chunk is checked against the checksum
// it was taken with as it is read: a chunk damaged on disk fails the read
// (ErrCorrupt) at its end, before the reader sees the end of the file.
func (s *Sessions) Reader(id string, owner types.Address) (io.ReadCloser, *Session, error) {
	st, err := s.State(id, owner)
	if err != nil {
		return nil, nil, err
	}
	if len(st.Missing) > 0 {
		return nil, nil, &IncompleteError{Missing: st.Missing}
	}
	block, err := s.chunkStream(&st.Session)
	if err != nil {
		return nil, nil, err
	}
	sums := make([]types.Hash, st.Spec.Chunks())
	for i := range sums {
		sums[i], _ = s.chunkHash(id, i)
	}
	return &chunkReader{dir: s.dir(id), sums: sums, block: block}, &st.Session, nil
}

type chunkReader struct {
	dir   string
	sums  []types.Hash
	block cipher.Block // nil: chunks kept as sent
	i     int
	f     *os.File
	cur   io.Reader
	h     hash.Hash
}

func (c *chunkReader) open() error {
	f, err := os.Open(filepath.Join(c.dir, strconv.Itoa(c.i)))
	if err != nil {
		return err
	}
	c.f, c.cur, c.h = f, bufio.NewReaderSize(f, 256<<10), sha256.New()
	if c.block != nil {
		iv := make([]byte, aes.BlockSize)
		if _, err := io.ReadFull(c.cur, iv); err != nil {
			return &CorruptError{Index: c.i}
		}
		c.cur = cipher.StreamReader{S: cipher.NewCTR(c.block, iv), R: c.cur}
	}
	return nil
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for {
		if c.cur == nil {
			if c.i >= len(c.sums) {
				return 0, io.EOF
			}
			if err := c.open(); err != nil {
				return 0, err
			}
		}
		n, err := c.cur.Read(p)
		c.h.Write(p[:n])
		if err == io.EOF {
			c.f.Close()
			c.cur, c.f = nil, nil
			if types.Hash(c.h.Sum(nil)) != c.sums[c.i] {
				return 0, &CorruptError{Index: c.i}
			}
			c.i++
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *chunkReader) Close() error {
	if c.f != nil {
		return c.f.Close()
	}
	return nil
}

// Remove deletes a live session of owner and its chunks (abort, or after
// the pipeline took the file). An unknown, malformed or expired id is
// ErrNotFound and touches nothing (expired sessions go with Expire).
func (s *Sessions) Remove(id string, owner types.Address) error {
	if _, err := s.get(id, owner); err != nil {
		return err
	}
	return s.remove(id)
}

func (s *Sessions) remove(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketSessions).Delete([]byte(id)); err != nil {
			return err
		}
		prefix := []byte(id + "/")
		for _, name := range [][]byte{bucketChunks, bucketParts} {
			c := tx.Bucket(name).Cursor()
			var keys [][]byte
			for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				keys = append(keys, bytes.Clone(k))
			}
			for _, k := range keys {
				if err := tx.Bucket(name).Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return os.RemoveAll(s.dir(id))
}

// Expire removes every session past its time to live, and folders no session
// owns (left by a crash between them). It returns how many it removed.
func (s *Sessions) Expire() (int, error) {
	now := s.opts.Now()
	live := map[string]bool{}
	var dead []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			var sess Session
			if json.Unmarshal(v, &sess) != nil || !now.Before(sess.Expires) {
				dead = append(dead, string(k))
			} else {
				live[string(k)] = true
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	for _, id := range dead {
		if err := s.remove(id); err != nil {
			return 0, err
		}
	}
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		if e.IsDir() && !live[e.Name()] {
			os.RemoveAll(filepath.Join(s.root, e.Name()))
		}
	}
	return len(dead), nil
}

// PendingBytes counts owner's live sessions by territory and in all, as the
// padded bytes they will take (ingest counts them against the territory
// while they are open).
func (s *Sessions) PendingBytes(owner types.Address) (map[string]uint64, uint64) {
	by := map[string]uint64{}
	var all uint64
	now := s.opts.Now()
	_ = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSessions).ForEach(func(_, v []byte) error {
			var sess Session
			if json.Unmarshal(v, &sess) != nil || sess.Spec.Owner != owner || !now.Before(sess.Expires) {
				return nil
			}
			n := sess.Bytes()
			by[sess.Spec.Territory] += n
			all += n
			return nil
		})
	})
	return by, all
}

// Bytes is what the session's file will take in its territory (padded).
func (sess *Session) Bytes() uint64 {
	enc := types.EncryptionNone
	if len(sess.WrappedKey) > 0 {
		enc = types.EncryptionAES256GCM
	}
	switch {
	case sess.FID != types.FID{}: // the queue counts it now
		return 0
	case sess.Spec.Parts:
		return types.ProfileV2.PaddedSize(uint64(sess.PartBytes), enc)
	case len(sess.Partials) > 0: // its partials count their bytes
		return 0
	case sess.Spec.Stream && sess.Spec.Size < 0:
		return types.ProfileV2.PaddedSize(uint64(sess.Offset), enc)
	}
	return types.ProfileV2.PaddedSize(uint64(sess.Spec.Size), enc)
}
