package ledger

import (
	"encoding/binary"
	"strconv"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/types"
)

func (l *Ledger) file(fid types.FID) (*File, error) {
	f, ok := load[File](state{l.o}, fidKey(fid))
	if !ok {
		return nil, errf(ErrNotFound, "file %s", fid)
	}
	return f, nil
}

func (l *Ledger) declareFile(gw types.Address, m *DeclareFile) error {
	g, err := l.gateway(gw)
	if err != nil {
		return errf(ErrUnauthorized, "sender is not a registered gateway")
	}
	if g.CacheOnly {
		return errf(ErrUnauthorized, "a cache-only gateway declares no files")
	}
	s := state{l.o}
	if m.Owner != gw && !s.flag(authzKey(m.Owner, gw)) { // a gateway's own files: its packs
		return errf(ErrUnauthorized, "%s has not authorized gateway %s", m.Owner, gw)
	}
	if err := ValidName(m.Name); err != nil {
		return err
	}
	if err := m.Layout.Validate(); err != nil {
		return errf(ErrInvalid, "%v", err)
	}
	if codec.FileID(&m.Layout) != m.FID {
		return errf(ErrInvalid, "the layout's FID is %s, not %s", codec.FileID(&m.Layout), m.FID)
	}
	// A v2 FID binds its owner: nobody declares another owner's file.
	if m.Layout.Version != types.FormatV1 && m.Layout.Owner != m.Owner {
		return errf(ErrInvalid, "the layout belongs to %s, not %s", m.Layout.Owner, m.Owner)
	}
	t, err := l.territory(m.Owner, m.Territory)
	if err != nil {
		return err
	}
	if !t.Active(l.now) {
		return errf(ErrExpired, "territory %q expired", m.Territory)
	}
	charge := Charge(&m.Layout)
	if t.Free() < charge {
		return errf(ErrInsufficientSpace, "territory %q has %d bytes free, the file needs %d", m.Territory, t.Free(), charge)
	}
	owner := Owner{Address: m.Owner, Name: m.Name, Territory: m.Territory, Private: m.Private}

	// A v1 file already stored gets one more owner instead of a second copy
	// (the gateway checks the stored layout is its own first: a v1 FID does
	// not bind the fragment hashes). A v2 FID has exactly one owner.
	if f, err := l.file(m.FID); err == nil {
		if f.Layout.Version != types.FormatV1 {
			return errf(ErrConflict, "file %s is already declared", m.FID)
		}
		if f.State != FileStored {
			return errf(ErrConflict, "file %s is %s", m.FID, f.State)
		}
		if f.Uncharged {
			return errf(ErrConflict, "file %s was lost once: upload it again under a new layout", m.FID)
		}
		if _, ok := l.fileOwner(m.FID, m.Owner); ok {
			return errf(ErrConflict, "%s already owns file %s", m.Owner, m.FID)
		}
		t.Used += charge
		s.put(territoryKey(m.Owner, m.Territory), t)
		// An owner is a key of its own: the file's record is not
		// rewritten, nor does it grow, however many owners come.
		l.addOwner(m.FID, owner)
		l.emitFile(ActionOwnerAdded, f, AttrOwner, m.Owner.String())
		return nil
	}

	f := &File{FID: m.FID, Layout: m.Layout, Owners: []Owner{owner}, Gateway: gw, Declared: l.height}
	if len(m.Layout.Segments) == 0 {
		// An empty file has nothing to store: stored at once, no columns.
		if m.Columns != ([types.TotalShards]types.Address{}) {
			return errf(ErrInvalid, "an empty file has no columns to assign")
		}
		f.State, f.StoredAt = FileStored, l.height
		s.put(fidKey(m.FID), f)
		l.addOwner(m.FID, owner)
		l.emitFile(ActionStored, f)
		return nil
	}
	seen := map[types.Address]bool{}
	colBytes := ColumnBytes(&m.Layout)
	for j, n := range m.Columns {
		if seen[n] {
			return errf(ErrInvalid, "node %s is assigned two columns", n)
		}
		seen[n] = true
		if err := l.assign(n, m.FID, uint8(j), colBytes); err != nil {
			return err
		}
		f.Columns[j] = Column{Node: n}
	}
	t.Locked += charge
	s.put(territoryKey(m.Owner, m.Territory), t)
	f.State, f.Deadline, f.End = FilePending, l.now+s.params().OrderTTL, l.now+OrderEnds*s.params().OrderTTL
	s.put(fidKey(m.FID), f)
	l.addOwner(m.FID, owner)
	s.setFlag(deadlineKey(f.Deadline, m.FID))
	l.emitFile(ActionDeclared, f, AttrOwner, m.Owner.String(), AttrGateway, gw.String())
	return nil
}

// assign gives column col of a file to node n, reserving its bytes.
func (l *Ledger) assign(n types.Address, fid types.FID, col uint8, bytes uint64) error {
	node, err := l.node(n)
	if err != nil {
		return errf(ErrInvalid, "column %d: %v", col, err)
	}
	if node.State != NodeActive {
		return errf(ErrInvalid, "column %d: node %s is %s", col, n, node.State)
	}
	if node.Free() < bytes {
		return errf(ErrInsufficientSpace, "column %d: node %s has %d bytes free, needs %d", col, n, node.Free(), bytes)
	}
	node.Assigned += bytes
	s := state{l.o}
	s.put(addrKey(pNode, n), node)
	s.o.set(nodeColKey(n, fid, col), ncValue(bytes, false))
	return nil
}

// unassign releases column col of a file from node n.
func (l *Ledger) unassign(n types.Address, fid types.FID, col uint8, bytes uint64) {
	s := state{l.o}
	s.o.del(nodeColKey(n, fid, col))
	// Nothing to prove of what the node no longer keeps (it may have
	// collected it already).
	prefix := challengeKey(n, fid, col, 0)[:len(pChall)+2*types.HashSize+1]
	var open []*Challenge
	s.o.iterate(prefix, func(_ string, v []byte) bool {
		var c Challenge
		mustUnmarshal(v, &c)
		open = append(open, &c)
		return true
	})
	for _, c := range open {
		l.closeChallenge(c)
	}
	if node, err := l.node(n); err == nil {
		node.Assigned -= min(bytes, node.Assigned)
		s.put(addrKey(pNode, n), node)
		l.maybeRemoveNode(node)
	}
}

func (l *Ledger) reassignColumn(gw types.Address, m *ReassignColumn) error {
	f, err := l.file(m.FID)
	if err != nil {
		return err
	}
	if f.Gateway != gw {
		return errf(ErrUnauthorized, "only the declaring gateway reassigns columns")
	}
	if f.State != FilePending {
		return errf(ErrConflict, "file %s is %s", m.FID, f.State)
	}
	if m.Column >= types.TotalShards {
		return errf(ErrInvalid, "column %d", m.Column)
	}
	c := &f.Columns[m.Column]
	if c.Reported {
		return errf(ErrConflict, "column %d is reported", m.Column)
	}
	// An order cannot be kept alive forever by reassigning: reassignments
	// are capped, the territory must still be active, and the deadline
	// never passes the order's fixed end.
	if f.Reassigns >= MaxReassigns {
		return errf(ErrTooMany, "the order was reassigned %d times", f.Reassigns)
	}
	if t, err := l.territory(f.Owners[0].Address, f.Owners[0].Territory); err != nil || !t.Active(l.now) {
		return errf(ErrExpired, "the order's territory %q is not active", f.Owners[0].Territory)
	}
	for _, other := range f.Columns {
		if other.Node == m.Node {
			return errf(ErrInvalid, "node %s already holds a column of the file", m.Node)
		}
	}
	bytes := ColumnBytes(&f.Layout)
	if err := l.assign(m.Node, m.FID, m.Column, bytes); err != nil {
		return err
	}
	l.unassign(c.Node, m.FID, m.Column, bytes)
	col := strconv.Itoa(int(m.Column))
	l.emit(EventColumn, AttrAction, ActionReassigned, AttrFID, m.FID.String(), AttrColumn, col, AttrNode, m.Node.String(), AttrFrom, c.Node.String())
	c.Node = m.Node
	// A reassignment gives the new node its time, up to the order's end.
	s := state{l.o}
	end := f.End
	if end == 0 {
		end = f.Deadline // an order from before fixed ends
	}
	s.o.del(deadlineKey(f.Deadline, m.FID))
	f.Deadline = max(f.Deadline, min(l.now+s.params().OrderTTL, end))
	f.Reassigns++
	s.setFlag(deadlineKey(f.Deadline, m.FID))
	s.put(fidKey(m.FID), f)
	return nil
}

func (l *Ledger) reportColumn(node types.Address, m *ReportColumn) error {
	f, err := l.file(m.FID)
	if err != nil {
		return err
	}
	if m.Column >= types.TotalShards {
		return errf(ErrInvalid, "column %d", m.Column)
	}
	c := &f.Columns[m.Column]
	if c.Node != node {
		return errf(ErrUnauthorized, "column %d of %s is not assigned to %s", m.Column, m.FID, node)
	}
	if c.Reported {
		return errf(ErrConflict, "column %d is already reported", m.Column)
	}
	c.Reported = true
	if f.Layout.Version != types.FormatV1 {
		state{l.o}.o.set(nodeColKey(node, m.FID, m.Column), ncValue(ColumnBytes(&f.Layout), true))
	}
	l.emit(EventColumn, AttrAction, ActionReported, AttrFID, m.FID.String(), AttrColumn, strconv.Itoa(int(m.Column)), AttrNode, node.String())
	s := state{l.o}
	done := true
	for _, c := range f.Columns {
		done = done && c.Reported
	}
	if done {
		s.o.del(deadlineKey(f.Deadline, m.FID))
		f.State, f.Deadline, f.StoredAt = FileStored, 0, l.height
		// The order's lock becomes the owner's use.
		o := f.Owners[0]
		if t, err := l.territory(o.Address, o.Territory); err == nil {
			charge := Charge(&f.Layout)
			t.Locked -= min(charge, t.Locked)
			t.Used += charge
			s.put(territoryKey(o.Address, o.Territory), t)
		}
		l.emitFile(ActionStored, f)
		l.rated(f)
	}
	s.put(fidKey(m.FID), f)
	return nil
}

func (l *Ledger) deleteFile(sender types.Address, m *DeleteFile) error {
	if o, ok := l.packed(m.FID); ok {
		if o.Owner != m.Owner {
			return errf(ErrNotFound, "%s does not own object %s", m.Owner, m.FID)
		}
		if err := l.actsFor(sender, m.Owner); err != nil {
			return err
		}
		l.unpack(o)
		return nil
	}
	f, err := l.file(m.FID)
	if err != nil {
		return err
	}
	if f.Pack != nil && f.Pack.Entries > 0 {
		return errf(ErrConflict, "pack %s holds %d live objects: it goes with its last", m.FID, f.Pack.Entries)
	}
	o, ok := l.fileOwner(m.FID, m.Owner)
	if !ok {
		return errf(ErrNotFound, "%s does not own file %s", m.Owner, m.FID)
	}
	s := state{l.o}
	if sender != m.Owner {
		if _, err := l.gateway(sender); err != nil || !s.flag(authzKey(m.Owner, sender)) {
			return errf(ErrUnauthorized, "only the owner or a gateway it authorized deletes its file")
		}
	}
	if l.releaseOwner(f, o) > 0 {
		l.emitFile(ActionOwnerRemoved, f, AttrOwner, m.Owner.String())
		return nil
	}
	l.removeFile(f, ActionDeleted)
	return nil
}

// releaseOwner returns an owner's space and drops it from the file; it
// returns how many owners are left.
func (l *Ledger) releaseOwner(f *File, o *Owner) uint64 {
	s := state{l.o}
	if t, err := l.territory(o.Address, o.Territory); err == nil && !f.Uncharged {
		charge := Charge(&f.Layout)
		if f.Pack != nil {
			charge -= min(f.Pack.Credit, charge) // the live objects pay that part
		}
		if f.State == FileStored {
			t.Used -= min(charge, t.Used)
		} else {
			t.Locked -= min(charge, t.Locked)
		}
		s.put(territoryKey(o.Address, o.Territory), t)
	}
	return l.dropOwner(f.FID, o.Address)
}

// removeFile drops a file with no owners left: its columns are released (the
// nodes collect the fragments on the "removed" column events).
func (l *Ledger) removeFile(f *File, action string) {
	s := state{l.o}
	if counted(f) {
		l.bucket(f.Health, -1, -int64(f.Layout.Size))
	}
	l.dropOrders(f)
	if len(f.Layout.Segments) > 0 {
		bytes := ColumnBytes(&f.Layout)
		for j, c := range f.Columns {
			l.unassign(c.Node, f.FID, uint8(j), bytes)
		}
	}
	if f.State == FilePending {
		s.o.del(deadlineKey(f.Deadline, f.FID))
	}
	s.o.del(fidKey(f.FID))
	l.emitFile(action, f)
}

// expireOrder drops a pending order whose deadline passed.
func (l *Ledger) expireOrder(fid types.FID) {
	f, err := l.file(fid)
	if err != nil || f.State != FilePending {
		return // a stale index entry; EndBlock removed it
	}
	for _, o := range l.owners(fid, 0) {
		l.releaseOwner(f, &o)
	}
	l.removeFile(f, ActionExpired)
}

// emitFile emits one event per file change. It names every column's node
// (attribute "node", twelve times), so a node subscribes to
// deoss.file.node='<its address>' and learns of files it must store or may
// collect, with one indexed event per order instead of one per column.
func (l *Ledger) emitFile(action string, f *File, kv ...string) {
	attrs := append([]string{AttrAction, action, AttrFID, f.FID.String(), AttrState, f.State}, kv...)
	if len(f.Layout.Segments) > 0 {
		for _, c := range f.Columns {
			attrs = append(attrs, AttrNode, c.Node.String())
		}
	}
	l.emit(EventFile, attrs...)
}

// A file's owners are keys of their own, fo/<fid><owner> -> Owner, with
// their count at fn/<fid>; the file's record keeps only its declarer.
func ownerKey(fid types.FID, a types.Address) string {
	return pFileOwner + string(fid[:]) + string(a[:])
}

func (l *Ledger) fileOwner(fid types.FID, a types.Address) (*Owner, bool) {
	return load[Owner](state{l.o}, ownerKey(fid, a))
}

func (l *Ledger) ownerCount(fid types.FID) uint64 {
	return uint64At(state{l.o}.o.get(pOwnerCount + string(fid[:])))
}

func (l *Ledger) setOwnerCount(fid types.FID, n uint64) {
	s := state{l.o}
	if n == 0 {
		s.o.del(pOwnerCount + string(fid[:]))
		return
	}
	s.o.set(pOwnerCount+string(fid[:]), binary.BigEndian.AppendUint64(nil, n))
}

func (l *Ledger) addOwner(fid types.FID, o Owner) {
	s := state{l.o}
	s.put(ownerKey(fid, o.Address), &o)
	s.setFlag(userFileKey(o.Address, fid))
	l.setOwnerCount(fid, l.ownerCount(fid)+1)
}

// dropOwner removes an owner's keys and returns how many are left.
func (l *Ledger) dropOwner(fid types.FID, a types.Address) uint64 {
	s := state{l.o}
	l.dropKeys(fid, a)
	s.o.del(ownerKey(fid, a))
	s.o.del(userFileKey(a, fid))
	n := l.ownerCount(fid)
	if n > 0 {
		n--
	}
	l.setOwnerCount(fid, n)
	return n
}

// owners lists a file's owners in address order, at most max (0: all).
func (l *Ledger) owners(fid types.FID, max int) []Owner {
	return ownersOf(state{l.o}, fid, max)
}

func ownersOf(s state, fid types.FID, max int) []Owner {
	var out []Owner
	s.o.iterate(pFileOwner+string(fid[:]), func(_ string, v []byte) bool {
		var o Owner
		mustUnmarshal(v, &o)
		out = append(out, o)
		return max == 0 || len(out) < max
	})
	return out
}
