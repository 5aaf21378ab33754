package cache

import (
	"container/list"
	"encoding/json"
	"errors"
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

// Put caches fragment h, whose bytes b the caller verified against h (the
// decoder's WithVerifiedFragment hands over only fragments it checked, so the
// cache holds only verified bytes without hashing them again). b is copied
// before Put returns. A fragment bigger than the whole cache, or already
// cached, is ignored; so is a failed write.
func (c *Cache) Put(h types.Hash, b []byte) {
	if c.Has(h) || int64(len(b)) > c.max {
		return
	}
	f, err := os.CreateTemp(c.dir, ".tmp-")
	if err != nil {
		return
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	_, err = f.Write(b)
	if cerr := f.Close(); err != nil || cerr != nil {
		return
	}
	if err := os.Rename(f.Name(), c.path(h)); err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.index[h]; !ok {
		c.index[h] = c.lru.PushFront(&entry{h, int64(len(b))})
		c.size += int64(len(b))
	}
	c.evict()
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
