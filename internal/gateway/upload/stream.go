package upload

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"github.com/deoss/deoss/internal/types"
)

// Stream sessions (tus): bytes appended in order to root/<id>/data, the
// record keeping the offset that is durable. A stream's size may be
// unknown (-1) until the client declares it. A final stream holds no bytes
// of its own: it reads its partial streams' data in order, so that
// parallel partial uploads become one file without a copy.

// Errors of stream sessions.
var (
	ErrOffset   = errors.New("the offset is not the stream's")
	ErrTooLong  = errors.New("more bytes than the stream's size")
	ErrNotReady = errors.New("the stream is not complete")
	ErrFinished = errors.New("the stream is a file already")
)

const streamFile = "data"

// CreateStream starts a stream session: spec.Size is its length, or -1 to
// declare later. partials, for a final stream, are complete partial
// streams of owner (read in this order); its size is theirs.
func (s *Sessions) CreateStream(spec Spec, extra []byte, partials []string) (*Session, error) {
	spec.Stream, spec.Parts, spec.ChunkSize = true, false, 0
	if len(partials) > 0 {
		spec.Size = 0
		for _, id := range partials {
			p, err := s.get(id, spec.Owner)
			if err != nil {
				return nil, fmt.Errorf("partial upload %s: %w", id, err)
			}
			if !p.Spec.Stream || !p.Spec.Partial || p.Spec.Size < 0 || p.Offset != p.Spec.Size {
				return nil, fmt.Errorf("%w: partial upload %s is not a complete partial stream", ErrNotReady, id)
			}
			spec.Size += p.Spec.Size
		}
	}
	if spec.Size < -1 || spec.Size > s.opts.MaxSize {
		return nil, fmt.Errorf("%w: size must be 0 to %d bytes", ErrBadSpec, s.opts.MaxSize)
	}
	sess, err := s.newSession(spec, nil, extra)
	if err != nil {
		return nil, err
	}
	sess.Partials = partials
	if len(partials) > 0 {
		sess.Offset = spec.Size
	}
	return sess, s.put(sess)
}

// Stream returns a live stream session of owner.
func (s *Sessions) Stream(id string, owner types.Address) (*Session, error) {
	sess, err := s.get(id, owner)
	if err == nil && !sess.Spec.Stream {
		err = ErrNotFound
	}
	return sess, err
}

// Append writes r's bytes at offset, which must be the stream's, up to its
// size; what arrived is made durable and counted even when r fails midway
// (a dropped connection resumes from there), once verify (nil: none)
// allows it: a body whose signed hash did not match, or was never
// checked, is not kept. It returns the bytes taken.
func (s *Sessions) Append(ctx context.Context, id string, owner types.Address, offset int64, r io.Reader, verify func() error) (int64, error) {
	sess, err := s.Stream(id, owner)
	if err != nil {
		return 0, err
	}
	switch {
	case len(sess.Partials) > 0:
		return 0, fmt.Errorf("%w: a final upload takes no bytes of its own", ErrBadSpec)
	case sess.FID != types.FID{}:
		return 0, fmt.Errorf("%w: %s", ErrFinished, sess.FID)
	case offset != sess.Offset:
		return 0, fmt.Errorf("%w: at %d, not %d", ErrOffset, sess.Offset, offset)
	}
	limit := s.opts.MaxSize - offset
	if sess.Spec.Size >= 0 {
		limit = sess.Spec.Size - offset
	}
	f, err := os.OpenFile(filepath.Join(s.dir(id), streamFile), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// Bytes past a crash's last durable offset are overwritten.
	n, rerr := io.Copy(io.NewOffsetWriter(f, offset), io.LimitReader(r, limit))
	if rerr == nil {
		// One byte more than the stream takes is an error, not a cut.
		var one [1]byte
		if m, _ := r.Read(one[:]); m > 0 {
			rerr = fmt.Errorf("%w: past %d bytes", ErrTooLong, offset+limit)
		}
	}
	if verify != nil {
		if err := verify(); err != nil {
			return 0, err
		}
	}
	if n == 0 {
		return 0, rerr
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	if err := s.update(id, func(st *Session) error {
		if st.Offset != offset {
			return fmt.Errorf("%w: moved to %d meanwhile", ErrOffset, st.Offset)
		}
		st.Offset = offset + n
		return nil
	}); err != nil {
		return 0, err
	}
	return n, rerr
}

// DeclareSize sets a deferred stream's size, which may not be below what it
// holds.
func (s *Sessions) DeclareSize(id string, owner types.Address, size int64) error {
	if _, err := s.Stream(id, owner); err != nil {
		return err
	}
	return s.update(id, func(st *Session) error {
		switch {
		case st.Spec.Size >= 0:
			return fmt.Errorf("%w: the size is %d already", ErrBadSpec, st.Spec.Size)
		case size < st.Offset || size > s.opts.MaxSize:
			return fmt.Errorf("%w: size must be %d to %d bytes", ErrBadSpec, st.Offset, s.opts.MaxSize)
		}
		st.Spec.Size = size
		return nil
	})
}

// Finish records the file a complete stream became and drops its bytes
// (and its partials, for a final stream): the queue holds the file now.
func (s *Sessions) Finish(id string, owner types.Address, fid types.FID) error {
	sess, err := s.Stream(id, owner)
	if err != nil {
		return err
	}
	if err := s.update(id, func(st *Session) error { st.FID = fid; return nil }); err != nil {
		return err
	}
	for _, p := range sess.Partials {
		if err := s.Remove(p, owner); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	if err := os.Remove(filepath.Join(s.dir(id), streamFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// SetExtra replaces a session's extra data (its caller's record).
func (s *Sessions) SetExtra(id string, owner types.Address, extra []byte) error {
	if _, err := s.get(id, owner); err != nil {
		return err
	}
	return s.update(id, func(st *Session) error { st.Extra = extra; return nil })
}

// StreamReader reads a complete stream: its data, or its partials' in
// order.
func (s *Sessions) StreamReader(id string, owner types.Address) (io.ReadCloser, *Session, error) {
	sess, err := s.Stream(id, owner)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case sess.FID != types.FID{}:
		return nil, nil, fmt.Errorf("%w: %s", ErrFinished, sess.FID)
	case sess.Spec.Size < 0 || sess.Offset != sess.Spec.Size:
		return nil, nil, fmt.Errorf("%w: %d of %d bytes", ErrNotReady, sess.Offset, sess.Spec.Size)
	}
	ids := sess.Partials
	if len(ids) == 0 {
		ids = []string{id}
	}
	var files []*os.File
	var readers []io.Reader
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, pid := range ids {
		p, err := s.Stream(pid, owner)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("partial upload %s: %w", pid, err)
		}
		if p.Offset == 0 {
			continue
		}
		f, err := os.Open(filepath.Join(s.dir(pid), streamFile))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		files = append(files, f)
		readers = append(readers, io.NewSectionReader(f, 0, p.Offset))
	}
	return &multiCloser{Reader: io.MultiReader(readers...), close: closeAll}, sess, nil
}

type multiCloser struct {
	io.Reader
	close func()
}

func (m *multiCloser) Close() error { m.close(); return nil }

// update changes a session's record under the store's lock.
func (s *Sessions) update(id string, f func(*Session) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		v := b.Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		var sess Session
		if err := json.Unmarshal(v, &sess); err != nil {
			return err
		}
		if err := f(&sess); err != nil {
			return err
		}
		nb, _ := json.Marshal(&sess)
		return b.Put([]byte(id), nb)
	})
}
