package read

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/gateway/cache"
	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/gateway/scheduler"
	"github.com/deoss/deoss/internal/gateway/work"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/limit"
	"github.com/deoss/deoss/internal/tlsutil"
	"github.com/deoss/deoss/internal/ttlcache"
	"github.com/deoss/deoss/internal/types"
)

// Chain is what reading asks of the chain.
type Chain interface {
	File(ctx context.Context, fid types.FID) (*ledger.File, error)
	Nodes(ctx context.Context) ([]ledger.Node, error)
	Gateways(ctx context.Context) ([]ledger.Gateway, error)
	UserFiles(ctx context.Context, owner types.Address) ([]ledger.UserFile, error)
}

// ErrNoFile is returned for a FID that neither the chain nor any gateway
// holds.
var ErrNoFile = errors.New("no such file")

// Reader finds files and reads them from the best sources: the fragment
// cache, this gateway's work area, peer gateways that hold the file, and the
// storage nodes. Build it with New; it starts nothing.
type Reader struct {
	chain Chain
	self  types.Address
	work  *work.Area
	queue *pipeline.Queue
	cache *cache.Cache
	sched *scheduler.Scheduler // penalises nodes that serve bad bytes; may be nil
	hc    *http.Client
	log   *slog.Logger
	m     *Metrics
	slots limit.Slots // downloads decoding at once
	// inFlight bounds the downloads under way, decoding or writing to
	// their clients: each holds its segments' memory until it ends (a
	// stalled client's ends at the API's write deadline).
	inFlight limit.Slots

	mu sync.Mutex
	// fetchAvg is the moving average of a node fetch, for whole fragments
	// ([large]) and for ranges of them ([small]): a v2 range read moves a
	// fraction of what a whole-file read does, and hedging a whole fragment
	// on the delay of a 1 MiB slice would start parity reads for nothing.
	fetchAvg [2]time.Duration
	peers    *ttlcache.Cache[types.FID, []peerHolder] // probe answers, 10 s
	nodes    nodeList
	gwList   gatewayList
	// laggards are nodes that lost a hedge in some download lately (15 s):
	// the next downloads skip them at once instead of each waiting out the
	// hedge delay for a frozen node.
	laggards *ttlcache.Cache[types.Address, bool]
	// missing, when set, hears of the fragments nodes served wrong.
	missing *MissingReporter
	// packs, when set, serves packed objects (UsePacks).
	packs *packs
}

type peerHolder struct {
	endpoint string
	rtt      time.Duration
	layout   *types.Layout // set when the peer holds the file pending
	private  bool
}

type nodeList struct {
	at       time.Time
	endpoint map[types.Address]string
}

// Config tunes reading.
type Config struct {
	// Downloads bounds the downloads decoding at once (each holds a few
	// segments of memory); more wait.
	Downloads int
	// TLS verifies nodes and peers that speak https (nil: the system's
	// roots).
	TLS *tls.Config
}

// New assembles a reader; its metrics go to reg (when not nil).
func New(cfg Config, ch Chain, self types.Address, w *work.Area, q *pipeline.Queue, c *cache.Cache, s *scheduler.Scheduler, reg prometheus.Registerer, log *slog.Logger) *Reader {
	if cfg.Downloads <= 0 {
		cfg.Downloads = 4
	}
	return &Reader{chain: ch, self: self, work: w, queue: q, cache: c, sched: s, m: newMetrics(reg), log: log,
		hc:    &http.Client{Transport: tlsutil.Transport(cfg.TLS, 16)},
		slots: limit.NewSlots(cfg.Downloads), inFlight: limit.NewSlots(4 * cfg.Downloads), peers: ttlcache.New[types.FID, []peerHolder](10*time.Second, 10_000), fetchAvg: [2]time.Duration{50 * time.Millisecond, 200 * time.Millisecond},
		laggards: ttlcache.New[types.Address, bool](15*time.Second, 10_000)}
}

// File is a file resolved for reading.
type File struct {
	FID    types.FID
	Layout *types.Layout
	// Chain is the file's record, nil while the file is only pending at a
	// gateway (then the layout came from that gateway, checked against the
	// FID, and every segment is checked against its hash as it is read).
	Chain *ledger.File
	// Pending is this gateway's record of the file, when it has one.
	Pending *pipeline.Record
	// Object, when set, says FID is a packed object's OID: Layout is then
	// only its size (version 2, not encrypted at the gateway, no segments).
	Object *Object
	peers  []peerHolder
}

// Access is who owns f and whether it is private (served to its owners
// only): from the chain (private when every owner made it so: the bytes are
// one), else this gateway's record, else the peer that holds it pending.
func (f *File) Access() (owners []types.Address, private bool) {
	switch {
	case f.Object != nil:
		return []types.Address{f.Object.Owner}, f.Object.Private
	case f.Chain != nil:
		private = len(f.Chain.Owners) > 0
		for _, o := range f.Chain.Owners {
			owners = append(owners, o.Address)
			private = private && o.Private
		}
		return owners, private
	case f.Pending != nil:
		return []types.Address{f.Pending.Owner}, f.Pending.Private
	}
	for _, p := range f.peers {
		if p.layout != nil {
			return []types.Address{f.Layout.Owner}, p.private
		}
	}
	return nil, false
}

// Resolve finds a file: on chain, pending in this gateway, or pending in a
// peer gateway.
func (rd *Reader) Resolve(ctx context.Context, fid types.FID) (*File, error) {
	f := &File{FID: fid}
	cf, err := rd.chain.File(ctx, fid)
	switch {
	case err == nil:
		f.Chain, f.Layout = cf, &cf.Layout
	case !errors.Is(err, ledger.ErrNotFound):
		return nil, err
	default:
		if of, ok, err := rd.resolveObject(ctx, fid); err != nil || ok {
			return of, err
		}
	}
	if recs, err := rd.queue.Records(fid); err == nil && len(recs) > 0 {
		f.Pending = &recs[0]
		if f.Layout == nil && recs[0].State != pipeline.Cleaned {
			if l, err := rd.work.Layout(fid); err == nil {
				f.Layout = l
			}
		}
	}
	// A file not yet stored changes holders quickly (it is being
	// distributed, or may be deleted): ask afresh each time.
	var holder types.Address // the gateway that declared it holds it until stored
	if f.Chain != nil {
		holder = f.Chain.Gateway
	}
	f.peers = rd.probePeers(ctx, fid, f.Chain != nil && f.Chain.State == ledger.FileStored, holder)
	if f.Layout == nil {
		for _, p := range f.peers {
			if p.layout != nil {
				f.Layout = p.layout
				break
			}
		}
	}
	if f.Layout == nil {
		if rd.packs != nil && f.Pending == nil && f.Chain == nil {
			if of, ok := rd.peerObject(ctx, fid); ok {
				return of, nil
			}
		}
		return nil, ErrNoFile
	}
	if err := f.Layout.Validate(); err != nil || codec.FileID(f.Layout) != fid {
		return nil, fmt.Errorf("layout of %s does not match its FID", fid)
	}
	return f, nil
}

// Files lists an owner's files on chain, and those pending or buffered for
// a pack at this gateway.
func (rd *Reader) Files(ctx context.Context, owner types.Address) ([]ledger.UserFile, error) {
	out, err := rd.chain.UserFiles(ctx, owner)
	if err != nil {
		return nil, err
	}
	seen := map[types.FID]bool{}
	for _, f := range out {
		seen[f.FID] = true
	}
	recs, err := rd.queue.Pending()
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.Owner == owner && !seen[r.FID] {
			out = append(out, ledger.UserFile{FID: r.FID, Name: r.Name, Territory: r.Territory, Size: r.Size, State: "pending", Private: r.Private})
		}
	}
	if rd.packs != nil && rd.packs.buf != nil {
		for _, o := range rd.packs.buf.Owned(owner) {
			if !seen[o.OID] {
				out = append(out, ledger.UserFile{FID: o.OID, Name: o.Name, Territory: o.Territory, Size: o.Length, State: pipeline.Buffered, Packed: true, Private: o.Private})
			}
		}
	}
	return out, nil
}

// PeerFile is the answer of GET /peer/file/{fid}.
type PeerFile struct {
	// Layout is set while the file is pending at the peer (not yet on chain
	// or not yet stored).
	Layout *types.Layout `json:"layout,omitempty"`
	// Private says the pending file is to be served to its owner only.
	Private bool `json:"private,omitempty"`
}

// maxPeerProbes bounds the peers one read asks: a download must not be an
// amplifier that makes this gateway call every registered endpoint.
const maxPeerProbes = 16

// probePeers asks other gateways on chain, at once, whether they hold fid:
// the declaring gateway (holder, when known) and others up to
// maxPeerProbes, chosen by a hash of the FID and their address (a stable
// spread, not always the same few); those that hold it are returned nearest
// first. Answers are kept 10 s and reused when reuse is set.
func (rd *Reader) probePeers(ctx context.Context, fid types.FID, reuse bool, holder types.Address) []peerHolder {
	if p, ok := rd.peers.Get(fid); ok && reuse {
		return p
	}
	all, err := rd.gateways(ctx)
	if err != nil {
		return nil
	}
	gws := make([]ledger.Gateway, 0, len(all))
	for _, g := range all {
		if g.Address != rd.self && g.Endpoint != "" {
			gws = append(gws, g)
		}
	}
	rank := func(g ledger.Gateway) uint64 {
		if g.Address == holder {
			return 0
		}
		h := sha256.Sum256(append(fid[:], g.Address[:]...))
		return binary.BigEndian.Uint64(h[:8]) | 1
	}
	slices.SortFunc(gws, func(a, b ledger.Gateway) int { return cmp.Compare(rank(a), rank(b)) })
	gws = gws[:min(len(gws), maxPeerProbes)]
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var out []peerHolder
	for _, g := range gws {
		wg.Go(func() {
			start := time.Now()
			req, _ := http.NewRequestWithContext(ctx, "GET", g.Endpoint+"/peer/file/"+fid.String(), nil)
			resp, err := rd.hc.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			var pf PeerFile
			if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&pf) != nil {
				return
			}
			mu.Lock()
			out = append(out, peerHolder{endpoint: g.Endpoint, rtt: time.Since(start), layout: pf.Layout, private: pf.Private})
			mu.Unlock()
		})
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].rtt < out[j].rtt })
	rd.peers.Put(fid, out)
	return out
}

// NodeEndpoints maps storage nodes to their endpoints (from the chain, kept
// 5 s; the last answer while the chain does not answer).
func (rd *Reader) NodeEndpoints(ctx context.Context) map[types.Address]string {
	rd.mu.Lock()
	nl := rd.nodes
	rd.mu.Unlock()
	if nl.endpoint != nil && time.Since(nl.at) < 5*time.Second {
		return nl.endpoint
	}
	ns, err := rd.chain.Nodes(ctx)
	if err != nil {
		return nl.endpoint
	}
	m := make(map[types.Address]string, len(ns))
	for _, n := range ns {
		m[n.Address] = n.Endpoint
	}
	rd.mu.Lock()
	rd.nodes = nodeList{at: time.Now(), endpoint: m}
	rd.mu.Unlock()
	return m
}

// fetchClass is 1 for a fetch of (most of) a whole fragment, 0 for a
// smaller range.
func fetchClass(bytes int64) int {
	if bytes >= types.FragmentSize/2 {
		return large
	}
	return small
}

const (
	small = 0
	large = 1
)

// hedgeDelay is how long a fragment read of a download of n bytes may run
// before others are started: a few times the usual fetch of its size class,
// within bounds.
func (rd *Reader) hedgeDelay(n int64) time.Duration {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	return min(max(4*rd.fetchAvg[fetchClass(n)], 150*time.Millisecond), 5*time.Second)
}

func (rd *Reader) observeFetch(d time.Duration, bytes int64) {
	rd.mu.Lock()
	c := fetchClass(bytes)
	rd.fetchAvg[c] = (7*rd.fetchAvg[c] + d) / 8
	rd.mu.Unlock()
}

// ReportMissingTo makes the reader report fragments that nodes served
// wrong to the chain through m (before any Read).
func (rd *Reader) ReportMissingTo(m *MissingReporter) { rd.missing = m }

// Read writes bytes [off, off+n) of f to w. key decrypts an encrypted file.
// Every byte written was verified; on an error w has a prefix of the range.
//
// A download holds a decode slot only while it decodes: it lets go of it
// for each write to w (a client that reads slowly, or not at all, keeps no
// one else waiting) and takes one again before decoding on.
func (rd *Reader) Read(ctx context.Context, w io.Writer, f *File, off, n int64, key *codec.Key) error {
	if f.Object != nil {
		return rd.readObject(ctx, w, f, off, n) // its pack's reads take the slots
	}
	release, err := rd.inFlight.Acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	slot, err := rd.slots.Hold(ctx)
	if err != nil {
		return err
	}
	defer slot.Release()
	cw := &countingWriter{w: &slotWriter{w: w, slot: slot}}
	src := &source{rd: rd, f: f, ends: rd.NodeEndpoints(ctx)}
	opts := []codec.DecodeOption{codec.WithDecodeWorkers(2), codec.WithHedge(rd.hedgeDelay(n)), codec.WithBadFragment(src.bad),
		codec.WithVerifiedFragment(src.good)}
	if key != nil {
		opts = append(opts, codec.WithDecodeKey(key))
	}
	if f.Chain == nil {
		opts = append(opts, codec.WithSegmentCheck())
	}
	err = codec.Decode(ctx, cw, f.Layout, src, off, n, opts...)
	if errors.Is(err, codec.ErrNotEnoughFragments) && rd.readOn(ctx, src) {
		err = codec.Decode(ctx, cw, f.Layout, src, off+cw.n, n-cw.n, opts...)
	}
	if err == nil && f.Chain != nil {
		rd.cache.PutLayout(f.FID, f.Layout) // peers may now ask for it
	}
	return err
}

// readOn says whether a read that ran out of fragments may go on from
// where it stopped, and readies src for it: when a slow node was skipped
// before the dead ones were known (every node is asked now), or when the
// file was read as pending here and has been stored meanwhile (its work
// copy may be gone: the nodes are asked now).
func (rd *Reader) readOn(ctx context.Context, src *source) bool {
	again := src.skippedSlow()
	if src.f.Chain == nil {
		if cf, err := rd.chain.File(ctx, src.f.FID); err == nil && cf.Layout.Equal(src.f.Layout) {
			stored := *src.f
			stored.Chain = cf
			src.f, src.ends, again = &stored, rd.NodeEndpoints(ctx), true
		}
	}
	if again {
		rd.log.Info("read goes on asking every node", "fid", src.f.FID)
	}
	return again
}

// source is a file's fragments from every place that may hold them.
type source struct {
	rd   *Reader
	f    *File
	ends map[types.Address]string

	mu      sync.Mutex
	origin  map[[2]int]string      // who served (segment, index): "cache", "work", a peer or node endpoint
	slow    map[types.Address]bool // lost a hedge in this download
	failed  map[types.Address]bool // failed outright (refused, reset, an error answer)
	skipped bool                   // a slow node was skipped; askAll: never again
	askAll  bool
}

// skippedSlow reports whether a slow node was skipped, and from now on has
// every node asked.
func (s *source) skippedSlow() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	skipped := s.skipped
	s.askAll = true
	return skipped
}

func (s *source) served(seg uint64, idx int, from string) {
	s.mu.Lock()
	if s.origin == nil {
		s.origin = map[[2]int]string{}
	}
	s.origin[[2]int{int(seg), idx}] = from
	s.mu.Unlock()
}

// OpenFragment implements codec.FragmentSource: the cache, the work area,
// peers holding the file (nearest first), then the column's node, each read
// whole. Verified fragments from the network reach the cache through good.
func (s *source) OpenFragment(ctx context.Context, seg uint64, idx int) (io.ReadCloser, error) {
	rc, _, err := s.open(ctx, seg, idx, -1, 0)
	return rc, err
}

// OpenSlice implements codec.SliceSource for v2 files: local copies (cache,
// work area) whole, peers as verified slices of just the range, nodes as
// slices or, for a whole fragment, its outboard and its bytes.
func (s *source) OpenSlice(ctx context.Context, seg uint64, idx int, off, n int64) (io.ReadCloser, codec.Encoding, error) {
	return s.open(ctx, seg, idx, off, n)
}

// open finds fragment (seg, idx): whole (v1) when off < 0, else bytes
// [off, off+n) in the encoding it says.
func (s *source) open(ctx context.Context, seg uint64, idx int, off, n int64) (io.ReadCloser, codec.Encoding, error) {
	h := s.f.Layout.Segments[seg].Fragments[idx]
	size := int64(s.f.Layout.FragmentLen(int(seg)))
	if rc, err := s.rd.cache.Open(h); err == nil {
		s.served(seg, idx, "cache")
		s.rd.m.fragments.WithLabelValues("cache").Inc()
		return rc, codec.EncWhole, nil
	}
	if rc, err := s.rd.work.Fragment(s.f.FID, seg, idx); err == nil {
		s.served(seg, idx, "work")
		s.rd.m.fragments.WithLabelValues("work").Inc()
		return rc, codec.EncWhole, nil
	}
	sliced, want := off >= 0, size
	peerEnc := codec.EncWhole // v1: the raw fragment
	var rng string
	if sliced {
		rng = fmt.Sprintf("offset=%d&length=%d", off, n)
		want, peerEnc = codec.SliceSize(size, off, n), codec.EncSlice
	}
	var errs []error
	for _, p := range s.f.peers {
		url := fmt.Sprintf("%s/peer/fragment/%s/%d/%d?hash=%s", p.endpoint, s.f.FID, seg, idx, h)
		if sliced {
			url += "&" + rng
		}
		rc, err := s.get(ctx, url, want)
		if err == nil {
			s.served(seg, idx, p.endpoint)
			s.rd.m.fragments.WithLabelValues("peer").Inc()
			return rc, peerEnc, nil
		}
		errs = append(errs, err)
	}
	if s.f.Chain == nil {
		return nil, peerEnc, errors.Join(append(errs, errors.New("file not on chain yet, and no peer has this fragment"))...)
	}
	node := s.f.Chain.Columns[idx].Node
	ep := s.ends[node]
	if ep == "" {
		return nil, peerEnc, errors.Join(append(errs, fmt.Errorf("node %s of column %d has no endpoint", node, idx))...)
	}
	if s.isSlow(node) {
		return nil, peerEnc, errors.Join(append(errs, errSlowNode)...)
	}
	url, enc := ep+"/fragment/"+h.String(), peerEnc
	switch {
	case sliced && off == 0 && n == size:
		// A whole fragment: raw, hashed whole against its BLAKE3 hash. The
		// verified stream (/verified, codec.EncOutboard) would notice a bad
		// fragment within 256 KiB instead of at its end, but measured it
		// cost a fifth of a whole-file download's speed on a loaded machine
		// (docs/performance.md), and a bad fragment is rare and costs one
		// fragment's time.
		want, enc = size, codec.EncWhole
	case sliced:
		url += "/slice?" + rng
	}
	start := time.Now()
	rc, err := s.get(ctx, url, want)
	if err != nil {
		if ctx.Err() != nil {
			s.markSlow(node) // hedged away before it even answered
		} else {
			s.markFailed(node)
		}
		return nil, enc, errors.Join(append(errs, err)...)
	}
	s.served(seg, idx, ep)
	s.rd.m.fragments.WithLabelValues("node").Inc()
	return &timedBody{ReadCloser: rc, ctx: ctx, start: start, want: want, done: s.rd.observeFetch, abandoned: func() { s.markSlow(node) }}, enc, nil
}

// errSlowNode: a node that lost a hedge earlier in this download is not
// asked again by it; the decoder takes another fragment at once instead of
// waiting out the hedge delay segment after segment.
var errSlowNode = errors.New("node too slow earlier in this download")

// isSlow says whether to skip a node that lost a hedge. Slow is better than
// nothing: once the slow and the failed nodes together are more than the 8
// a segment can do without (holders are dead, say, and a live one was slow
// on a loaded machine), slow nodes are asked again.
func (s *source) isSlow(a types.Address) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rd != nil && s.rd.laggards != nil {
		// Only noted for this download, not put back: a put would renew
		// the 15 s, and a node once slow would be skipped for as long as
		// downloads kept coming, never asked again to show it recovered.
		if _, ok := s.rd.laggards.Get(a); ok {
			if s.slow == nil {
				s.slow = map[types.Address]bool{}
			}
			s.slow[a] = true
		}
	}
	skip := !s.askAll && s.slow[a] && len(s.slow)+len(s.failed) <= types.ParityShards
	s.skipped = s.skipped || skip
	return skip
}

// markSlow remembers a node that a hedge left behind, for the rest of the
// download and, for 15 s, for other downloads.
func (s *source) markSlow(a types.Address) {
	if s.rd != nil && s.rd.laggards != nil {
		s.rd.laggards.Put(a, true)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.slow == nil {
		s.slow = map[types.Address]bool{}
	}
	s.slow[a] = true
}

// markFailed remembers a node that failed outright in this download.
func (s *source) markFailed(a types.Address) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = map[types.Address]bool{}
	}
	s.failed[a] = true
}

// get fetches a fragment or a slice over HTTP; want bounds what is read
// (one byte more tells the decoder the answer is too long).
func (s *source) get(ctx context.Context, url string, want int64) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.rd.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, want+1), resp.Body}, nil
}

// good is told of every whole fragment the decoder verified: one that came
// over the network goes into the cache (the decoder checked it, so the
// cache holds only verified bytes without hashing them again).
func (s *source) good(seg uint64, idx int, b []byte) {
	s.mu.Lock()
	from := s.origin[[2]int{int(seg), idx}]
	s.mu.Unlock()
	if from == "cache" || from == "work" {
		return
	}
	s.rd.cache.Put(s.f.Layout.Segments[seg].Fragments[idx], b)
}

// bad is told of every fragment that failed: a bad cache entry is dropped,
// a node that served wrong bytes is charged a failure.
func (s *source) bad(fe *codec.FragmentError) {
	s.mu.Lock()
	from := s.origin[[2]int{int(fe.Segment), fe.Index}]
	s.mu.Unlock()
	corrupt := errors.Is(fe.Err, codec.ErrFragmentCorrupt) || errors.Is(fe.Err, codec.ErrFragmentShort) || errors.Is(fe.Err, codec.ErrFragmentLong) ||
		errors.Is(fe.Err, codec.ErrSliceCorrupt) || errors.Is(fe.Err, codec.ErrSliceShort) || errors.Is(fe.Err, codec.ErrSliceLong)
	if !corrupt {
		return // unreachable or missing: the push side's deadlines deal with that
	}
	s.rd.m.badFragments.Inc()
	// Whatever served it, the bytes may have reached the cache on the way.
	s.rd.cache.Remove(s.f.Layout.Segments[fe.Segment].Fragments[fe.Index])
	switch from {
	case "cache", "work", "":
	default:
		s.rd.log.Warn("wrong bytes served; routed around", "from", from, "fid", s.f.FID, "segment", fe.Segment, "fragment", fe.Index, "err", fe.Err)
		if s.f.Chain != nil && s.ends[s.f.Chain.Columns[fe.Index].Node] == from {
			if s.rd.sched != nil {
				s.rd.sched.Failure(s.f.Chain.Columns[fe.Index].Node)
			}
			if s.rd.missing != nil && s.f.Layout.Version != types.FormatV1 {
				s.rd.missing.Report(s.f.FID, uint8(fe.Index), fe.Segment)
			}
		}
	}
}

// timedBody reports how long a fragment took once it is read whole, or that
// it was abandoned (cancelled part way: a hedge found faster fragments).
type timedBody struct {
	io.ReadCloser
	ctx       context.Context
	start     time.Time
	want      int64 // the answer's full length
	n         int64
	done      func(time.Duration, int64)
	abandoned func()
}

func (t *timedBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	t.n += int64(n)
	return n, err
}

func (t *timedBody) Close() error {
	switch {
	case t.n >= t.want:
		t.done(time.Since(t.start), t.n)
	case t.ctx.Err() != nil:
		t.abandoned()
	}
	return t.ReadCloser.Close()
}

// slotWriter gives back its decode slot while it writes.
type slotWriter struct {
	w    io.Writer
	slot *limit.Held
}

func (s *slotWriter) Write(p []byte) (n int, err error) {
	err = s.slot.Yield(func() error {
		var werr error
		n, werr = s.w.Write(p)
		return werr
	})
	return n, err
}

// gateways is the chain's gateway list, kept 10 s: a read does not run the
// chain's list query each time.
func (rd *Reader) gateways(ctx context.Context) ([]ledger.Gateway, error) {
	rd.mu.Lock()
	gl := rd.gwList
	rd.mu.Unlock()
	if gl.list != nil && time.Since(gl.at) < 10*time.Second {
		return gl.list, nil
	}
	gws, err := rd.chain.Gateways(ctx)
	if err != nil {
		if gl.list != nil {
			return gl.list, nil // the last answer while the chain does not answer
		}
		return nil, err
	}
	rd.mu.Lock()
	rd.gwList = gatewayList{at: time.Now(), list: gws}
	rd.mu.Unlock()
	return gws, nil
}

type gatewayList struct {
	at   time.Time
	list []ledger.Gateway
}

// countingWriter counts what reached the client, so that a read can go on
// from where it stopped.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
