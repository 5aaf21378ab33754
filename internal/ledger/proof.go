package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"strconv"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/types"
)

// Proof of storage. Each epoch every node that holds reported v2 columns is
// challenged once, at an offset of its own within the epoch (so challenges
// spread over it). The challenge names one 1 KiB chunk of one fragment,
// drawn from the block hash and the node's address and weighted by bytes:
// a node that drops a tenth of its bytes fails a tenth of its challenges,
// whichever column the tenth is. The node answers with the chunk's Bao
// slice before the window closes; the ledger checks it against the
// fragment hash on chain. v1 files are never challenged (their fragments
// have no tree to open one chunk of).
//
// Keys (beside those of state.go):
//
//	cs/<time BE8>/<node>                     a node's next epoch challenge
//	ch/<node>/<fid>/<column>/<segment BE8>   an open Challenge
//	cd/<deadline BE8>/<ch key rest>          an open challenge's deadline
//	pe/<node>                                bytes proven this epoch (BE8)
//	rm/<gateway>                             ReportMissing quota (Quota)
//	meta/epoch                               the current epoch (BE8)
const (
	pSchedule = "cs/"
	pChall    = "ch/"
	pChallDue = "cd/"
	pProven   = "pe/"
	pQuota    = "rm/"
	kEpoch    = "meta/epoch"
)

// PoolAddress is the rewards pool's account: territory payments, fees and
// penalties go in, rewards come out. It is no key's address (a hash, not a
// public key anyone holds the secret of), so nobody can spend from it.
var PoolAddress = types.Address(sha256.Sum256([]byte("deoss/rewards-pool")))

// MaxProofBytes bounds a proof slice: 8 bytes of length, 64 per tree level
// (a fragment of 8 MiB has 13 levels above its 1 KiB chunks) and the chunk.
const MaxProofBytes = 8 + 64*40 + types.ProofChunk

// Node states beyond active and exiting: a suspect node missed proofs in a
// row and takes no new columns; a faulty one missed more and its columns
// are marked for repair. A proof makes a suspect node active again.
const (
	NodeSuspect = "suspect"
	NodeFaulty  = "faulty"
)

// Challenge is an open challenge: Node must prove chunk Chunk of fragment
// Column of segment Segment of FID (hash Hash, Size bytes) by Deadline.
type Challenge struct {
	Node     types.Address `json:"node"`
	FID      types.FID     `json:"fid"`
	Column   uint8         `json:"column"`
	Segment  uint64        `json:"segment"`
	Chunk    int64         `json:"chunk"`
	Hash     types.Hash    `json:"hash"`
	Size     int64         `json:"size"`
	Issued   int64         `json:"issued_height"`
	Deadline int64         `json:"deadline"`
	// Bytes is what the node held when challenged: a proof of an epoch
	// challenge counts them as proven for the epoch's rewards.
	Bytes uint64 `json:"bytes"`
	// Targeted: asked for by a gateway's ReportMissing; it earns nothing.
	Targeted bool `json:"targeted,omitempty"`
}

// Quota counts one gateway's ReportMissing messages in an epoch.
type Quota struct {
	Epoch int64  `json:"epoch"`
	Count uint32 `json:"count"`
}

// Proof messages.
type (
	// SubmitProof answers the sender's open challenge of one fragment with
	// the Bao slice of the challenged chunk (codec.SliceChunk).
	SubmitProof struct {
		FID     types.FID `cbor:"1,keyasint"`
		Column  uint8     `cbor:"2,keyasint"`
		Segment uint64    `cbor:"3,keyasint"`
		Slice   []byte    `cbor:"4,keyasint"`
	}
	// ReportMissing is sent by a gateway whose read of a fragment failed
	// verification or timed out: the column's node is challenged on it.
	ReportMissing struct {
		FID     types.FID `cbor:"1,keyasint"`
		Column  uint8     `cbor:"2,keyasint"`
		Segment uint64    `cbor:"3,keyasint"`
	}
	// ReportLost is sent by a node that found a column of its own missing
	// or corrupt: the column is ordered for repair and leaves its
	// challenges, for a smaller penalty than a failed proof.
	ReportLost struct {
		FID    types.FID `cbor:"1,keyasint"`
		Column uint8     `cbor:"2,keyasint"`
	}
	// IncreaseStake locks Amount more of the sender's balance as its node's
	// stake.
	IncreaseStake struct {
		Amount uint64 `cbor:"1,keyasint"`
	}
)

// ncValue is the value of a node's column entry: the column's bytes and
// whether it is challenged (a reported v2 column, not reported lost).
func ncValue(bytes uint64, challenged bool) []byte {
	b := binary.BigEndian.AppendUint64(nil, bytes)
	if challenged {
		return append(b, 1)
	}
	return append(b, 0)
}

func parseNC(v []byte) (bytes uint64, challenged bool) {
	if len(v) != 9 {
		return 0, false // an entry of a chain from before proofs
	}
	return binary.BigEndian.Uint64(v), v[8] == 1
}

func challengeKey(node types.Address, fid types.FID, col uint8, seg uint64) string {
	return pChall + challengeRest(node, fid, col, seg)
}

func challengeRest(node types.Address, fid types.FID, col uint8, seg uint64) string {
	b := append(append(append([]byte{}, node[:]...), fid[:]...), col)
	return string(binary.BigEndian.AppendUint64(b, seg))
}

func timeKey(p string, t int64, rest string) string {
	return p + string(binary.BigEndian.AppendUint64(nil, uint64(t))) + rest
}

func uint64At(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// epochOf is the epoch of block time t; 0 when proofs are off.
func (p *Params) epochOf(t int64) int64 {
	if p.EpochSeconds <= 0 {
		return 0
	}
	return t / p.EpochSeconds
}

// slot is the node's challenge time within epoch e: a fixed offset from
// its address.
func (p *Params) slot(node types.Address, e int64) int64 {
	off := int64(binary.BigEndian.Uint64(node[:8]) % uint64(p.EpochSeconds))
	return e*p.EpochSeconds + off
}

// schedule puts the node's next epoch challenge at its first slot after
// block time now.
func (l *Ledger) schedule(node types.Address) {
	s := state{l.o}
	p := s.params()
	if p.EpochSeconds <= 0 {
		return
	}
	t := p.slot(node, p.epochOf(l.now))
	if t <= l.now {
		t += p.EpochSeconds
	}
	s.setFlag(timeKey(pSchedule, t, string(node[:])))
}

// proofsEndBlock runs the proof schedule at the end of a block: it closes
// an epoch that ended (paying its rewards), turns open challenges past
// their deadline into faults, and issues the challenges that are due.
func (l *Ledger) proofsEndBlock() {
	s := state{l.o}
	p := s.params()
	if p.EpochSeconds <= 0 {
		return
	}
	if e := p.epochOf(l.now); int64(uint64At(s.o.get(kEpoch))) != e {
		if s.o.get(kEpoch) != nil {
			l.payRewards(int64(uint64At(s.o.get(kEpoch))))
		}
		s.o.set(kEpoch, binary.BigEndian.AppendUint64(nil, uint64(e)))
	}
	for _, k := range l.due(pChallDue) {
		s.o.del(k)
		ck := pChall + k[len(pChallDue)+8:]
		if c, ok := load[Challenge](s, ck); ok {
			s.o.del(ck)
			l.fault(c, "missed")
		}
	}
	for _, k := range l.due(pSchedule) {
		s.o.del(k)
		var a types.Address
		copy(a[:], k[len(pSchedule)+8:])
		n, err := l.node(a)
		if err != nil {
			continue // gone: it is not scheduled again
		}
		// An exiting node still holds its columns until they move: it is
		// challenged on them as before.
		if n.State == NodeActive || n.State == NodeSuspect || n.State == NodeExiting {
			l.issue(n)
		}
		if n.State != NodeFaulty {
			s.setFlag(timeKey(pSchedule, p.slot(a, p.epochOf(l.now)+1), string(a[:])))
		}
	}
}

// due returns the keys of a time index (prefix, then a BE8 time) up to now.
func (l *Ledger) due(prefix string) []string {
	var out []string
	l.o.iterate(prefix, func(k string, _ []byte) bool {
		if int64(beUint64(k[len(prefix):])) > l.now {
			return false
		}
		out = append(out, k)
		return true
	})
	return out
}

// seed is H("deoss/chal/v1" || block hash || node || extra).
func (l *Ledger) seed(node types.Address, extra ...byte) [32]byte {
	h := sha256.New()
	h.Write([]byte("deoss/chal/v1"))
	h.Write(l.blockHash)
	h.Write(node[:])
	h.Write(extra)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// issue challenges node n on one chunk of its challenged bytes, drawn
// weighted by bytes. A node with nothing to prove is not challenged. It
// scans the node's column index twice (9-byte values, no file loaded but
// the one drawn): linear in the node's columns once an epoch, fine at
// today's sizes; millions of columns a node would want a weighted tree.
func (l *Ledger) issue(n *Node) {
	s := state{l.o}
	prefix := pNodeCol + string(n.Address[:])
	var total uint64
	s.o.iterate(prefix, func(_ string, v []byte) bool {
		if b, ok := parseNC(v); ok {
			total += b
		}
		return true
	})
	if total == 0 {
		return
	}
	sd := l.seed(n.Address)
	r := binary.BigEndian.Uint64(sd[:8]) % total
	var (
		fid   types.FID
		col   uint8
		found bool
	)
	s.o.iterate(prefix, func(k string, v []byte) bool {
		b, ok := parseNC(v)
		if !ok {
			return true
		}
		if r < b {
			copy(fid[:], k[len(prefix):])
			col, found = k[len(prefix)+types.HashSize], true
			return false
		}
		r -= b
		return true
	})
	f, err := l.file(fid)
	if !found || err != nil {
		return
	}
	seg := min(r/types.FragmentSize, uint64(len(f.Layout.Segments)-1))
	chunk := int64(r-seg*types.FragmentSize) / types.ProofChunk
	l.open(n, f, col, seg, chunk, total, false)
}

// open records a challenge (unless one of that fragment is open already).
func (l *Ledger) open(n *Node, f *File, col uint8, seg uint64, chunk int64, bytes uint64, targeted bool) bool {
	s := state{l.o}
	key := challengeKey(n.Address, f.FID, col, seg)
	if s.flag(key) {
		return false
	}
	size := int64(f.Layout.FragmentLen(int(seg)))
	if max := (size - 1) / types.ProofChunk; chunk > max {
		chunk = max
	}
	c := &Challenge{Node: n.Address, FID: f.FID, Column: col, Segment: seg, Chunk: chunk,
		Hash: f.Layout.Segments[seg].Fragments[col], Size: size, Issued: l.height,
		Deadline: l.now + s.params().ProofWindow, Bytes: bytes, Targeted: targeted}
	s.put(key, c)
	s.setFlag(timeKey(pChallDue, c.Deadline, key[len(pChall):]))
	l.emitChallenge(ActionChallenged, c)
	return true
}

func (l *Ledger) emitChallenge(action string, c *Challenge, kv ...string) {
	attrs := append([]string{AttrAction, action, AttrNode, c.Node.String(), AttrFID, c.FID.String(),
		AttrColumn, strconv.Itoa(int(c.Column)), AttrSegment, strconv.FormatUint(c.Segment, 10),
		AttrChunk, strconv.FormatInt(c.Chunk, 10), AttrDeadline, strconv.FormatInt(c.Deadline, 10)}, kv...)
	if c.Targeted {
		attrs = append(attrs, AttrTargeted, "true")
	}
	l.emit(EventChallenge, attrs...)
}

// closeChallenge removes an open challenge and its deadline entry.
func (l *Ledger) closeChallenge(c *Challenge) {
	s := state{l.o}
	key := challengeKey(c.Node, c.FID, c.Column, c.Segment)
	s.o.del(key)
	s.o.del(timeKey(pChallDue, c.Deadline, key[len(pChall):]))
}

func (l *Ledger) submitProof(from types.Address, m *SubmitProof) error {
	s := state{l.o}
	c, ok := load[Challenge](s, challengeKey(from, m.FID, m.Column, m.Segment))
	if !ok {
		return errf(ErrNotFound, "no open challenge of %s column %d segment %d for %s", m.FID, m.Column, m.Segment, from)
	}
	if len(m.Slice) > MaxProofBytes {
		return errf(ErrInvalid, "a proof of %d bytes; at most %d", len(m.Slice), MaxProofBytes)
	}
	l.closeChallenge(c)
	if _, err := codec.VerifyChunk(m.Slice, c.Size, c.Chunk, c.Hash); err != nil {
		l.fault(c, "wrong")
		// The fault stays (the challenge is answered, wrongly); the
		// sender hears that its proof failed.
		return keep(errf(ErrBadProof, "chunk %d of fragment %s: %v", c.Chunk, c.Hash, err))
	}
	n, err := l.node(from)
	if err != nil {
		return err
	}
	n.Passed++
	n.Faults = 0
	if n.State == NodeSuspect {
		n.State = NodeActive
		l.nodeChanged(n, NodeSuspect)
	}
	if !c.Targeted {
		n.Proven += c.Bytes
		key := addrKey(pProven, from)
		s.o.set(key, binary.BigEndian.AppendUint64(nil, uint64At(s.o.get(key))+c.Bytes))
	}
	s.put(addrKey(pNode, from), n)
	l.emitChallenge(ActionProved, c, AttrState, n.State)
	return nil
}

// fault charges a node for a missed or wrong proof: stake to the pool and
// one more fault in a row, which may make it suspect, then faulty.
func (l *Ledger) fault(c *Challenge, how string) {
	n, err := l.node(c.Node)
	if err != nil {
		return
	}
	s := state{l.o}
	p := s.params()
	penalty := min(p.FaultPenalty, n.Stake)
	n.Stake -= penalty
	n.Penalties += penalty
	_ = l.credit(PoolAddress, penalty)
	n.Faults++
	n.Missed++
	old := n.State
	if n.State == NodeActive && n.Faults >= p.SuspectAfter {
		n.State = NodeSuspect
	}
	if n.State == NodeSuspect && n.Faults >= p.FaultyAfter {
		n.State = NodeFaulty // its columns are ordered for repair by the sweep
	}
	l.nodeChanged(n, old)
	s.put(addrKey(pNode, n.Address), n)
	l.emitChallenge(ActionFailed, c, AttrState, n.State, AttrHow, how, AttrAmount, strconv.FormatUint(penalty, 10))
}

func (l *Ledger) reportMissing(gw types.Address, m *ReportMissing) error {
	if _, err := l.gateway(gw); err != nil {
		return errf(ErrUnauthorized, "sender is not a registered gateway")
	}
	s := state{l.o}
	p := s.params()
	if p.EpochSeconds <= 0 {
		return errf(ErrInvalid, "this chain has no proofs")
	}
	f, err := l.file(m.FID)
	if err != nil {
		return err
	}
	if f.Layout.Version == types.FormatV1 || m.Column >= types.TotalShards || m.Segment >= uint64(len(f.Layout.Segments)) {
		return errf(ErrInvalid, "no challengeable fragment %d of segment %d of %s", m.Column, m.Segment, m.FID)
	}
	if !f.Columns[m.Column].Reported {
		return errf(ErrConflict, "column %d of %s is not reported yet", m.Column, m.FID)
	}
	q, _ := load[Quota](s, addrKey(pQuota, gw))
	e := p.epochOf(l.now)
	if q == nil || q.Epoch != e {
		q = &Quota{Epoch: e}
	}
	if q.Count >= p.ReportsPerEpoch {
		return errf(ErrTooMany, "%d reports this epoch; the next epoch takes more", q.Count)
	}
	n, err := l.node(f.Columns[m.Column].Node)
	if err != nil {
		return err
	}
	var extra [41]byte
	copy(extra[:], m.FID[:])
	extra[32] = m.Column
	binary.BigEndian.PutUint64(extra[33:], m.Segment)
	sd := l.seed(n.Address, extra[:]...)
	size := int64(f.Layout.FragmentLen(int(m.Segment)))
	chunk := int64(binary.BigEndian.Uint64(sd[:8]) % uint64((size+types.ProofChunk-1)/types.ProofChunk))
	if !l.open(n, f, m.Column, m.Segment, chunk, 0, true) {
		return errf(ErrConflict, "that fragment is challenged already")
	}
	q.Count++
	s.put(addrKey(pQuota, gw), q)
	return nil
}

func (l *Ledger) reportLost(node types.Address, m *ReportLost) error {
	f, err := l.file(m.FID)
	if err != nil {
		return err
	}
	if m.Column >= types.TotalShards || f.Columns[m.Column].Node != node {
		return errf(ErrUnauthorized, "column %d of %s is not %s's", m.Column, m.FID, node)
	}
	if !f.Columns[m.Column].Reported {
		return errf(ErrConflict, "column %d of %s is not reported: the order's deadline deals with it", m.Column, m.FID)
	}
	n, err := l.node(node)
	if err != nil {
		return err
	}
	s := state{l.o}
	key := nodeColKey(node, m.FID, m.Column)
	bytes, _ := parseNC(s.o.get(key))
	if f.Columns[m.Column].Down == DownLost {
		return errf(ErrConflict, "column %d of %s is reported lost already", m.Column, m.FID)
	}
	s.o.set(key, ncValue(bytes, false))
	// Its open challenges go without a fault: the node said first.
	for seg := range uint64(len(f.Layout.Segments)) {
		if c, ok := load[Challenge](s, challengeKey(node, m.FID, m.Column, seg)); ok {
			l.closeChallenge(c)
		}
	}
	penalty := min(s.params().LostPenalty, n.Stake)
	n.Stake -= penalty
	n.Penalties += penalty
	n.Lost++
	_ = l.credit(PoolAddress, penalty)
	s.put(addrKey(pNode, node), n)
	l.setDown(f, m.Column, DownLost)
	s.put(fidKey(m.FID), f)
	l.emit(EventColumn, AttrAction, ActionLost, AttrFID, m.FID.String(), AttrColumn, strconv.Itoa(int(m.Column)), AttrNode, node.String())
	return nil
}

func (l *Ledger) increaseStake(from types.Address, m *IncreaseStake) error {
	n, err := l.node(from)
	if err != nil {
		return err
	}
	if m.Amount == 0 {
		return errf(ErrInvalid, "zero amount")
	}
	if err := l.debit(from, m.Amount); err != nil {
		return err
	}
	n.Stake += m.Amount
	state{l.o}.put(addrKey(pNode, from), n)
	l.emit(EventNode, AttrAction, "stake_increased", AttrNode, from.String(), AttrAmount, strconv.FormatUint(m.Amount, 10))
	return nil
}

// payRewards closes epoch e: the pool pays 1/RewardEpochs of its balance
// to the nodes that proved bytes in it, in proportion to those bytes. What
// integer division leaves stays in the pool.
func (l *Ledger) payRewards(e int64) {
	s := state{l.o}
	type entry struct {
		node  types.Address
		bytes uint64
	}
	var (
		proven []entry
		keys   []string
		total  uint64
	)
	s.o.iterate(pProven, func(k string, v []byte) bool {
		var a types.Address
		copy(a[:], k[len(pProven):])
		b := uint64At(v)
		proven = append(proven, entry{a, b})
		keys = append(keys, k)
		total += b
		return true
	})
	for _, k := range keys {
		s.o.del(k)
	}
	p := s.params()
	pot := s.account(PoolAddress).Balance / max(p.RewardEpochs, 1)
	if total == 0 || pot == 0 {
		return
	}
	var paid uint64
	for _, en := range proven {
		lo := mulDiv(pot, en.bytes, total)
		if lo == 0 {
			continue
		}
		if err := l.debit(PoolAddress, lo); err != nil {
			continue
		}
		_ = l.credit(en.node, lo)
		if n, err := l.node(en.node); err == nil {
			n.Rewards += lo
			s.put(addrKey(pNode, en.node), n)
		}
		paid += lo
		l.emit(EventReward, AttrNode, en.node.String(), AttrAmount, strconv.FormatUint(lo, 10), AttrEpoch, strconv.FormatInt(e, 10))
	}
	l.emit(EventReward, AttrAction, "epoch_closed", AttrEpoch, strconv.FormatInt(e, 10), AttrAmount, strconv.FormatUint(paid, 10))
}

// mulDiv is a*b/c for b <= c, without overflow.
func mulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	q, _ := bits.Div64(hi, lo, c) // hi < c since b <= c
	return q
}
