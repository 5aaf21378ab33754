package read

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"lukechampine.com/blake3"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/gateway/pack"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/ttlcache"
	"github.com/deoss/deoss/internal/types"
)

// PackedChain finds packed objects on chain.
type PackedChain interface {
	Packed(ctx context.Context, oid types.FID) (*ledger.PackedView, error)
}

// Object is a packed object resolved for reading: in this gateway's
// buffer (its pack not declared yet), or at its locations on chain.
type Object struct {
	OID       types.FID
	Owner     types.Address
	Name      string
	Territory string
	Length    uint64
	Private   bool
	Buffered  bool
	// Chain is its record once declared (its packs and offsets).
	Chain *ledger.PackedView
	// peer is the URL of a peer gateway whose buffer holds it (found
	// neither here nor on chain).
	peer string
}

// Headers of GET /peer/object/{oid}: what a reader needs besides the bytes
// (whose length is the Content-Length), all checked against the OID.
const (
	HeaderObjectOwner   = "Deoss-Object-Owner"
	HeaderObjectPrivate = "Deoss-Object-Private"
	HeaderObjectName    = "Deoss-Object-Name"
)

// peerObject asks peer gateways whether one buffers oid (a HEAD of their
// /peer/object route) and resolves it there.
func (rd *Reader) peerObject(ctx context.Context, oid types.FID) (*File, bool) {
	all, err := rd.gateways(ctx)
	if err != nil {
		return nil, false
	}
	asked := 0
	for _, g := range all {
		if g.Address == rd.self || g.Endpoint == "" || g.CacheOnly {
			continue
		}
		if asked++; asked > maxPeerProbes {
			break
		}
		url := g.Endpoint + "/peer/object/" + oid.String()
		hctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		req, _ := http.NewRequestWithContext(hctx, http.MethodHead, url, nil)
		resp, err := rd.hc.Do(req)
		cancel()
		if err != nil {
			continue
		}
		resp.Body.Close()
		owner, err := types.ParseAddress(resp.Header.Get(HeaderObjectOwner))
		if resp.StatusCode != http.StatusOK || err != nil || resp.ContentLength <= 0 {
			continue
		}
		o := &Object{OID: oid, Owner: owner, Length: uint64(resp.ContentLength), Name: unescape(resp.Header.Get(HeaderObjectName)),
			Private: resp.Header.Get(HeaderObjectPrivate) == "true", peer: url}
		return &File{FID: oid, Layout: &types.Layout{Version: types.FormatV2, Size: o.Length, Owner: owner}, Object: o}, true
	}
	return nil, false
}

// readPeer reads an object from a peer's buffer: whole, hashed to its OID
// (which binds the owner and length the peer claimed) before a byte is
// served.
func (rd *Reader) readPeer(ctx context.Context, w io.Writer, o *Object, off, n int64) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.peer, nil)
	if err != nil {
		return err
	}
	resp, err := rd.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", o.peer, resp.Status)
	}
	return rd.packs.verified(w, io.LimitReader(resp.Body, int64(o.Length)), o, off, n)
}

// Objects up to memVerifyMax are verified in memory (memVerifyBudget bytes
// at most at once), larger ones through a spool file.
const (
	memVerifyMax    = 1 << 20
	memVerifyBudget = 64 << 20
)

// verified spools an object's bytes from r, checks them against its OID
// and writes [off, off+n) of them to w.
func (p *packs) verified(w io.Writer, r io.Reader, o *Object, off, n int64) error {
	if o.Length <= memVerifyMax {
		if held := p.memHeld.Add(int64(o.Length)); held <= memVerifyBudget {
			defer p.memHeld.Add(-int64(o.Length))
			b := make([]byte, o.Length+1)
			got, err := io.ReadFull(r, b)
			switch {
			case err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF):
				return err
			case uint64(got) != o.Length || codec.ObjectID(types.EncryptionNone, o.Owner, o.Length, blake3.Sum256(b[:got])) != o.OID:
				return pack.ErrCorrupt
			}
			_, err = w.Write(b[off : off+n])
			return err
		}
		p.memHeld.Add(-int64(o.Length))
	}
	tmp, err := os.CreateTemp(p.spool, "read-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := blake3.New(32, nil)
	got, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err != nil {
		return err
	}
	var sum types.Hash
	h.Sum(sum[:0])
	if uint64(got) != o.Length || codec.ObjectID(types.EncryptionNone, o.Owner, o.Length, sum) != o.OID {
		return pack.ErrCorrupt
	}
	_, err = io.Copy(w, io.NewSectionReader(tmp, off, n))
	return err
}

type packs struct {
	buf   *pack.Buffer
	chain PackedChain
	spool string
	// checked: (object, pack) pairs whose bytes hashed to the OID once
	// (true), or did not (false: a forged or wrong entry, skipped); a pack's
	// bytes are themselves checked against the chain's fragment hashes on
	// every read, so later ranges stream without a re-hash.
	checked *ttlcache.Cache[[2]types.FID, bool]
	// resolved: packs resolved lately (stored, so their layout is fixed;
	// a column that moved since costs a fallback to other nodes).
	resolved *ttlcache.Cache[types.FID, *File]
	memHeld  atomic.Int64 // bytes of objects being verified in memory
}

// UsePacks lets the reader serve packed objects: from buf (this gateway's
// buffer, may be nil) and from their packs on chain. Whole objects are
// spooled to verify them in dir.
func (rd *Reader) UsePacks(buf *pack.Buffer, ch PackedChain, dir string) {
	os.MkdirAll(dir, 0o700) // a failure shows at the first read
	if old, err := filepath.Glob(filepath.Join(dir, "read-*")); err == nil {
		for _, f := range old { // spools of reads a crash cut off
			os.Remove(f)
		}
	}
	rd.packs = &packs{buf: buf, chain: ch, spool: dir, checked: ttlcache.New[[2]types.FID, bool](time.Hour, 100_000),
		resolved: ttlcache.New[types.FID, *File](10*time.Second, 1024)}
}

// resolveObject finds a packed object, or reports false.
func (rd *Reader) resolveObject(ctx context.Context, oid types.FID) (*File, bool, error) {
	p := rd.packs
	if p == nil {
		return nil, false, nil
	}
	o := &Object{OID: oid}
	if p.buf != nil {
		if b, ok := p.buf.Get(oid); ok {
			o.Owner, o.Name, o.Territory, o.Length, o.Private, o.Buffered = b.Owner, b.Name, b.Territory, b.Length, b.Private, true
		}
	}
	v, err := p.chain.Packed(ctx, oid)
	switch {
	case err == nil:
		o.Chain = v
		o.Owner, o.Name, o.Territory, o.Length, o.Private = v.Owner, v.Name, v.Territory, v.Length, v.Private
	case !errors.Is(err, ledger.ErrNotFound):
		return nil, false, err
	case !o.Buffered:
		return nil, false, nil
	}
	// The layout callers read sizes and encryption from: an object is not
	// encrypted at the gateway (a client may have encrypted its bytes).
	l := &types.Layout{Version: types.FormatV2, Size: o.Length, Owner: o.Owner}
	return &File{FID: oid, Layout: l, Object: o}, true, nil
}

// readObject writes bytes [off, off+n) of a packed object: from the buffer,
// else from each of its packs in turn until one holds bytes that hash to
// its OID.
func (rd *Reader) readObject(ctx context.Context, w io.Writer, f *File, off, n int64) error {
	o, p := f.Object, rd.packs
	if o.peer != "" {
		err := rd.readPeer(ctx, w, o, off, n)
		if err == nil {
			return nil
		}
		// Declared meanwhile (and dropped from the peer's buffer)?
		v, cerr := p.chain.Packed(ctx, o.OID)
		if cerr != nil {
			return errors.Join(err, cerr)
		}
		o.Chain = v
	}
	if o.Buffered && p.buf != nil {
		_, sr, err := p.buf.Read(o.OID)
		if err == nil {
			_, err = io.Copy(w, io.NewSectionReader(sr, off, n))
			return err
		}
		if !errors.Is(err, pack.ErrNotFound) {
			rd.log.Error("buffered object does not read", "oid", o.OID, "err", err)
		}
		if o.Chain == nil { // declared meanwhile: ask the chain
			v, err := p.chain.Packed(ctx, o.OID)
			if err != nil {
				return err
			}
			o.Chain = v
		}
	}
	if o.Chain == nil {
		return ErrNoFile
	}
	var errs []error
	for _, loc := range o.Chain.Locations {
		err := rd.readAt(ctx, w, o, loc, off, n)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("pack %s: %w", loc.Pack, err))
		if errors.Is(err, errWrote) {
			break // w has bytes: no other source may add to them
		}
	}
	return errors.Join(errs...)
}

var errWrote = errors.New("failed after writing")

func (rd *Reader) readAt(ctx context.Context, w io.Writer, o *Object, loc ledger.PackLocation, off, n int64) error {
	p := rd.packs
	pf, ok := p.resolved.Get(loc.Pack)
	if !ok {
		var err error
		if pf, err = rd.Resolve(ctx, loc.Pack); err != nil {
			return err
		}
		if pf.Chain != nil && pf.Chain.State == ledger.FileStored {
			p.resolved.Put(loc.Pack, pf)
		}
	}
	if pf.Object != nil || loc.Offset+o.Length > pf.Layout.Size {
		return fmt.Errorf("%s is no pack holding [%d, +%d)", loc.Pack, loc.Offset, o.Length)
	}
	good, known := p.checked.Get([2]types.FID{o.OID, loc.Pack})
	if known && !good {
		return fmt.Errorf("%w (seen before)", pack.ErrCorrupt)
	}
	if known {
		cw := &countingWriter{w: w}
		if err := rd.Read(ctx, cw, pf, int64(loc.Offset)+off, n, nil); err != nil {
			if cw.n > 0 {
				return errors.Join(errWrote, err)
			}
			return err
		}
		return nil
	}
	// First read of it from this pack: the whole object, hashed before a
	// byte of it is served.
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(rd.Read(ctx, pw, pf, int64(loc.Offset), int64(o.Length), nil))
	}()
	err := p.verified(w, pr, o, off, n)
	pr.CloseWithError(errors.New("read done"))
	<-done
	if errors.Is(err, pack.ErrCorrupt) {
		rd.log.Error("a pack's bytes do not match the object declared in it", "oid", o.OID, "pack", loc.Pack, "gateway", loc.Gateway)
		p.checked.Put([2]types.FID{o.OID, loc.Pack}, false) // not read again for an hour
		return err
	}
	if err == nil {
		p.checked.Put([2]types.FID{o.OID, loc.Pack}, true)
	}
	return err
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
