package sdk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deoss/deoss/internal/backoff"
	"github.com/deoss/deoss/internal/codec"
)

// Progress is a transfer's state, reported as it goes.
type Progress struct {
	Done, Total int64 // bytes
	Started     time.Time
	Resumed     int64 // bytes that an earlier run had sent already
}

// UploadOptions tune an upload. Zero values take the defaults.
type UploadOptions struct {
	Name      string // the file's name on chain (default: the file's base name)
	Territory string // default "home"
	Cipher    string // encrypt at the gateway with this cipher
	// Private makes gateways serve the file to its owner only (signed
	// requests, or a link from ShareURL). Its bytes on nodes are hidden only
	// by encryption: use Encrypt for that.
	Private bool
	// Encrypt encrypts on this side with this passphrase before anything is
	// sent (client-side encryption, docs/format.md): the gateway stores
	// ciphertext and never sees a key. Read it back with
	// DownloadOptions.Decrypt.
	Encrypt string
	// Concurrency is the most chunks in flight (default 4). The client
	// starts with two and opens up while chunks succeed, and halves after a
	// failure.
	Concurrency int
	// ChunkSize fixes the chunk size; zero lets the client choose from the
	// rate it measured last time (Tuning).
	ChunkSize int64
	// StateFile keeps the session of an unfinished upload, so a re-run of
	// the same upload resumes it. Empty: a file beside the tuning file,
	// named after the path, name and size.
	StateFile string
	// Tuning is where the measured rate is kept between uploads (default
	// ~/.deoss/upload-tuning.json; "-" keeps nothing).
	Tuning   string
	Progress func(Progress)
	// Retries of one chunk before the upload fails (default 6).
	Retries int
}

// uploadState is what a state file holds.
type uploadState struct {
	Gateway   string    `json:"gateway"`
	Session   string    `json:"session"`
	Path      string    `json:"path"`
	Name      string    `json:"name"`
	Size      int64     `json:"size"`
	ModTime   time.Time `json:"mod_time"`
	ChunkSize int64     `json:"chunk_size"`
	// Header is the client-side encryption header (with its salt) of an
	// encrypted upload: a resumed upload seals the same bytes again.
	Header []byte `json:"header,omitempty"`
}

type tuning struct {
	RateBps float64 `json:"rate_bps"` // bytes per second of one chunk
	Errors  int     `json:"errors"`   // failures in the last upload
}

func deossDir() string {
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".deoss")
}

// maxChunks is the most chunks a gateway takes in one session.
const maxChunks = 10_000

// chooseChunk picks a chunk size that takes about two seconds at the last
// measured rate, halved after a troubled upload, within 1 to 64 MiB.
func chooseChunk(t tuning) int64 {
	if t.RateBps == 0 {
		return 8 << 20
	}
	c := int64(t.RateBps * 2)
	if t.Errors > 0 {
		c /= 2
	}
	c = min(max(c, 1<<20), 64<<20)
	return c &^ (1<<20 - 1) // whole MiB
}

// Upload sends the file at path through a chunked session and returns its
// FID. Interrupted (killed, or ctx cancelled), it leaves its state file; the
// same call again sends only the chunks the gateway does not hold yet.
func (c *Client) Upload(ctx context.Context, path string, o UploadOptions) (FID, error) {
	var fid FID
	f, err := os.Open(path)
	if err != nil {
		return fid, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fid, err
	}
	if !info.Mode().IsRegular() {
		return fid, fmt.Errorf("%s is not a regular file", path)
	}
	if o.Name == "" {
		o.Name = filepath.Base(path)
	}
	abs, _ := filepath.Abs(path)
	if o.StateFile == "" {
		sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%d", c.gateway, abs, o.Name, info.Size()))
		o.StateFile = filepath.Join(deossDir(), "uploads", hex.EncodeToString(sum[:8])+".json")
	}
	st := uploadState{Gateway: c.gateway, Path: abs, Name: o.Name, Size: info.Size(), ModTime: info.ModTime().UTC()}
	return c.upload(ctx, f, st, o)
}

// UploadReaderAt uploads size bytes of r, resumable through o.StateFile
// when it is set.
func (c *Client) UploadReaderAt(ctx context.Context, r io.ReaderAt, size int64, o UploadOptions) (FID, error) {
	if o.Name == "" {
		return FID{}, errors.New("UploadOptions.Name is required")
	}
	return c.upload(ctx, r, uploadState{Gateway: c.gateway, Name: o.Name, Size: size}, o)
}

func (c *Client) upload(ctx context.Context, r io.ReaderAt, want uploadState, o UploadOptions) (FID, error) {
	var fid FID
	if o.Territory == "" {
		o.Territory = "home"
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Retries <= 0 {
		o.Retries = 6
	}
	if o.Tuning == "" {
		o.Tuning = filepath.Join(deossDir(), "upload-tuning.json")
	}
	var tune tuning
	if o.Tuning != "-" {
		if b, err := os.ReadFile(o.Tuning); err == nil {
			json.Unmarshal(b, &tune)
		}
	}
	hdr := map[string]string{}
	if o.Cipher != "" {
		hdr["Cipher"] = o.Cipher
	}

	// Resume the session of the state file if it is this same upload and
	// the gateway still has it.
	var st uploadState
	var stored map[int]bool
	if o.StateFile != "" {
		if b, err := os.ReadFile(o.StateFile); err == nil && json.Unmarshal(b, &st) == nil {
			same := st.Gateway == want.Gateway && st.Path == want.Path && st.Name == want.Name && st.Size == want.Size && st.ModTime.Equal(want.ModTime) &&
				(len(st.Header) > 0) == (o.Encrypt != "")
			if same {
				stored, err = c.sessionChunks(ctx, st.Session)
			}
			if !same || err != nil {
				st = uploadState{}
			}
		}
	}
	// Client-side encryption: what is sent is the sealed stream, read from
	// the file as it goes (never held whole).
	size := want.Size
	if o.Encrypt != "" {
		header := st.Header
		if st.Session == "" {
			var err error
			if header, err = codec.NewClientHeader(); err != nil {
				return fid, err
			}
		}
		salt, err := codec.ClientSalt(header)
		if err != nil {
			return fid, err
		}
		key, err := codec.DeriveKey([]byte(o.Encrypt), salt)
		if err != nil {
			return fid, err
		}
		sealer := codec.NewClientSealer(r, want.Size, key, header)
		r, size, want.Header = sealer, sealer.Size(), header
	}
	if st.Session == "" {
		st = want
		st.ChunkSize = o.ChunkSize
		if st.ChunkSize == 0 {
			// Gateways take at most 10,000 chunks a session.
			st.ChunkSize = max(chooseChunk(tune), (size+maxChunks*(1<<20)-1)/(maxChunks*(1<<20))<<20)
		}
		var created struct {
			ID        string `json:"id"`
			ChunkSize int64  `json:"chunk_size"`
		}
		req := map[string]any{"name": st.Name, "territory": o.Territory, "size": size, "chunk_size": st.ChunkSize}
		if o.Private {
			req["private"] = true
		}
		if err := c.call(ctx, "POST", "/upload", req, &created, hdr); err != nil {
			return fid, err
		}
		st.Session, st.ChunkSize, stored = created.ID, created.ChunkSize, map[int]bool{}
		if o.StateFile != "" {
			os.MkdirAll(filepath.Dir(o.StateFile), 0o700)
			b, _ := json.Marshal(st)
			if err := os.WriteFile(o.StateFile, b, 0o600); err != nil {
				return fid, err
			}
		}
	}

	chunks := 0
	if size > 0 {
		chunks = int((size + st.ChunkSize - 1) / st.ChunkSize)
	}
	chunkLen := func(i int) int64 { return min(st.ChunkSize, size-int64(i)*st.ChunkSize) }
	prog := Progress{Total: size, Started: time.Now()}
	for i := range stored {
		prog.Resumed += chunkLen(i)
	}
	var done atomic.Int64
	done.Store(prog.Resumed)
	report := func() {
		if o.Progress != nil {
			p := prog
			p.Done = done.Load()
			o.Progress(p)
		}
	}
	report()

	// A window of chunks in flight: +1 per success up to Concurrency, halved
	// on a failure (additive increase, multiplicative decrease).
	var mu sync.Mutex
	window, inflight, failures := min(2, o.Concurrency), 0, 0
	cond := sync.NewCond(&mu)
	var firstErr error
	var wg sync.WaitGroup
	var measured []float64
	for i := range chunks {
		if stored[i] {
			continue
		}
		mu.Lock()
		for inflight >= window && firstErr == nil {
			cond.Wait()
		}
		if firstErr != nil {
			mu.Unlock()
			break
		}
		inflight++
		mu.Unlock()
		wg.Go(func() {
			start := time.Now()
			err := c.putChunk(ctx, st.Session, i, r, int64(i)*st.ChunkSize, chunkLen(i), o.Retries, func() {
				mu.Lock()
				failures++
				window = max(1, window/2)
				mu.Unlock()
			})
			mu.Lock()
			inflight--
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("chunk %d: %w", i, err)
			}
			if err == nil {
				window = min(window+1, o.Concurrency)
				measured = append(measured, float64(chunkLen(i))/time.Since(start).Seconds())
			}
			cond.Broadcast()
			mu.Unlock()
			if err == nil {
				done.Add(chunkLen(i))
				report()
			}
		})
		if ctx.Err() != nil {
			break
		}
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if o.Tuning != "-" && len(measured) > 0 {
		var sum float64
		for _, m := range measured {
			sum += m
		}
		b, _ := json.Marshal(tuning{RateBps: sum / float64(len(measured)), Errors: failures})
		os.MkdirAll(filepath.Dir(o.Tuning), 0o700)
		os.WriteFile(o.Tuning, b, 0o600)
	}
	if firstErr != nil {
		return fid, firstErr
	}
	var rec struct {
		FID FID `json:"fid"`
	}
	if err := c.call(ctx, "POST", "/upload/"+st.Session+"/complete", nil, &rec, nil); err != nil {
		return fid, err
	}
	if o.StateFile != "" {
		os.Remove(o.StateFile)
	}
	return rec.FID, nil
}

// sessionChunks returns the chunks a session holds.
func (c *Client) sessionChunks(ctx context.Context, id string) (map[int]bool, error) {
	var s struct {
		Stored [][2]int `json:"stored"` // runs, first to last
	}
	if err := c.call(ctx, "GET", "/upload/"+id, nil, &s, nil); err != nil {
		return nil, err
	}
	m := map[int]bool{}
	for _, r := range s.Stored {
		for i := r[0]; i <= r[1] && i-r[0] < 1_000_000; i++ {
			m[i] = true
		}
	}
	return m, nil
}

// chunkRetries spreads the retries of many clients (jitter) over up to 10 s.
var chunkRetries = backoff.Policy{Base: 300 * time.Millisecond, Max: 10 * time.Second, Jitter: 0.3}

// putChunk sends one chunk, retrying with exponential backoff and jitter
// while the failure is one a retry may cure.
func (c *Client) putChunk(ctx context.Context, session string, i int, r io.ReaderAt, off, n int64, retries int, failed func()) error {
	buf := make([]byte, n)
	if _, err := r.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return err
	}
	sum := sha256.Sum256(buf)
	hdr := map[string]string{"Chunk-Sha256": hex.EncodeToString(sum[:])}
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		resp, err := c.do(actx, "PUT", fmt.Sprintf("/upload/%s/%d", session, i), bytesReader(buf), n, hdr)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !retryable(err) || attempt >= retries {
			return err
		}
		failed()
		if err := backoff.Sleep(ctx, chunkRetries.Delay(attempt)); err != nil {
			return err
		}
	}
}
