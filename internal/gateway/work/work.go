// Package work is a gateway's work area: the encoded columns of files that
// are not yet stored on nodes. Each file is a folder named by its FID holding
// layout.json and col-00 ... col-11, column j being fragment j of every
// segment in order (so fragment (s, j) is at offset s x 8 MiB of col-j).
package work

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/reedsolomon"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/fsutil"
	"github.com/deoss/deoss/internal/types"
)

// ErrNotFound is returned for a file the work area does not hold.
var ErrNotFound = errors.New("file not in the work area")

// Area is the work area under a root folder.
type Area struct{ root string }

// Open opens (or creates) the work area and removes what an interrupted
// encoding left (folders still under their temporary names).
func Open(root string) (*Area, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".encoding-") {
			if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	return &Area{root: root}, nil
}

func (a *Area) dir(fid types.FID) string { return filepath.Join(a.root, fid.String()) }

func colName(j int) string { return fmt.Sprintf("col-%02d", j) }

// Encode streams r through the codec into a new file's columns and returns
// the result. The columns are fsynced and the folder renamed to the FID only
// when the whole stream is encoded; encoding the same bytes again (the FID is
// already here) keeps the existing copy.
func (a *Area) Encode(ctx context.Context, r io.Reader, opts ...codec.EncodeOption) (*codec.Result, error) {
	tmp, err := os.MkdirTemp(a.root, ".encoding-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp) // gone after the rename; removes a failed attempt
	var cols [types.TotalShards]*os.File
	defer func() {
		for _, f := range cols {
			if f != nil {
				f.Close()
			}
		}
	}()
	for j := range cols {
		if cols[j], err = os.OpenFile(filepath.Join(tmp, colName(j)), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600); err != nil {
			return nil, err
		}
	}
	sink := codec.SinkFunc(func(s *codec.Segment) error {
		for j, f := range s.Fragments {
			if _, err := cols[j].Write(f); err != nil {
				return err
			}
		}
		return nil
	})
	res, err := codec.Encode(ctx, r, sink, opts...)
	if err != nil {
		return nil, err
	}
	for j, f := range cols {
		if err := f.Sync(); err != nil {
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		cols[j] = nil
	}
	b, _ := json.Marshal(res.Layout)
	if err := fsutil.WriteFileAtomic(filepath.Join(tmp, "layout.json"), b, 0o600); err != nil {
		return nil, err
	}
	if err := fsutil.SyncDir(tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, a.dir(res.FID)); err != nil {
		if _, serr := os.Stat(a.dir(res.FID)); serr == nil {
			return res, nil // the same file was encoded before: keep that copy
		}
		return nil, err
	}
	return res, fsutil.SyncDir(a.root)
}

// Layout returns the layout of a file in the work area.
func (a *Area) Layout(fid types.FID) (*types.Layout, error) {
	b, err := os.ReadFile(filepath.Join(a.dir(fid), "layout.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	var l types.Layout
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Fragment returns fragment (segment, column) of a file: a reader of the
// fragment's bytes (Layout.FragmentLen: a column file is its fragments end
// to end, so a v2 last fragment ends with the file), to be closed.
func (a *Area) Fragment(fid types.FID, segment uint64, column int) (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(a.dir(fid), colName(column)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, int64(segment)*types.FragmentSize, types.FragmentSize), f}, nil
}

// Source returns a file as a codec.FragmentSource, so a gateway reads files it
// has not finished distributing from its own work area.
func (a *Area) Source(fid types.FID) codec.FragmentSource { return source{a, fid} }

type source struct {
	a   *Area
	fid types.FID
}

func (s source) OpenFragment(_ context.Context, segment uint64, index int) (io.ReadCloser, error) {
	return s.a.Fragment(s.fid, segment, index)
}

// Remove deletes a file's columns (once it is stored on nodes).
func (a *Area) Remove(fid types.FID) error { return os.RemoveAll(a.dir(fid)) }

// ErrUnrepairable is returned when fewer than 4 good fragments of a segment
// remain in the work area.
var ErrUnrepairable = errors.New("fewer than 4 good fragments of the segment in the work area")

// Verify reports whether fragment (segment, column) in the work area still
// matches its hash in l.
func (a *Area) Verify(fid types.FID, l *types.Layout, segment uint64, column int) (bool, error) {
	rc, err := a.Fragment(fid, segment, column)
	if err != nil {
		return false, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return false, err
	}
	return len(b) == l.FragmentLen(int(segment)) && codec.Sum(l.Version, b) == l.Segments[segment].Fragments[column], nil
}

// Repair rebuilds fragment (segment, column) from four good fragments of
// the same segment and writes it back in place (fsynced): the work area
// heals a column the disk damaged instead of sending wrong bytes to nodes,
// which would refuse them, again and again.
func (a *Area) Repair(fid types.FID, l *types.Layout, segment uint64, column int) error {
	shards := make([][]byte, types.TotalShards)
	good := 0
	for j := 0; j < types.TotalShards && good < types.DataShards; j++ {
		if j == column {
			continue
		}
		rc, err := a.Fragment(fid, segment, j)
		if err != nil {
			return err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err == nil && len(b) == l.FragmentLen(int(segment)) && codec.Sum(l.Version, b) == l.Segments[segment].Fragments[j] {
			shards[j] = b
			good++
		}
	}
	if good < types.DataShards {
		return ErrUnrepairable
	}
	rs, err := reedsolomon.New(types.DataShards, types.ParityShards)
	if err != nil {
		return err
	}
	required := make([]bool, types.TotalShards)
	required[column] = true
	shards[column] = make([]byte, 0, l.FragmentLen(int(segment)))
	if err := rs.ReconstructSome(shards, required); err != nil {
		return err
	}
	if codec.Sum(l.Version, shards[column]) != l.Segments[segment].Fragments[column] {
		return ErrUnrepairable // the layout's hashes do not describe these fragments
	}
	f, err := os.OpenFile(filepath.Join(a.dir(fid), colName(column)), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(shards[column], int64(segment)*types.FragmentSize); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
