package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/deoss/deoss/internal/types"
)

// Repair. A column is healthy when its node is active and it was not
// reported lost; a stored file's health is its number of healthy columns.
// Each unhealthy column of a stored file is a restoral order, queued by the
// file's health (fewest healthy first) and claimable after a delay that
// shrinks as health falls. An eligible node claims an order, rebuilds the
// column's fragments from any 4 verified others, and completes it: the
// column moves to it, and a probation challenge follows.
//
// A node's change of state touches every column it holds, which may be
// millions: it starts a sweep (sw/) that EndBlock works through a bounded
// number of columns per block, so no block does unbounded work. The
// histogram follows the columns' recorded health (Column.Down), which the
// sweep brings in line with the nodes' states.
//
// Keys (beside those of state.go and proof.go):
//
//	hh/<health 1B>                         HealthBucket: stored files by health
//	ro/<fid>/<column>                      Restoral: an order
//	rh/<health 1B>/<eligible BE8>/<fid>/<column>   the queue of unclaimed orders (value: bytes BE8)
//	rc/<expires BE8>/<fid>/<column>        claims in flight, by lapse time
//	sw/<node>                              Sweep: a node's columns being re-rated
//	rr/<window BE8>                        bytes restored in a RepairWindow of block time (BE8)
const (
	pHealth  = "hh/"
	pOrder   = "ro/"
	pQueue   = "rh/"
	pClaim   = "rc/"
	pSweep   = "sw/"
	pRepaird = "rr/"
)

// SweepPerBlock bounds the columns EndBlock re-rates per block.
const SweepPerBlock = 256

// RepairWindow is the width, in seconds of block time, of the buckets of
// restored bytes that "repaired in the last hour and day" sums.
const RepairWindow = 300

// Why a column is not healthy (Column.Down, Restoral.Reason).
const (
	DownSuspect = "suspect"
	DownFaulty  = "faulty"
	DownExiting = "exiting"
	DownLost    = "lost" // reported lost by its node: lost until it moves
)

// FileLost is the state of a stored file with fewer than 4 healthy columns:
// it stops being charged for good. Its orders stay: a suspect node may
// still hold what rebuilds it.
const FileLost = "lost"

// HealthBucket counts the stored (and lost) files of one health.
type HealthBucket struct {
	Files uint64 `json:"files"`
	Bytes uint64 `json:"bytes"`
}

// Restoral is a restoral order: column Column of FID is to move off From.
type Restoral struct {
	FID     types.FID     `json:"fid"`
	Column  uint8         `json:"column"`
	From    types.Address `json:"from"`
	Reason  string        `json:"reason"`
	Bytes   uint64        `json:"bytes"`
	Created int64         `json:"created"` // block time
	Height  int64         `json:"created_height"`
	// Eligible is the block time from which it may be claimed; it only
	// comes closer as the file's health falls.
	Eligible int64 `json:"eligible_at"`
	Health   uint8 `json:"health"`
	// A claim: the claimant, and the block time it lapses at.
	Claimant types.Address `json:"claimant,omitempty"`
	Claimed  int64         `json:"claimed_at,omitempty"`
	Expires  int64         `json:"expires_at,omitempty"`
}

// IsClaimed reports whether the order has a claim in flight.
func (r *Restoral) IsClaimed() bool { return r.Expires != 0 }

// Sweep is a node's columns being re-rated: those after Cursor get Down.
type Sweep struct {
	Down   string `json:"down"`
	Cursor []byte `json:"cursor,omitempty"`
}

// Repair messages.
type (
	// ClaimRestoral claims an order for the sender's node.
	ClaimRestoral struct {
		FID    types.FID `cbor:"1,keyasint"`
		Column uint8     `cbor:"2,keyasint"`
	}
	// CompleteRestoral says the sender holds the column's fragments, whose
	// hashes digest to Digest (ColumnDigest): the column moves to it.
	CompleteRestoral struct {
		FID    types.FID  `cbor:"1,keyasint"`
		Column uint8      `cbor:"2,keyasint"`
		Digest types.Hash `cbor:"3,keyasint"`
	}
)

// ColumnDigest binds a column's fragment hashes, segment by segment: what
// a completed restoral claims to hold.
func ColumnDigest(l *types.Layout, col uint8) types.Hash {
	h := sha256.New()
	h.Write([]byte("deoss/column/v1"))
	h.Write([]byte{col})
	for i := range l.Segments {
		h.Write(l.Segments[i].Fragments[col][:])
	}
	var out types.Hash
	h.Sum(out[:0])
	return out
}

// nodeDown is why a node's columns are unhealthy ("" when they are not).
func nodeDown(state string) string {
	switch state {
	case NodeActive:
		return ""
	case NodeSuspect:
		return DownSuspect
	case NodeFaulty:
		return DownFaulty
	default:
		return DownExiting
	}
}

// repairDelay is how long an order of a file of health h waits before it
// may be claimed.
func (p *Params) repairDelay(h int) int64 {
	switch {
	case h >= types.TotalShards-1:
		return p.RepairDelay11
	case h >= types.TotalShards-3:
		return p.RepairDelay9
	case h >= types.TotalShards-5:
		return p.RepairDelay7
	}
	return 0
}

func orderKey(fid types.FID, col uint8) string { return pOrder + string(fid[:]) + string([]byte{col}) }

func queueKey(r *Restoral) string {
	b := append([]byte(pQueue), r.Health)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Eligible))
	return string(append(append(b, r.FID[:]...), r.Column))
}

func claimKey(r *Restoral) string {
	return timeKey(pClaim, r.Expires, string(r.FID[:])+string([]byte{r.Column}))
}

func healthKey(h uint8) string { return pHealth + string([]byte{h}) }

// health counts a file's healthy columns.
func health(f *File) uint8 {
	var n uint8
	for _, c := range f.Columns {
		if c.Down == "" {
			n++
		}
	}
	return n
}

// counted reports whether a file is in the histogram.
func counted(f *File) bool {
	return (f.State == FileStored || f.State == FileLost) && len(f.Layout.Segments) > 0
}

func (l *Ledger) bucket(h uint8, files int64, bytes int64) {
	s := state{l.o}
	b, _ := load[HealthBucket](s, healthKey(h))
	if b == nil {
		b = &HealthBucket{}
	}
	b.Files = uint64(int64(b.Files) + files)
	b.Bytes = uint64(int64(b.Bytes) + bytes)
	if b.Files == 0 {
		s.o.del(healthKey(h))
		return
	}
	s.put(healthKey(h), b)
}

// rated is called when a file becomes stored: its columns are rated by
// their nodes' states, it enters the histogram, and its unhealthy columns
// become orders.
func (l *Ledger) rated(f *File) {
	for j := range f.Columns {
		c := &f.Columns[j]
		if c.Down == DownLost {
			continue
		}
		c.Down = DownExiting // a node that is gone
		if n, err := l.node(c.Node); err == nil {
			c.Down = nodeDown(n.State)
		}
	}
	f.Health = health(f)
	l.bucket(f.Health, 1, int64(f.Layout.Size))
	for j := range f.Columns {
		if f.Columns[j].Down != "" {
			l.order(f, uint8(j))
		}
	}
	l.checkLost(f)
}

// rerate is a sweep's setDown: a column reported lost stays lost whatever
// its node's state, until it moves.
func (l *Ledger) rerate(f *File, col uint8, down string) {
	if f.Columns[col].Down != DownLost {
		l.setDown(f, col, down)
	}
}

// setDown records column col's health; the file's histogram entry and
// orders follow. The caller saves f.
func (l *Ledger) setDown(f *File, col uint8, down string) {
	c := &f.Columns[col]
	if c.Down == down {
		return
	}
	c.Down = down
	if !counted(f) {
		return
	}
	old := f.Health
	f.Health = health(f)
	l.bucket(old, -1, -int64(f.Layout.Size))
	l.bucket(f.Health, 1, int64(f.Layout.Size))
	if down != "" {
		l.order(f, col)
	} else {
		l.cancelOrder(f.FID, col)
	}
	l.requeue(f)
	l.checkLost(f)
}

// checkLost turns a stored file below 4 healthy columns lost (its owners'
// space is released: it is no longer charged), and a lost one back to
// stored when it has 4 again (uncharged still).
func (l *Ledger) checkLost(f *File) {
	switch {
	case f.State == FileStored && f.Health < types.DataShards:
		f.State = FileLost
		if !f.Uncharged {
			f.Uncharged = true
			charge := Charge(&f.Layout)
			for _, o := range l.owners(f.FID, 0) {
				if t, err := l.territory(o.Address, o.Territory); err == nil {
					t.Used -= min(charge, t.Used)
					state{l.o}.put(territoryKey(o.Address, o.Territory), t)
				}
			}
		}
		l.emitFile(ActionLost, f, AttrHealth, strconv.Itoa(int(f.Health)))
	case f.State == FileLost && f.Health >= types.DataShards:
		f.State = FileStored
		l.emitFile(ActionFound, f, AttrHealth, strconv.Itoa(int(f.Health)))
	}
}

// order opens a restoral order for an unhealthy column; an open one takes
// the column's latest reason.
func (l *Ledger) order(f *File, col uint8) {
	s := state{l.o}
	if r, ok := load[Restoral](s, orderKey(f.FID, col)); ok {
		if r.Reason != f.Columns[col].Down {
			r.Reason = f.Columns[col].Down
			s.put(orderKey(f.FID, col), r)
		}
		return
	}
	p := s.params()
	r := &Restoral{FID: f.FID, Column: col, From: f.Columns[col].Node, Reason: f.Columns[col].Down,
		Bytes: ColumnBytes(&f.Layout), Created: l.now, Height: l.height, Health: f.Health,
		Eligible: l.now + p.repairDelay(int(f.Health))}
	s.put(orderKey(f.FID, col), r)
	s.o.set(queueKey(r), binary.BigEndian.AppendUint64(nil, r.Bytes))
	l.emitRestoral(ActionOrdered, r)
}

// requeue moves a file's unclaimed orders to its health's place in the
// queue, and brings their eligibility closer if the health fell.
func (l *Ledger) requeue(f *File) {
	s := state{l.o}
	p := s.params()
	for col := range uint8(types.TotalShards) {
		r, ok := load[Restoral](s, orderKey(f.FID, col))
		if !ok {
			continue
		}
		if r.IsClaimed() {
			r.Health = f.Health
			s.put(orderKey(f.FID, col), r)
			continue
		}
		s.o.del(queueKey(r))
		r.Health = f.Health
		r.Eligible = min(r.Eligible, r.Created+p.repairDelay(int(f.Health)))
		s.put(orderKey(f.FID, col), r)
		s.o.set(queueKey(r), binary.BigEndian.AppendUint64(nil, r.Bytes))
	}
}

// cancelOrder drops an order whose column is healthy again or gone,
// releasing a claim's reservation.
func (l *Ledger) cancelOrder(fid types.FID, col uint8) {
	s := state{l.o}
	r, ok := load[Restoral](s, orderKey(fid, col))
	if !ok {
		return
	}
	if r.IsClaimed() {
		l.dropClaim(r)
	} else {
		s.o.del(queueKey(r))
	}
	s.o.del(orderKey(fid, col))
	l.emitRestoral(ActionCancelled, r)
}

// dropClaim ends a claim: the claimant's reservation and count go.
func (l *Ledger) dropClaim(r *Restoral) {
	s := state{l.o}
	s.o.del(claimKey(r))
	if n, err := l.node(r.Claimant); err == nil {
		n.Assigned -= min(r.Bytes, n.Assigned)
		if n.Claims > 0 {
			n.Claims--
		}
		s.put(addrKey(pNode, n.Address), n)
		l.maybeRemoveNode(n)
	}
	r.Claimant, r.Claimed, r.Expires = types.Address{}, 0, 0
}

// dropOrders removes a removed file's orders.
func (l *Ledger) dropOrders(f *File) {
	for col := range uint8(types.TotalShards) {
		l.cancelOrder(f.FID, col)
	}
}

// nodeChanged starts re-rating a node's columns when its state changes
// between healthy and not (or between reasons).
func (l *Ledger) nodeChanged(n *Node, old string) {
	if nodeDown(old) == nodeDown(n.State) {
		return
	}
	state{l.o}.put(addrKey(pSweep, n.Address), &Sweep{Down: nodeDown(n.State)})
}

// sweepEndBlock re-rates at most SweepPerBlock columns of the nodes whose
// state changed, in address order.
func (l *Ledger) sweepEndBlock() {
	s := state{l.o}
	budget := SweepPerBlock
	var sweeps []string
	s.o.iterate(pSweep, func(k string, _ []byte) bool { sweeps = append(sweeps, k); return true })
	for _, k := range sweeps {
		if budget == 0 {
			return
		}
		sw, _ := load[Sweep](s, k)
		var node types.Address
		copy(node[:], k[len(pSweep):])
		prefix := pNodeCol + string(node[:])
		var cols []string
		s.o.iterate(prefix, func(ck string, _ []byte) bool {
			if string(sw.Cursor) != "" && ck <= string(sw.Cursor) {
				return true
			}
			cols = append(cols, ck)
			return len(cols) < budget
		})
		for _, ck := range cols {
			var fid types.FID
			copy(fid[:], ck[len(prefix):])
			col := ck[len(prefix)+types.HashSize]
			if f, err := l.file(fid); err == nil && counted(f) && f.Columns[col].Node == node {
				l.rerate(f, col, sw.Down)
				s.put(fidKey(fid), f)
			}
		}
		budget -= len(cols)
		if budget > 0 { // the node's columns are done
			s.o.del(k)
			continue
		}
		sw.Cursor = []byte(cols[len(cols)-1])
		s.put(k, sw)
	}
}

// repairEndBlock lapses the claims past their time and prunes the restored
// bytes' windows older than a day.
func (l *Ledger) repairEndBlock() {
	s := state{l.o}
	p := s.params()
	for _, k := range l.due(pClaim) {
		var fid types.FID
		copy(fid[:], k[len(pClaim)+8:])
		col := k[len(pClaim)+8+types.HashSize]
		r, ok := load[Restoral](s, orderKey(fid, col))
		if !ok {
			s.o.del(k)
			continue
		}
		claimant := r.Claimant
		l.dropClaim(r)
		if n, err := l.node(claimant); err == nil {
			n.Lapses++
			n.LapsesTotal++
			if p.LapseBan > 0 && n.Lapses >= p.LapseBan {
				n.BannedUntil, n.Lapses = l.now+p.BanSeconds, 0
			}
			s.put(addrKey(pNode, claimant), n)
		}
		r.Eligible = min(r.Eligible, l.now)
		s.put(orderKey(fid, col), r)
		s.o.set(queueKey(r), binary.BigEndian.AppendUint64(nil, r.Bytes))
		l.emitRestoral(ActionLapsed, r, AttrNode, claimant.String())
	}
	var old []string
	s.o.iterate(pRepaird, func(k string, _ []byte) bool {
		if int64(beUint64(k[len(pRepaird):])) > l.now-86400 {
			return false
		}
		old = append(old, k)
		return true
	})
	for _, k := range old {
		s.o.del(k)
	}
}

func (l *Ledger) claimRestoral(from types.Address, m *ClaimRestoral) error {
	s := state{l.o}
	r, ok := load[Restoral](s, orderKey(m.FID, m.Column))
	if !ok {
		return errf(ErrNotFound, "no restoral order for column %d of %s", m.Column, m.FID)
	}
	if r.IsClaimed() {
		return errf(ErrConflict, "the order is claimed by %s until %d", r.Claimant, r.Expires)
	}
	if l.now < r.Eligible {
		return errf(ErrConflict, "the order may be claimed from block time %d (now %d)", r.Eligible, l.now)
	}
	n, err := l.node(from)
	if err != nil {
		return errf(ErrUnauthorized, "sender is not a registered node")
	}
	if n.State != NodeActive {
		return errf(ErrUnauthorized, "node %s is %s", from, n.State)
	}
	if l.now < n.BannedUntil {
		return errf(ErrTooMany, "node %s lets claims lapse: barred from claiming until %d", from, n.BannedUntil)
	}
	f, err := l.file(m.FID)
	if err != nil {
		return err
	}
	for j, c := range f.Columns {
		if c.Node == from {
			return errf(ErrInvalid, "node %s holds a column of %s already", from, m.FID)
		}
		if o, ok := load[Restoral](s, orderKey(m.FID, uint8(j))); ok && o.Claimant == from {
			return errf(ErrInvalid, "node %s claims column %d of %s already", from, j, m.FID)
		}
	}
	p := s.params()
	switch {
	case n.Claims >= p.MaxClaims:
		return errf(ErrTooMany, "node %s has %d claims open (at most %d)", from, n.Claims, p.MaxClaims)
	case n.Free() < r.Bytes:
		return errf(ErrInsufficientSpace, "node %s has %d bytes free, the column needs %d", from, n.Free(), r.Bytes)
	}
	if !s.chain().Dev {
		for j, c := range f.Columns {
			if j == int(m.Column) {
				continue
			}
			if other, err := l.node(c.Node); err == nil && sameNetwork(n.Endpoint, other.Endpoint) {
				return errf(ErrInvalid, "node %s is on the network of %s, which holds column %d", from, c.Node, j)
			}
		}
	}
	n.Assigned += r.Bytes
	n.Claims++
	s.put(addrKey(pNode, from), n)
	s.o.del(queueKey(r))
	r.Claimant, r.Claimed = from, l.now
	r.Expires = l.now + p.ClaimSeconds + int64(r.Bytes/max(p.ClaimRate, 1))
	s.put(orderKey(m.FID, m.Column), r)
	s.setFlag(claimKey(r))
	l.emitRestoral(ActionClaimed, r, AttrNode, from.String())
	return nil
}

func (l *Ledger) completeRestoral(from types.Address, m *CompleteRestoral) error {
	s := state{l.o}
	r, ok := load[Restoral](s, orderKey(m.FID, m.Column))
	if !ok {
		return errf(ErrNotFound, "no restoral order for column %d of %s", m.Column, m.FID)
	}
	if !r.IsClaimed() || r.Claimant != from {
		return errf(ErrUnauthorized, "the order is not claimed by %s", from)
	}
	f, err := l.file(m.FID)
	if err != nil {
		return err
	}
	if want := ColumnDigest(&f.Layout, m.Column); m.Digest != want {
		return errf(ErrInvalid, "the column's fragments digest to %s, not %s", want, m.Digest)
	}
	bytes := r.Bytes
	s.o.del(claimKey(r))
	s.o.del(orderKey(m.FID, m.Column))
	old := f.Columns[m.Column].Node
	l.unassign(old, m.FID, m.Column, bytes)

	n, err := l.node(from)
	if err != nil {
		return err
	}
	if n.Claims > 0 {
		n.Claims--
	}
	n.Lapses = 0
	n.Restored++
	s.put(addrKey(pNode, from), n) // its Assigned holds the claim's reservation already
	v2 := f.Layout.Version != types.FormatV1
	s.o.set(nodeColKey(from, m.FID, m.Column), ncValue(bytes, v2))
	f.Columns[m.Column].Node, f.Columns[m.Column].Reported = from, true
	// Healthy again, unless the claimant stopped being active since its
	// claim: then the column is ordered again, off the claimant.
	l.setDown(f, m.Column, nodeDown(n.State))
	if f.Columns[m.Column].Down != "" && counted(f) {
		l.order(f, m.Column)
	}
	s.put(fidKey(m.FID), f)
	w := timeKey(pRepaird, l.now/RepairWindow*RepairWindow, "")
	s.o.set(w, binary.BigEndian.AppendUint64(nil, uint64At(s.o.get(w))+bytes))
	l.emitRestoral(ActionCompleted, r, AttrNode, from.String())
	l.emit(EventColumn, AttrAction, ActionRestored, AttrFID, m.FID.String(), AttrColumn, strconv.Itoa(int(m.Column)),
		AttrNode, from.String(), AttrFrom, old.String())
	// Probation: one chunk of the new column, drawn from the block, at once.
	if v2 && s.params().EpochSeconds > 0 {
		var extra [33]byte
		copy(extra[:], m.FID[:])
		extra[32] = m.Column
		sd := l.seed(from, extra[:]...)
		seg := binary.BigEndian.Uint64(sd[:8]) % uint64(len(f.Layout.Segments))
		size := int64(f.Layout.FragmentLen(int(seg)))
		chunk := int64(binary.BigEndian.Uint64(sd[8:16]) % uint64((size+types.ProofChunk-1)/types.ProofChunk))
		l.open(n, f, m.Column, seg, chunk, 0, true)
	}
	return nil
}

// sameNetwork reports whether two endpoints are, as far as the chain can
// tell, one operator or network: the same host name, or IP addresses in
// one /24 (IPv4) or /48 (IPv6). Two columns of a file there could fail
// together. (Dev chains skip it: every node is on 127.0.0.1.)
func sameNetwork(a, b string) bool {
	ha, hb := endpointHost(a), endpointHost(b)
	if ha == "" || hb == "" {
		return false
	}
	ia, errA := netip.ParseAddr(ha)
	ib, errB := netip.ParseAddr(hb)
	if errA != nil || errB != nil {
		return strings.EqualFold(ha, hb)
	}
	bits := 24
	if !ia.Unmap().Is4() {
		bits = 48
	}
	pa, _ := ia.Unmap().Prefix(bits)
	pb, _ := ib.Unmap().Prefix(bits)
	return pa == pb
}

func endpointHost(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return strings.Trim(u.Hostname(), "[]")
}

func (l *Ledger) emitRestoral(action string, r *Restoral, kv ...string) {
	attrs := append([]string{AttrAction, action, AttrFID, r.FID.String(), AttrColumn, strconv.Itoa(int(r.Column)),
		AttrFrom, r.From.String(), AttrHow, r.Reason, AttrHealth, strconv.Itoa(int(r.Health))}, kv...)
	l.emit(EventRestoral, attrs...)
}
