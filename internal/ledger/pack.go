package ledger

import (
	"strconv"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/types"
)

// Packs (docs/ledger.md, "Packs"). A pack is an ordinary v2 file that a
// gateway declared for itself and had stored; DeclarePack then lists the
// small objects in it. Objects are keyed by OID:
//
//	po/<oid>          PackedObject: owner, length, charge, where it lies
//	pk/<pack><oid>    a pack's entry (empty value)
//
// and own their OID as an owner owns a file (fo/, uf/), so lists, S3 keys
// and deletes take an OID wherever they take a FID.
const (
	pPacked    = "po/"
	pPackEntry = "pk/"
)

// Limits of packs.
const (
	// PackUnit: an object is charged its length rounded up to it.
	PackUnit = 4 << 10
	// MaxPackEntries bounds one pack's objects (and so one DeclarePack:
	// about 150 bytes an entry).
	MaxPackEntries = 10_000
	// MaxPackLocations bounds the packs one object is listed in (a copy
	// packed again because an earlier one did not verify).
	MaxPackLocations = 4
)

// PackedObject is an object inside one or more packs.
type PackedObject struct {
	OID    types.FID     `json:"oid"`
	Owner  types.Address `json:"owner"`
	Length uint64        `json:"length"`
	// Charge is what the owner's territory pays: Length rounded up to
	// PackUnit.
	Charge    uint64         `json:"charge"`
	Locations []PackLocation `json:"locations"`
	Declared  int64          `json:"declared_height"`
}

// PackLocation is where an object's bytes lie. The ledger checked that the
// range lies in the pack, not that its bytes hash to the OID: a reader
// verifies them, and tries the next location if they do not.
type PackLocation struct {
	Pack    types.FID     `json:"pack"`
	Offset  uint64        `json:"offset"`
	Gateway types.Address `json:"gateway"`
	// Credited: the object's charge counts as live in this pack (its first
	// location, or the one it was moved to), so the gateway is not charged
	// for these bytes.
	Credited bool `json:"credited,omitempty"`
}

// PackStats is a pack file's account of its entries.
type PackStats struct {
	Entries uint64 `json:"entries"`
	// LiveBytes is the sum of the live entries' lengths: the rest of the
	// pack is dead and waits for compaction.
	LiveBytes uint64 `json:"live_bytes"`
	// Live is the sum of the credited entries' charges, and Credit what the
	// pack's territory was credited for them: min(Live, the pack's charge).
	// The gateway pays Charge(pack) - Credit, its dead bytes.
	Live   uint64 `json:"live"`
	Credit uint64 `json:"credit"`
}

// PackCharge is what a packed object of n bytes costs its owner.
func PackCharge(n uint64) uint64 { return (n + PackUnit - 1) / PackUnit * PackUnit }

func packedKey(oid types.FID) string { return pPacked + string(oid[:]) }

func packEntryKey(pack, oid types.FID) string { return pPackEntry + string(pack[:]) + string(oid[:]) }

func (l *Ledger) packed(oid types.FID) (*PackedObject, bool) {
	return load[PackedObject](state{l.o}, packedKey(oid))
}

// declarePack lists the objects of a stored pack. Structural faults (order,
// overlap, bounds, a pack not the sender's) refuse the message; an entry
// its owner's state refuses (authorization, space, a move whose object was
// deleted) is skipped with a "refused" event, so that one full territory
// cannot keep a whole pack from being declared.
func (l *Ledger) declarePack(gw types.Address, m *DeclarePack) error {
	g, err := l.gateway(gw)
	if err != nil || g.CacheOnly {
		return errf(ErrUnauthorized, "only a registered gateway declares packs")
	}
	f, err := l.file(m.Pack)
	if err != nil {
		return err
	}
	po, ok := l.fileOwner(m.Pack, gw)
	switch {
	case !ok || f.Layout.Version != types.FormatV2 || f.Layout.Owner != gw:
		return errf(ErrUnauthorized, "file %s is not a pack of %s", m.Pack, gw)
	case f.Layout.Encryption != types.EncryptionNone:
		return errf(ErrInvalid, "a pack is not encrypted at the gateway (its objects may be)")
	case f.State != FileStored:
		return errf(ErrConflict, "pack %s is %s: declare it once stored", m.Pack, f.State)
	case f.Pack != nil:
		return errf(ErrConflict, "pack %s is already declared", m.Pack)
	case len(m.Entries) == 0 || len(m.Entries) > MaxPackEntries:
		return errf(ErrInvalid, "a pack lists 1 to %d objects", MaxPackEntries)
	}
	seen := make(map[types.FID]bool, len(m.Entries))
	var end uint64
	for i, e := range m.Entries {
		switch {
		case e.Length == 0:
			return errf(ErrInvalid, "entry %d: an empty object is not packed", i)
		case e.Offset < end:
			return errf(ErrInvalid, "entry %d: offset %d overlaps or precedes the entry before (ends at %d)", i, e.Offset, end)
		case e.Offset+e.Length < e.Offset || e.Offset+e.Length > f.Layout.Size:
			return errf(ErrInvalid, "entry %d: bytes [%d, +%d) lie outside the pack's %d", i, e.Offset, e.Length, f.Layout.Size)
		case seen[e.OID]:
			return errf(ErrInvalid, "entry %d: object %s listed twice", i, e.OID)
		case e.From != nil && *e.From == m.Pack:
			return errf(ErrInvalid, "entry %d: moved from the pack itself", i)
		case codec.ObjectID(types.EncryptionNone, e.Owner, e.Length, e.Content) != e.OID:
			return errf(ErrInvalid, "entry %d: %s is not the id of %d bytes of %s with that content hash", i, e.OID, e.Length, e.Owner)
		}
		if err := ValidName(e.Name); err != nil {
			return errf(ErrInvalid, "entry %d: %v", i, err)
		}
		seen[e.OID] = true
		end = e.Offset + e.Length
	}
	st := &PackStats{}
	f.Pack = st
	s := state{l.o}
	for _, e := range m.Entries {
		credited, err := l.packEntry(gw, m.Pack, &e)
		if err != nil {
			l.emit(EventPack, AttrAction, ActionRefused, AttrFID, e.OID.String(), AttrPack, m.Pack.String(), AttrReason, err.Error())
			continue
		}
		s.setFlag(packEntryKey(m.Pack, e.OID))
		st.Entries++
		st.LiveBytes += e.Length
		if credited {
			st.Live += PackCharge(e.Length)
		}
	}
	// Moves above touched other packs only: this one is written once.
	s.put(fidKey(m.Pack), f)
	l.emit(EventPack, AttrAction, ActionDeclared, AttrPack, m.Pack.String(), AttrGateway, gw.String(), AttrEntries, strconv.FormatUint(st.Entries, 10))
	if st.Entries == 0 { // every entry refused: nothing to keep
		if l.releaseOwner(f, po) == 0 {
			l.removeFile(f, ActionDeleted)
		}
		return nil
	}
	l.recredit(f, po)
	return nil
}

// packEntry records one entry of pack; it says whether the entry is the
// object's credited location.
func (l *Ledger) packEntry(gw types.Address, pack types.FID, e *PackEntry) (bool, error) {
	s := state{l.o}
	o, had := l.packed(e.OID)
	loc := PackLocation{Pack: pack, Offset: e.Offset, Gateway: gw}
	switch {
	case e.From != nil:
		if !had || o.Owner != e.Owner || o.Length != e.Length {
			return false, errf(ErrNotFound, "object %s is not live as listed", e.OID)
		}
		i := o.location(*e.From)
		if i < 0 || o.Locations[i].Gateway != gw {
			return false, errf(ErrNotFound, "object %s is not in pack %s of this gateway", e.OID, *e.From)
		}
		loc.Credited = o.Locations[i].Credited
		l.leavePack(o.Locations[i], o)
		o.Locations[i] = loc
		s.put(packedKey(e.OID), o)
		l.emit(EventPack, AttrAction, ActionMoved, AttrFID, e.OID.String(), AttrFrom, e.From.String(), AttrPack, pack.String())
		return loc.Credited, nil
	case had:
		// The same object packed again (its earlier copy did not verify
		// at the gateway): one more place to read it, charged once.
		if o.Owner != e.Owner || o.Length != e.Length {
			return false, errf(ErrConflict, "object %s is listed with another owner or length", e.OID)
		}
		if err := l.actsFor(gw, e.Owner); err != nil {
			return false, err
		}
		if len(o.Locations) >= MaxPackLocations {
			return false, errf(ErrConflict, "object %s is in %d packs already", e.OID, len(o.Locations))
		}
		o.Locations = append(o.Locations, loc)
		s.put(packedKey(e.OID), o)
		return false, nil
	}
	if err := l.actsFor(gw, e.Owner); err != nil {
		return false, err
	}
	// A FID with that value is a file, not an object (OIDs and FIDs are
	// apart by construction: a collision is someone's made-up id).
	if _, err := l.file(e.OID); err == nil {
		return false, errf(ErrConflict, "%s is a file", e.OID)
	}
	t, err := l.territory(e.Owner, e.Territory)
	if err != nil {
		return false, err
	}
	charge := PackCharge(e.Length)
	switch {
	case !t.Active(l.now):
		return false, errf(ErrExpired, "territory %q expired", e.Territory)
	case t.Free() < charge:
		return false, errf(ErrInsufficientSpace, "territory %q has %d bytes free, the object needs %d", e.Territory, t.Free(), charge)
	}
	t.Used += charge
	s.put(territoryKey(e.Owner, e.Territory), t)
	loc.Credited = true
	s.put(packedKey(e.OID), &PackedObject{OID: e.OID, Owner: e.Owner, Length: e.Length, Charge: charge, Locations: []PackLocation{loc}, Declared: l.height})
	l.addOwner(e.OID, Owner{Address: e.Owner, Name: e.Name, Territory: e.Territory, Private: e.Private})
	return true, nil
}

func (o *PackedObject) location(pack types.FID) int {
	for i, loc := range o.Locations {
		if loc.Pack == pack {
			return i
		}
	}
	return -1
}

// leavePack takes an object's entry out of a pack's account; a pack left
// with no entries is deleted (its nodes collect it).
func (l *Ledger) leavePack(loc PackLocation, o *PackedObject) {
	s := state{l.o}
	s.o.del(packEntryKey(loc.Pack, o.OID))
	f, err := l.file(loc.Pack)
	if err != nil || f.Pack == nil {
		return
	}
	f.Pack.Entries--
	f.Pack.LiveBytes -= min(o.Length, f.Pack.LiveBytes)
	if loc.Credited {
		f.Pack.Live -= min(o.Charge, f.Pack.Live)
	}
	s.put(fidKey(f.FID), f)
	po, ok := l.fileOwner(f.FID, loc.Gateway)
	if !ok {
		return
	}
	l.recredit(f, po)
	if f.Pack.Entries == 0 {
		l.emit(EventPack, AttrAction, ActionDeleted, AttrPack, f.FID.String())
		if l.releaseOwner(f, po) == 0 {
			l.removeFile(f, ActionDeleted)
		}
	}
}

// recredit sets the credit of pack f's territory (its owner po's) to what
// its live entries pay: the gateway is charged only the dead bytes. Dead
// bytes may take the territory past its size; it then takes no new files
// until the gateway repacks.
func (l *Ledger) recredit(f *File, po *Owner) {
	want := min(f.Pack.Live, Charge(&f.Layout))
	if want == f.Pack.Credit {
		return
	}
	s := state{l.o}
	if t, err := l.territory(po.Address, po.Territory); err == nil {
		t.Used = t.Used + f.Pack.Credit - min(want, t.Used+f.Pack.Credit)
		s.put(territoryKey(po.Address, po.Territory), t)
	}
	f.Pack.Credit = want
	s.put(fidKey(f.FID), f)
}

// unpack ends a packed object: its owner's charge comes back, it leaves
// every pack that lists it, and its keys go.
func (l *Ledger) unpack(o *PackedObject) {
	s := state{l.o}
	if ow, ok := l.fileOwner(o.OID, o.Owner); ok {
		if t, err := l.territory(o.Owner, ow.Territory); err == nil {
			t.Used -= min(o.Charge, t.Used)
			s.put(territoryKey(o.Owner, ow.Territory), t)
		}
	}
	for _, loc := range o.Locations {
		l.leavePack(loc, o)
	}
	l.dropOwner(o.OID, o.Owner)
	s.o.del(packedKey(o.OID))
	l.emit(EventPack, AttrAction, ActionRemoved, AttrFID, o.OID.String(), AttrOwner, o.Owner.String())
}

// contentSize is the size of a file or packed object id, for an S3 key.
func (l *Ledger) contentSize(id types.FID) (uint64, error) {
	if f, err := l.file(id); err == nil {
		return f.Layout.Size, nil
	}
	if o, ok := l.packed(id); ok {
		return o.Length, nil
	}
	return 0, errf(ErrNotFound, "file or object %s", id)
}

// release ends owner's ownership of id, a file or a packed object.
func (l *Ledger) release(id types.FID, owner types.Address) {
	if o, ok := l.packed(id); ok {
		if o.Owner == owner {
			l.unpack(o)
		}
		return
	}
	f, err := l.file(id)
	if err != nil {
		return
	}
	o, ok := l.fileOwner(id, owner)
	if !ok {
		return
	}
	if l.releaseOwner(f, o) > 0 {
		l.emitFile(ActionOwnerRemoved, f, AttrOwner, owner.String())
		return
	}
	l.removeFile(f, ActionDeleted)
}

// PackedView is the answer to "packed/<oid>": the object and its owner's
// record (name, territory, privacy).
type PackedView struct {
	PackedObject
	Name      string `json:"name"`
	Territory string `json:"territory"`
	Private   bool   `json:"private,omitempty"`
}

// PackEntryView is one entry of the answer to "pack/<fid>".
type PackEntryView struct {
	OID    types.FID     `json:"oid"`
	Owner  types.Address `json:"owner"`
	Offset uint64        `json:"offset"`
	Length uint64        `json:"length"`
}

func (q querier) packedObject(oid types.FID) (*PackedView, error) {
	o, ok := load[PackedObject](q.s, packedKey(oid))
	if !ok {
		return nil, errf(ErrNotFound, "object %s", oid)
	}
	v := &PackedView{PackedObject: *o}
	if ow, ok := load[Owner](q.s, ownerKey(oid, o.Owner)); ok {
		v.Name, v.Territory, v.Private = ow.Name, ow.Territory, ow.Private
	}
	return v, nil
}

// packEntries lists a pack's live entries in OID order (a page).
func (q querier) packEntries(pack types.FID) []PackEntryView {
	out := []PackEntryView{}
	prefix := pPackEntry + string(pack[:])
	q.iterate(prefix, func(k string, _ []byte) {
		var oid types.FID
		copy(oid[:], k[len(prefix):])
		o, ok := load[PackedObject](q.s, packedKey(oid))
		if !ok {
			return
		}
		if i := o.location(pack); i >= 0 {
			out = append(out, PackEntryView{OID: oid, Owner: o.Owner, Offset: o.Locations[i].Offset, Length: o.Length})
		}
	})
	return out
}
