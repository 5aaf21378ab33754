package cache

import (
	"container/list"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/deoss/deoss/internal/types"
)

// ErrMiss is returned for what the cache does not hold.
var ErrMiss = errors.New("not in the cache")

// Cache is the fragment cache in a folder, bounded to max bytes.
type Cache struct {
	dir string
	max int64

	mu    sync.Mutex
	size  int64
	lru   *list.List // of *entry, most recent at the front
	index map[types.Hash]*list.Element
	hits  int64
	miss  int64
	// layouts are the kept layouts, oldest first (a dropped one may linger
	// here: removing it again is harmless).
	layouts []types.FID
}

type entry struct {
	hash types.Hash
	size int64
}

// Open opens (or creates) the cache in dir, indexing what it holds (oldest
// modification first, so eviction after a restart is roughly LRU).
func Open(dir string, max int64) (*Cache, error) {
	if err := os.MkdirAll(filepath.Join(dir, "layouts"), 0o700); err != nil {
		return nil, err
	}
	c := &Cache{dir: dir, max: max, lru: list.New(), index: map[types.Hash]*list.Element{}}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type found struct {
		h    types.Hash
		size int64
		mod  int64
	}
	var fs []found
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".tmp-") {
			os.Remove(filepath.Join(dir, de.Name()))
			continue
		}
		h, err := types.ParseHash(de.Name())
		if err != nil {
			continue
		}
		info, err := de.Info()
		if err != nil {
			continue
		}
		fs = append(fs, found{h, info.Size(), info.ModTime().UnixNano()})
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].mod < fs[j].mod })
	for _, f := range fs {
		c.index[f.h] = c.lru.PushFront(&entry{f.h, f.size})
		c.size += f.size
	}
	if err := c.indexLayouts(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.evict()
	c.mu.Unlock()
	return c, nil
}

// indexLayouts lists the kept layouts, oldest first, and trims them to
// MaxLayouts.
func (c *Cache) indexLayouts() error {
	dir := filepath.Join(c.dir, "layouts")
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	type found struct {
		fid types.FID
		mod int64
	}
	var ls []found
	for _, de := range des {
		fid, err := types.ParseFID(de.Name())
		info, ierr := de.Info()
		if err != nil || ierr != nil {
			os.Remove(filepath.Join(dir, de.Name())) // a leftover .tmp
			continue
		}
		ls = append(ls, found{fid, info.ModTime().UnixNano()})
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].mod < ls[j].mod })
	for _, l := range ls {
		c.layouts = append(c.layouts, l.fid)
	}
	for len(c.layouts) > MaxLayouts {
		os.Remove(filepath.Join(dir, c.layouts[0].String()))
		c.layouts = c.layouts[1:]
	}
	return nil
}

func (c *Cache) path(h types.Hash) string { return filepath.Join(c.dir, h.String()) }

// Open returns the cached fragment h, to be closed; ErrMiss when absent.
func (c *Cache) Open(h types.Hash) (io.ReadCloser, error) {
	c.mu.Lock()
	el, ok := c.index[h]
	if ok {
		c.lru.MoveToFront(el)
		c.hits++
	} else {
		c.miss++
	}
	c.mu.Unlock()
	if !ok {
		return nil, ErrMiss
	}
	f, err := os.Open(c.path(h))
	if err != nil {
		c.Remove(h)
		return nil, ErrMiss
	}
	return f, nil
}

// Has reports whether fragment h is cached.
func (c *Cache) Has(h types.Hash) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.index[h]
	return ok
}

// Remove drops a fragment (one that failed verification, say).
func (c *Cache) Remove(h types.Hash) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.index[h]; ok {
		c.drop(el)
	}
}

func (c *Cache) drop(el *list.Element) {
	e := c.lru.Remove(el).(*entry)
	delete(c.index, e.hash)
	c.size -= e.size
	os.Remove(c.path(e.hash))
}

// evict drops the least recently used fragments until the cache fits.
func (c *Cache) evict() {
	for c.size > c.max && c.lru.Len() > 0 {
		c.drop(c.lru.Back())
	}
}

// Size is the bytes held.
func (c *Cache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// Stats are the hits and misses since Open.
func (c *Cache) Stats() (hits, misses int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.miss
}

// Writer returns a writer that caches the fragment h once Commit finds it
// whole and hashing to h; Abort (or a short or wrong fragment) discards it.
// The cache holds only verified fragments, so that what it serves to a peer
// or a reader is right whatever happened to the read that filled it (a
// fragment arriving after its read was cancelled, say). A nil Writer (the
// fragment is cached already, or bigger than the whole cache) accepts and
// ignores everything.
func (c *Cache) Writer(h types.Hash) *Writer {
	if c.Has(h) || types.FragmentSize > c.max {
		return nil
	}
	f, err := os.CreateTemp(c.dir, ".tmp-")
	if err != nil {
		return nil
	}
	return &Writer{c: c, want: h, f: f, sum: sha256.New()}
}

// Writer is a fragment on its way into the cache.
type Writer struct {
	c    *Cache
	want types.Hash
	f    *os.File
	sum  hash.Hash
	n    int64
	err  error
}

// Write implements io.Writer; a failed write only spoils the entry.
func (w *Writer) Write(p []byte) (int, error) {
	if w == nil || w.err != nil {
		return len(p), nil
	}
	if w.n+int64(len(p)) > types.FragmentSize {
		w.err = errors.New("longer than a fragment")
		return len(p), nil
	}
	_, w.err = w.f.Write(p)
	w.sum.Write(p)
	w.n += int64(len(p))
	return len(p), nil
}

// Commit keeps the entry if it is a whole fragment with the right hash.
func (w *Writer) Commit() {
	if w == nil {
		return
	}
	defer os.Remove(w.f.Name())
	defer w.f.Close()
	if w.err != nil || w.n != types.FragmentSize || types.Hash(w.sum.Sum(nil)) != w.want {
		return
	}
	if err := os.Rename(w.f.Name(), w.c.path(w.want)); err != nil {
		return
	}
	c := w.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.index[w.want]; !ok {
		c.index[w.want] = c.lru.PushFront(&entry{w.want, w.n})
		c.size += w.n
	}
	c.evict()
}

// Abort discards the entry.
func (w *Writer) Abort() {
	if w == nil {
		return
	}
	w.f.Close()
	os.Remove(w.f.Name())
}

// PutLayout keeps the layout of a file with cached fragments; past
// MaxLayouts the oldest kept layout goes.
func (c *Cache) PutLayout(fid types.FID, l *types.Layout) {
	p := filepath.Join(c.dir, "layouts", fid.String())
	if _, err := os.Stat(p); err == nil {
		return
	}
	b, _ := json.Marshal(l)
	tmp := p + ".tmp"
	if os.WriteFile(tmp, b, 0o600) != nil || os.Rename(tmp, p) != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.layouts = append(c.layouts, fid)
	for len(c.layouts) > MaxLayouts {
		os.Remove(filepath.Join(c.dir, "layouts", c.layouts[0].String()))
		c.layouts = c.layouts[1:]
	}
}

// MaxLayouts bounds the layouts kept (each about 1 KB per 32 MiB segment).
const MaxLayouts = 4096

// Layout returns a kept layout; ErrMiss when absent. Callers check it
// against the FID.
func (c *Cache) Layout(fid types.FID) (*types.Layout, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "layouts", fid.String()))
	if err != nil {
		return nil, ErrMiss
	}
	var l types.Layout
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, ErrMiss
	}
	return &l, nil
}

// HasFile reports whether the cache keeps fid's layout (and so, likely,
// some of its fragments).
func (c *Cache) HasFile(fid types.FID) bool {
	_, err := os.Stat(filepath.Join(c.dir, "layouts", fid.String()))
	return err == nil
}

// DropLayout forgets a file's layout (the file was deleted).
func (c *Cache) DropLayout(fid types.FID) {
	os.Remove(filepath.Join(c.dir, "layouts", fid.String()))
}
