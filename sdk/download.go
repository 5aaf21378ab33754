package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/fsutil"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// DownloadOptions tune a download.
type DownloadOptions struct {
	Cipher string // the cipher of an encrypted file
	// Decrypt opens a file encrypted on the client side
	// (UploadOptions.Encrypt) with this passphrase, here: the gateway sends
	// ciphertext, ranges included, and never sees a key.
	Decrypt  string
	Progress func(Progress)
	// NoClobber makes DownloadFile refuse (ErrExists) to replace a file.
	NoClobber bool
	// Discarded, when set, hears why DownloadFile threw away a partial file
	// instead of continuing it.
	Discarded func(msg string)
}

// Download writes bytes [off, off+n) of a file to w (n < 0: to the end).
// It returns the file's total size.
func (c *Client) Download(ctx context.Context, fid FID, w io.Writer, off, n int64, o DownloadOptions) (int64, error) {
	if o.Decrypt != "" {
		return c.downloadSealed(ctx, fid, w, off, n, o)
	}
	hdr := map[string]string{}
	if o.Cipher != "" {
		hdr["Cipher"] = o.Cipher
	}
	switch {
	case n >= 0 && off >= 0:
		if n == 0 {
			return 0, errors.New("an empty range")
		}
		hdr["Range"] = fmt.Sprintf("bytes=%d-%d", off, off+n-1)
	case off > 0:
		hdr["Range"] = fmt.Sprintf("bytes=%d-", off)
	}
	resp, err := c.do(ctx, "GET", "/file/download/"+fid.String(), nil, 0, hdr)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	total := resp.ContentLength
	if cr := resp.Header.Get("Content-Range"); cr != "" {
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			total, _ = strconv.ParseInt(cr[i+1:], 10, 64)
		}
	}
	p := Progress{Total: total, Started: time.Now(), Resumed: max(off, 0), Done: max(off, 0)}
	pw := &progressWriter{w: w, p: p, f: o.Progress}
	if _, err := io.Copy(pw, resp.Body); err != nil {
		return total, fmt.Errorf("download cut short after %d bytes: %w", pw.p.Done, err)
	}
	pw.flush()
	return total, nil
}

// DownloadFile writes a file to path, replacing what is there (as cp and
// curl -o do) unless o.NoClobber is set.
//
// The bytes go into path + PartialSuffix first, beside a record (path +
// PartialSuffix + ".json") of the FID, format version and size it belongs to
// and of how many bytes of it are written and synced. Only when the whole
// file is received and synced is it renamed over path (and the folder
// synced), so an interrupted download leaves path as it was. A later call for
// the same FID continues the partial file from its last synced byte; a
// partial file of another FID, or one shorter than its record says, is
// discarded (o.Discarded says why), never continued.
func (c *Client) DownloadFile(ctx context.Context, fid FID, path string, o DownloadOptions) error {
	if o.NoClobber {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s: %w", path, ErrExists)
		}
	}
	m, err := c.Stat(ctx, fid)
	if err != nil {
		return err
	}
	if o.Decrypt != "" {
		plain, err := codec.ClientPlainSize(int64(m.Size))
		if err != nil {
			return err
		}
		m.Size = uint64(plain) // what lands in path
	}
	want := partialRecord{FID: fid, Version: m.Version, Size: m.Size}
	part := path + PartialSuffix
	out, have, err := openPartial(part, want, o.Discarded)
	if err != nil {
		return err
	}
	pw := &syncWriter{f: out, rec: want, recPath: part + ".json", synced: have}
	pw.rec.Synced = have
	if uint64(have) < m.Size {
		if _, err = c.Download(ctx, fid, pw, have, -1, o); err != nil {
			out.Close()
			return err
		}
	} else if o.Progress != nil {
		o.Progress(Progress{Done: have, Total: have, Resumed: have, Started: time.Now()})
	}
	if err := pw.sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if uint64(pw.synced) != m.Size {
		return fmt.Errorf("download of %s ended at %d of %d bytes", fid, pw.synced, m.Size)
	}
	if o.NoClobber {
		// Link fails if path appeared meanwhile; rename would replace it.
		if err := os.Link(part, path); err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s: %w", path, ErrExists)
			}
			return err
		}
		os.Remove(part)
	} else if err := os.Rename(part, path); err != nil {
		return err
	}
	os.Remove(part + ".json") // a stale record beside no partial file is ignored
	return fsutil.SyncDir(filepath.Dir(path))
}

// PartialSuffix names the file an unfinished DownloadFile writes into.
const PartialSuffix = ".deoss-partial"

// ErrExists is returned by DownloadFile with NoClobber when the path exists.
var ErrExists = errors.New("exists already (not replaced: no-clobber)")

// partialRecord says what a partial download holds.
type partialRecord struct {
	FID     FID    `json:"fid"`
	Version uint8  `json:"version"`
	Size    uint64 `json:"size"`
	Synced  int64  `json:"synced"` // bytes written and synced
}

// openPartial opens the partial file at part for want, returning how many of
// its bytes to keep: its record's synced count when the record names the
// same file, else 0 (the partial file is discarded, with a word to
// discarded).
func openPartial(part string, want partialRecord, discarded func(string)) (*os.File, int64, error) {
	f, err := os.OpenFile(part, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, 0, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	var keep int64
	var rec partialRecord
	recErr := fsutil.ReadJSON(part+".json", &rec)
	why := ""
	switch {
	case info.Size() == 0: // new, or left empty: nothing to continue or to say
	case recErr != nil:
		why = "it has no readable record"
	case rec.FID != want.FID || rec.Version != want.Version || rec.Size != want.Size:
		why = "it belongs to " + rec.FID.String()
	case rec.Synced < 0 || uint64(rec.Synced) > rec.Size || info.Size() < rec.Synced:
		why = fmt.Sprintf("its record says %d bytes, the file holds %d", rec.Synced, info.Size())
	default:
		keep = rec.Synced // bytes past it were never synced: fetch them again
	}
	if why != "" && discarded != nil {
		discarded(fmt.Sprintf("%s: discarded, not continued: %s", part, why))
	}
	if err := f.Truncate(keep); err != nil {
		f.Close()
		return nil, 0, err
	}
	if _, err := f.Seek(keep, io.SeekStart); err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, keep, nil
}

// syncWriter appends to a partial file and, every syncEvery bytes, syncs it
// and then its record, so the record never claims an unsynced byte.
type syncWriter struct {
	f       *os.File
	rec     partialRecord
	recPath string
	synced  int64
	written int64 // since the last sync
}

const syncEvery = 16 << 20

func (w *syncWriter) Write(b []byte) (int, error) {
	n, err := w.f.Write(b)
	w.written += int64(n)
	if err == nil && w.written >= syncEvery {
		err = w.sync()
	}
	return n, err
}

func (w *syncWriter) sync() error {
	if err := w.f.Sync(); err != nil {
		return err
	}
	w.synced += w.written
	w.written = 0
	w.rec.Synced = w.synced
	data, err := json.Marshal(w.rec)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(w.recPath, data, 0o644)
}

type progressWriter struct {
	w    io.Writer
	p    Progress
	f    func(Progress)
	last time.Time
}

func (pw *progressWriter) Write(b []byte) (int, error) {
	n, err := pw.w.Write(b)
	pw.p.Done += int64(n)
	if pw.f != nil && time.Since(pw.last) > 100*time.Millisecond {
		pw.last = time.Now()
		pw.f(pw.p)
	}
	return n, err
}

func (pw *progressWriter) flush() {
	if pw.f != nil {
		pw.f(pw.p)
	}
}

// downloadSealed reads the client-side encryption header, then just the
// sealed blocks that hold the range, and opens them here.
func (c *Client) downloadSealed(ctx context.Context, fid FID, w io.Writer, off, n int64, o DownloadOptions) (int64, error) {
	header, sealedSize, err := c.getRange(ctx, fid, 0, codec.ClientHeaderSize, nil)
	if err != nil {
		return 0, err
	}
	salt, err := codec.ClientSalt(header)
	if err != nil {
		return 0, err
	}
	size, err := codec.ClientPlainSize(sealedSize)
	if err != nil {
		return 0, err
	}
	off = max(off, 0)
	if n < 0 || off+n > size {
		n = max(size-off, 0)
	}
	if off > size || (n == 0 && size > 0) {
		return size, errors.New("an empty range")
	}
	key, err := codec.DeriveKey([]byte(o.Decrypt), salt)
	if err != nil {
		return size, err
	}
	so, sl := codec.ClientRange(off, n, size)
	resp, err := c.do(ctx, "GET", "/file/download/"+fid.String(), nil, 0, map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", so, so+sl-1)})
	if err != nil {
		return size, err
	}
	defer resp.Body.Close()
	p := Progress{Total: size, Started: time.Now(), Resumed: off, Done: off}
	pw := &progressWriter{w: w, p: p, f: o.Progress}
	if err := codec.OpenClientRange(pw, resp.Body, key, header, off, n, size); err != nil {
		if errors.Is(err, codec.ErrAuthentication) {
			return size, fmt.Errorf("wrong passphrase, or the file was altered: %w", err)
		}
		return size, fmt.Errorf("download cut short after %d bytes: %w", pw.p.Done, err)
	}
	pw.flush()
	return size, nil
}

// getRange reads bytes [off, off+n) of a file whole (small ranges) and the
// file's total size.
func (c *Client) getRange(ctx context.Context, fid FID, off, n int64, hdr map[string]string) ([]byte, int64, error) {
	h := map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", off, off+n-1)}
	for k, v := range hdr {
		h[k] = v
	}
	resp, err := c.do(ctx, "GET", "/file/download/"+fid.String(), nil, 0, h)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, n))
	if err != nil {
		return nil, 0, err
	}
	total := int64(len(b))
	if cr := resp.Header.Get("Content-Range"); cr != "" {
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			total, _ = strconv.ParseInt(cr[i+1:], 10, 64)
		}
	}
	return b, total, nil
}
