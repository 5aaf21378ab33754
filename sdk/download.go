package sdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// DownloadOptions tune a download.
type DownloadOptions struct {
	Cipher   string // the cipher of an encrypted file
	Progress func(Progress)
}

// Download writes bytes [off, off+n) of a file to w (n < 0: to the end).
// It returns the file's total size.
func (c *Client) Download(ctx context.Context, fid FID, w io.Writer, off, n int64, o DownloadOptions) (int64, error) {
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

// DownloadFile writes a file to path. A partial file at path (an earlier,
// interrupted run) is continued from its end.
func (c *Client) DownloadFile(ctx context.Context, fid FID, path string, o DownloadOptions) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	info, err := out.Stat()
	if err != nil {
		out.Close()
		return err
	}
	have := info.Size()
	if have > 0 {
		m, err := c.Stat(ctx, fid)
		if err != nil {
			out.Close()
			return err
		}
		if uint64(have) == m.Size {
			return out.Close() // complete already
		}
		if uint64(have) > m.Size {
			out.Close()
			return fmt.Errorf("%s is larger (%d bytes) than the file (%d): not a partial download of it", path, have, m.Size)
		}
	}
	if _, err := c.Download(ctx, fid, out, have, -1, o); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
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
