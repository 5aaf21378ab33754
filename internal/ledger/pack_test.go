package ledger

import (
	"fmt"
	"testing"

	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/types"
)

// packLayoutOf is a synthetic v2 layout of size bytes owned by owner.
func packLayoutOf(owner types.Address, size uint64, salt byte) (types.Layout, types.FID) {
	l := types.Layout{Version: types.FormatV2, Size: size, Owner: owner}
	for i := range types.ProfileV2.Segments(size, types.EncryptionNone) {
		seg := types.SegmentLayout{Hash: types.Sum([]byte{'p', salt, byte(i)})}
		for j := range seg.Fragments {
			seg.Fragments[j] = types.Sum([]byte{'p', salt, byte(i), byte(j)})
		}
		l.Segments = append(l.Segments, seg)
	}
	return l, codec.FileID(&l)
}

// storedPack declares a pack of gw's in its territory "packs" and has every
// column reported.
func (h *harness) storedPack(gw string, size uint64, salt byte) (types.FID, types.Layout) {
	h.t.Helper()
	l, fid := packLayoutOf(h.addr(gw), size, salt)
	h.ok(gw, Msg{DeclareFile: &DeclareFile{Owner: h.addr(gw), FID: fid, Name: fmt.Sprintf("pack-%d", salt),
		Territory: "packs", Layout: l, Columns: h.nodes(0)}})
	h.reportAll(fid, 0)
	return fid, l
}

func testOID(n int) types.FID { return types.FID(types.Sum(fmt.Appendf(nil, "object %d", n))) }

// testContent is the content hash of test object n, and testObject its OID
// for an owner and a length.
func testContent(n int) types.Hash { return types.Sum(fmt.Appendf(nil, "content %d", n)) }

func testObject(n int, owner types.Address, length uint64) types.FID {
	return codec.ObjectID(types.EncryptionNone, owner, length, testContent(n))
}

func (h *harness) packStats(fid types.FID) PackStats {
	h.t.Helper()
	f, err := h.file(fid)
	if err != nil || f.Pack == nil {
		h.t.Fatalf("pack %s: %v %+v", fid, err, f.Pack)
	}
	return *f.Pack
}

func TestPacks(t *testing.T) {
	h := newHarness(t, true)
	h.setup()
	alice, bob, gw := h.addr("alice"), h.addr("bob"), h.addr("gw")
	h.ok("gw", Msg{BuyTerritory: &BuyTerritory{Name: "packs", GiB: 1, Days: 30}})
	h.ok("bob", Msg{BuyTerritory: &BuyTerritory{Name: "home", GiB: 1, Days: 30}}) // bob has not authorized gw

	// A pack is declared once stored.
	pl, _ := packLayoutOf(gw, 100_000, 1)
	p1 := codec.FileID(&pl)
	h.ok("gw", Msg{DeclareFile: &DeclareFile{Owner: gw, FID: p1, Name: "pack-1", Territory: "packs", Layout: pl, Columns: h.nodes(0)}})
	entry := func(n int, owner types.Address, off, length uint64) PackEntry {
		return PackEntry{OID: testObject(n, owner, length), Owner: owner, Name: fmt.Sprintf("obj-%d", n), Territory: "home", Offset: off, Length: length, Content: testContent(n)}
	}
	named := func(e PackEntry, name string) PackEntry { e.Name = name; return e }
	from := func(e PackEntry, f types.FID) PackEntry { e.From = &f; return e }
	// A forger's entries: another owner's object claimed for its own
	// user, or at another length.
	forged, short := entry(7, alice, 0, 10), entry(7, alice, 0, 10)
	forged.Owner, short.Length = bob, 9
	o1, o2, o3 := testObject(1, alice, 1000), testObject(2, alice, 5000), testObject(3, bob, 100)
	decl := func(pack types.FID, es ...PackEntry) Msg {
		return Msg{DeclarePack: &DeclarePack{Pack: pack, Entries: es}}
	}
	h.fail("gw", decl(p1, entry(1, alice, 0, 1000)), CodeConflict)
	h.reportAll(p1, 0)
	packCharge := Charge(&pl)
	if tr := h.territory("gw", "packs"); tr.Used != packCharge {
		t.Fatalf("gw pays the whole pack before it is declared: %+v, want %d", tr, packCharge)
	}

	// Structural faults refuse the whole message.
	for name, c := range map[string]struct {
		sender string
		m      Msg
		want   Code
	}{
		"no entries":     {"gw", decl(p1), CodeInvalid},
		"empty object":   {"gw", decl(p1, entry(1, alice, 0, 0)), CodeInvalid},
		"overlap":        {"gw", decl(p1, entry(1, alice, 0, 1000), entry(2, alice, 999, 10)), CodeInvalid},
		"out of order":   {"gw", decl(p1, entry(1, alice, 2000, 10), entry(2, alice, 0, 10)), CodeInvalid},
		"past the end":   {"gw", decl(p1, entry(1, alice, 99_999, 2)), CodeInvalid},
		"wrapping":       {"gw", decl(p1, entry(1, alice, 10, ^uint64(0))), CodeInvalid},
		"listed twice":   {"gw", decl(p1, entry(1, alice, 0, 10), entry(1, alice, 10, 10)), CodeInvalid},
		"bad name":       {"gw", decl(p1, named(entry(1, alice, 0, 1), "")), CodeInvalid},
		"another owner":  {"gw", decl(p1, forged), CodeInvalid},
		"another length": {"gw", decl(p1, short), CodeInvalid},
		"not its pack":   {"gw2", decl(p1, entry(1, alice, 0, 10)), CodeUnauthorized},
		"not a gateway":  {"alice", decl(p1, entry(1, alice, 0, 10)), CodeUnauthorized},
		"no such pack":   {"gw", decl(testOID(99), entry(1, alice, 0, 10)), CodeNotFound},
		"moved from own": {"gw", decl(p1, from(entry(1, alice, 0, 1), p1)), CodeInvalid},
	} {
		if r := h.do(c.sender, c.m); r.Code != c.want {
			t.Fatalf("%s: code %d (%s), want %d", name, r.Code, r.Log, c.want)
		}
	}
	// A user file of alice's is not a pack, even declared by gw.
	userFile, _ := h.declare("gw", "alice", 5000, 7, 0)
	h.reportAll(userFile, 0)
	h.fail("gw", decl(userFile, entry(1, alice, 0, 10)), CodeUnauthorized)
	// Nor is its FID an object's id: no content hash gives it.
	asFile := entry(8, alice, 0, 10)
	asFile.OID = userFile
	h.fail("gw", decl(p1, asFile), CodeInvalid)
	aliceBefore := h.territory("alice", "home").Used

	// Entries their owners' state refuses are skipped; the rest are kept.
	e4 := entry(4, alice, 7000, 10)
	e4.Territory = "nowhere"
	r := h.do("gw", decl(p1, entry(1, alice, 0, 1000), entry(2, alice, 1000, 5000), entry(3, bob, 6000, 100), e4))
	if r.Code != CodeOK {
		t.Fatal(r)
	}
	refused := 0
	for _, ev := range r.Events {
		if ev.Type == EventPack && ev.Attrs[0].Value == ActionRefused {
			refused++
		}
	}
	if refused != 2 {
		t.Fatalf("%d entries refused, want 2 (bob's, a missing territory): %+v", refused, r.Events)
	}
	if _, err := h.l.Query("packed/" + o3.String()); err == nil {
		t.Fatal("bob's object was packed without his authorization")
	}
	if got := h.territory("alice", "home").Used - aliceBefore; got != 4096+8192 {
		t.Fatalf("alice charged %d, want 4 KiB + 8 KiB", got)
	}
	if st := h.packStats(p1); st.Entries != 2 || st.LiveBytes != 6000 || st.Live != 12288 || st.Credit != min(12288, packCharge) {
		t.Fatalf("pack account: %+v", st)
	}
	if tr := h.territory("gw", "packs"); tr.Used != packCharge-min(12288, packCharge) {
		t.Fatalf("gw pays %d, want the dead bytes %d", tr.Used, packCharge-12288)
	}
	h.fail("gw", decl(p1, entry(5, alice, 0, 10)), CodeConflict) // declared once

	// Queries: the object, the pack's entries, the owner's list.
	v := query[PackedView](h, "packed/"+o2.String())
	if v.Owner != alice || v.Length != 5000 || v.Charge != 8192 || v.Name != "obj-2" || v.Territory != "home" ||
		len(v.Locations) != 1 || v.Locations[0].Pack != p1 || v.Locations[0].Offset != 1000 || !v.Locations[0].Credited {
		t.Fatalf("packed view: %+v", v)
	}
	if es := query[[]PackEntryView](h, "pack/"+p1.String()); len(es) != 2 {
		t.Fatalf("pack entries: %+v", es)
	}
	packedListed := 0
	for _, uf := range query[[]UserFile](h, "files/"+alice.String()) {
		if uf.Packed && (uf.FID == o1 || uf.FID == o2) && uf.State == FileStored {
			packedListed++
		}
	}
	if packedListed != 2 {
		t.Fatalf("alice's list shows %d packed objects, want 2", packedListed)
	}
	// A pack with live objects is not deleted by itself.
	h.fail("gw", Msg{DeleteFile: &DeleteFile{FID: p1, Owner: gw}}, CodeConflict)

	// The same object packed again (say its first copy did not verify):
	// one more location, not charged again.
	p2, _ := h.storedPack("gw", 50_000, 2)
	r = h.do("gw", decl(p2, entry(1, alice, 10, 1000)))
	if r.Code != CodeOK {
		t.Fatal(r)
	}
	if v := query[PackedView](h, "packed/"+o1.String()); len(v.Locations) != 2 || v.Locations[1].Credited || v.Locations[1].Offset != 10 {
		t.Fatalf("second location: %+v", v.Locations)
	}
	if got := h.territory("alice", "home").Used - aliceBefore; got != 12288 {
		t.Fatalf("a second copy charged alice: %d", got)
	}
	if st := h.packStats(p2); st.Entries != 1 || st.Live != 0 || st.Credit != 0 {
		t.Fatalf("p2 account: %+v", st)
	}

	// Deleting an object returns its charge at once and takes it out of
	// every pack: p2, left empty, goes.
	h.fail("bob", Msg{DeleteFile: &DeleteFile{FID: o1, Owner: alice}}, CodeUnauthorized)
	h.fail("gw", Msg{DeleteFile: &DeleteFile{FID: o1, Owner: bob}}, CodeNotFound)
	h.ok("gw", Msg{DeleteFile: &DeleteFile{FID: o1, Owner: alice}})
	if got := h.territory("alice", "home").Used - aliceBefore; got != 8192 {
		t.Fatalf("after the delete alice pays %d, want 8 KiB", got)
	}
	if _, err := h.file(p2); err == nil {
		t.Fatal("an empty pack was kept")
	}
	if st := h.packStats(p1); st.Entries != 1 || st.LiveBytes != 5000 || st.Live != 8192 {
		t.Fatalf("p1 after the delete: %+v", st)
	}

	// Compaction: the live object moves to a new pack in one step; the old
	// pack, left empty, goes, and its charge with it.
	p3, pl3 := h.storedPack("gw", 20_000, 3)
	mv := entry(2, alice, 100, 5000)
	mv.From = &p1
	bad := entry(1, alice, 6000, 1000) // deleted: a move of it is refused
	bad.From = &p1
	h.ok("gw", decl(p3, mv, bad))
	if _, err := h.file(p1); err == nil {
		t.Fatal("the compacted pack was kept")
	}
	v = query[PackedView](h, "packed/"+o2.String())
	if len(v.Locations) != 1 || v.Locations[0].Pack != p3 || v.Locations[0].Offset != 100 || !v.Locations[0].Credited {
		t.Fatalf("moved object: %+v", v.Locations)
	}
	if tr := h.territory("gw", "packs"); tr.Used != Charge(&pl3)-min(8192, Charge(&pl3)) {
		t.Fatalf("gw pays %d after compaction", tr.Used)
	}

	// S3 keys name objects as they name files; the last key's delete ends
	// the object.
	h.ok("gw", Msg{CreateBucket: &CreateBucket{Owner: alice, Name: "small", Territory: "home"}})
	h.ok("gw", Msg{PutObject: &PutObject{Owner: alice, Bucket: "small", Key: "k", FID: o2, ETag: "e"}})
	if o := query[Object](h, "object/"+alice.String()+"/small?key=k"); o.Size != 5000 {
		t.Fatalf("key on an object: %+v", o)
	}
	h.ok("gw", Msg{DeleteObjects: &DeleteObjects{Owner: alice, Bucket: "small", Keys: []string{"k"}}})
	if _, err := h.l.Query("packed/" + o2.String()); err == nil {
		t.Fatal("the object outlived its last key")
	}
	if _, err := h.file(p3); err == nil {
		t.Fatal("the last pack outlived its objects")
	}
	if got := h.territory("alice", "home").Used; got != aliceBefore {
		t.Fatalf("alice pays %d, want %d", got, aliceBefore)
	}
	if tr := h.territory("gw", "packs"); tr.Used != 0 {
		t.Fatalf("gw still pays %d", tr.Used)
	}
}

// A pack whose every entry is refused is not kept.
func TestPackAllRefused(t *testing.T) {
	h := newHarness(t, true)
	h.setup()
	h.ok("gw", Msg{BuyTerritory: &BuyTerritory{Name: "packs", GiB: 1, Days: 30}})
	p, _ := h.storedPack("gw", 10_000, 1)
	h.ok("gw", Msg{DeclarePack: &DeclarePack{Pack: p, Entries: []PackEntry{{OID: testObject(1, h.addr("bob"), 10), Owner: h.addr("bob"), Name: "x", Territory: "home", Length: 10, Content: testContent(1)}}}})
	if _, err := h.file(p); err == nil {
		t.Fatal("a pack with no entries was kept")
	}
	if tr := h.territory("gw", "packs"); tr.Used != 0 {
		t.Fatalf("gw pays %d for a pack that went", tr.Used)
	}
}
