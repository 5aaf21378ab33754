package ledger

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/types"
)

const testChain = "deoss-test"

// harness drives a ledger one block at a time over a MemKV, with named
// deterministic keys, and checks the invariants after every block.
type harness struct {
	t      *testing.T
	kv     *MemKV
	l      *Ledger
	height int64
	now    int64
	keys   map[string]*auth.Key
	params Params
	// lastFee is the fee of the last transaction a block ran.
	lastFee uint64
	// ended holds the events of the last block's end.
	ended []Event
	// step, if set, runs the blocks that until waits with (one block of
	// one second otherwise).
	step func()
}

// newHarness runs a chain with the dev parameters but free of fees and
// deposits and with proofs off, so that the tests of the rest count coins
// and blocks simply; the tests of fees and proofs use newHarnessWith.
func newHarness(t *testing.T, dev bool) *harness {
	return newHarnessWith(t, dev, func(p *Params) {
		p.FeePerTx, p.FeePerKiB, p.GatewayDeposit, p.EpochSeconds = 0, 0, 0, 0
	})
}

func newHarnessWith(t *testing.T, dev bool, edit func(*Params)) *harness {
	h := &harness{t: t, kv: NewMemKV(), now: 1_700_000_000, keys: map[string]*auth.Key{}}
	h.l = New(h.kv, nil)
	h.params = DefaultParams()
	edit(&h.params)
	g := &Genesis{ChainID: testChain, Dev: dev, Params: h.params}
	for _, name := range []string{"alice", "bob", "gw", "gw2"} {
		g.Accounts = append(g.Accounts, GenesisAccount{Address: h.addr(name), Balance: 1_000_000})
	}
	for i := range 14 {
		g.Accounts = append(g.Accounts, GenesisAccount{Address: h.addr(nodeName(i)), Balance: 10_000})
	}
	if err := h.l.InitChain(g); err != nil {
		t.Fatal(err)
	}
	h.commit()
	return h
}

func nodeName(i int) string { return fmt.Sprintf("node%02d", i) }

func (h *harness) key(name string) *auth.Key {
	if k, ok := h.keys[name]; ok {
		return k
	}
	seed := make([]byte, 32)
	copy(seed, name)
	k, err := auth.FromSeed(seed)
	if err != nil {
		h.t.Fatal(err)
	}
	h.keys[name] = k
	return k
}

func (h *harness) addr(name string) types.Address { return h.key(name).Address() }

// sign makes a transaction from name with the account's next nonce (plus
// skip).
func (h *harness) sign(name string, m Msg, skip uint64) []byte {
	tx := Tx{ChainID: testChain, Nonce: h.account(name).Nonce + skip, Msg: m}
	tx.Sign(h.key(name))
	return tx.Encode()
}

// block runs one block of raw transactions, advancing time by dt seconds.
func (h *harness) block(dt int64, txs ...[]byte) []Result {
	h.height++
	h.now += dt
	hash := types.Sum([]byte{byte(h.height), byte(h.height >> 8), byte(h.height >> 16)})
	h.l.BeginBlock(h.height, h.now, hash[:])
	var out []Result
	for _, b := range txs {
		h.lastFee = h.params.FeePerTx + h.params.FeePerKiB*uint64((len(b)+1023)/1024)
		out = append(out, h.l.DeliverTx(b))
	}
	h.ended = h.l.EndBlock()
	h.commit()
	return out
}

func (h *harness) commit() {
	changes, _ := h.l.Commit()
	h.kv.Apply(changes)
	h.checkInvariants()
}

// do runs one message from name in its own block and returns its result.
func (h *harness) do(name string, m Msg) Result { return h.block(1, h.sign(name, m, 0))[0] }

func (h *harness) ok(name string, m Msg) {
	h.t.Helper()
	if r := h.do(name, m); r.Code != CodeOK {
		h.t.Fatalf("%s %s: code %d: %s", name, m.Name(), r.Code, r.Log)
	}
}

func (h *harness) fail(name string, m Msg, want Code) {
	h.t.Helper()
	if r := h.do(name, m); r.Code != want {
		h.t.Fatalf("%s %s: code %d (%s), want %d", name, m.Name(), r.Code, r.Log, want)
	}
}

func query[T any](h *harness, path string) T {
	h.t.Helper()
	var v T
	b, err := h.l.Query(path)
	if err != nil {
		h.t.Fatalf("query %s: %v", path, err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		h.t.Fatal(err)
	}
	return v
}

func (h *harness) account(name string) Account {
	return query[Account](h, "account/"+h.addr(name).String())
}

func (h *harness) territory(owner, name string) Territory {
	return query[Territory](h, "territory/"+h.addr(owner).String()+"/"+name)
}

func (h *harness) node(i int) Node { return query[Node](h, "node/"+h.addr(nodeName(i)).String()) }

func (h *harness) file(fid types.FID) (File, error) {
	var f File
	b, err := h.l.Query("file/" + fid.String())
	if err != nil {
		return f, err
	}
	return f, json.Unmarshal(b, &f)
}

// checkInvariants: space is never negative or overcommitted, and every node's
// assigned bytes equal the columns it is assigned.
func (h *harness) checkInvariants() {
	h.t.Helper()
	s := state{newOverlay(h.kv)}
	for _, t := range all[Territory](s, pTerritory) {
		_, isGateway := load[Gateway](s, addrKey(pGateway, t.Owner)) // dead bytes of packs may overdraw it
		if !isGateway && (t.Used+t.Locked > t.Total || t.Used > t.Total) {
			h.t.Fatalf("territory %s overcommitted: %+v", t.Name, t)
		}
	}
	for _, n := range all[Node](s, pNode) {
		var sum uint64
		for _, c := range (querier{s: s}).nodeColumns(n.Address) {
			f, _ := load[File](s, fidKey(c.FID))
			sum += ColumnBytes(&f.Layout)
		}
		var claims uint32
		for _, r := range (querier{s: s}).claims(n.Address) {
			sum += r.Bytes
			claims++
		}
		if sum != n.Assigned || claims != n.Claims {
			h.t.Fatalf("node %s: assigned %d, columns and claims sum to %d; %d claims, %d counted", n.Address, n.Assigned, sum, claims, n.Claims)
		}
	}
	h.checkHealth(s)
	h.checkKeys(s)
	h.checkPacks(s)
}

// checkPacks: every pack's account is a recount of its entries, and every
// entry is a location of a live object its owner owns.
func (h *harness) checkPacks(s state) {
	h.t.Helper()
	type count struct{ entries, liveBytes, live uint64 }
	counts := map[types.FID]*count{}
	s.o.iterate(pPacked, func(k string, v []byte) bool {
		var o PackedObject
		mustUnmarshal(v, &o)
		if !s.flag(ownerKey(o.OID, o.Owner)) || o.Charge != PackCharge(o.Length) {
			h.t.Fatalf("object %s: owner record or charge wrong: %+v", o.OID, o)
		}
		credited := 0
		for _, loc := range o.Locations {
			if !s.flag(packEntryKey(loc.Pack, o.OID)) {
				h.t.Fatalf("object %s: no entry in pack %s", o.OID, loc.Pack)
			}
			c := counts[loc.Pack]
			if c == nil {
				c = &count{}
				counts[loc.Pack] = c
			}
			c.entries++
			c.liveBytes += o.Length
			if loc.Credited {
				c.live += o.Charge
				credited++
			}
		}
		if credited != 1 {
			h.t.Fatalf("object %s credited in %d packs", o.OID, credited)
		}
		return true
	})
	n := 0
	s.o.iterate(pPackEntry, func(string, []byte) bool { n++; return true })
	for _, f := range all[File](s, pFile) {
		if f.Pack == nil {
			continue
		}
		c := counts[f.FID]
		if c == nil {
			c = &count{}
		}
		if f.Pack.Entries != c.entries || f.Pack.LiveBytes != c.liveBytes || f.Pack.Live != c.live || f.Pack.Credit != min(c.live, Charge(&f.Layout)) {
			h.t.Fatalf("pack %s: account %+v, recount %+v", f.FID, *f.Pack, *c)
		}
		n -= int(c.entries)
	}
	if n != 0 {
		h.t.Fatalf("%d pack entries in no pack's account", n)
	}
}

// checkKeys: every key has its file-key entry and names a file its owner
// owns; every file-key entry has its key.
func (h *harness) checkKeys(s state) {
	h.t.Helper()
	n := 0
	s.o.iterate(pObject, func(k string, v []byte) bool {
		var o Object
		mustUnmarshal(v, &o)
		var owner types.Address
		copy(owner[:], k[len(pObject):])
		if !s.flag(pFileKey + string(o.FID[:]) + k[len(pObject):]) {
			h.t.Fatalf("key %q has no file-key entry", o.Key)
		}
		if !s.flag(ownerKey(o.FID, owner)) {
			h.t.Fatalf("key %q names file %s its owner does not own", o.Key, o.FID)
		}
		n++
		return true
	})
	m := 0
	s.o.iterate(pFileKey, func(k string, _ []byte) bool {
		if s.o.get(pObject+k[len(pFileKey)+len(types.FID{}):]) == nil {
			h.t.Fatalf("file-key entry %x has no key", k)
		}
		m++
		return true
	})
	if n != m {
		h.t.Fatalf("%d keys, %d file-key entries", n, m)
	}
}

// checkHealth: the histogram is a full recount of the stored files' rated
// health; every unhealthy column of one has an order and every order such a
// column; and once no sweep is running, every column's rating is its
// node's state.
func (h *harness) checkHealth(s state) {
	h.t.Helper()
	var recount Health
	sweeping := false
	s.o.iterate(pSweep, func(string, []byte) bool { sweeping = true; return false })
	orders := 0
	for _, f := range all[File](s, pFile) {
		if !counted(&f) {
			continue
		}
		if got := health(&f); got != f.Health {
			h.t.Fatalf("file %s: health %d recorded, %d counted", f.FID, f.Health, got)
		}
		if (f.State == FileLost) != (f.Health < types.DataShards) && !f.Uncharged {
			h.t.Fatalf("file %s is %s at health %d", f.FID, f.State, f.Health)
		}
		recount[f.Health].Files++
		recount[f.Health].Bytes += f.Layout.Size
		for j, c := range f.Columns {
			_, ordered := load[Restoral](s, orderKey(f.FID, uint8(j)))
			if ordered != (c.Down != "") {
				h.t.Fatalf("file %s column %d: down %q, ordered %v", f.FID, j, c.Down, ordered)
			}
			if ordered {
				orders++
			}
			if sweeping || c.Down == DownLost {
				continue
			}
			want := DownExiting
			if n, ok := load[Node](s, addrKey(pNode, c.Node)); ok {
				want = nodeDown(n.State)
			}
			if c.Down != want {
				h.t.Fatalf("file %s column %d: rated %q, its node is %q", f.FID, j, c.Down, want)
			}
		}
	}
	if got := (querier{s: s}).health(); got != recount {
		h.t.Fatalf("histogram %+v, recount %+v", got, recount)
	}
	if n := len(all[Restoral](s, pOrder)); n != orders {
		h.t.Fatalf("%d orders, %d unhealthy columns", n, orders)
	}
}

// layoutOf returns a synthetic layout of size bytes and its FID.
func layoutOf(size uint64, salt byte) (types.Layout, types.FID) {
	l := types.Layout{Version: types.FormatV1, Size: size}
	for i := range types.ProfileV1.Segments(size, types.EncryptionNone) {
		seg := types.SegmentLayout{Hash: types.Sum([]byte{salt, byte(i)})}
		for j := range seg.Fragments {
			seg.Fragments[j] = types.Sum([]byte{salt, byte(i), byte(j)})
		}
		l.Segments = append(l.Segments, seg)
	}
	return l, codec.FileID(&l)
}

// nodes returns the addresses of nodes first..first+11.
func (h *harness) nodes(first int) [types.TotalShards]types.Address {
	var cols [types.TotalShards]types.Address
	for j := range cols {
		cols[j] = h.addr(nodeName(first + j))
	}
	return cols
}

// setup registers gateways and 14 nodes, and gives alice a 1 GiB territory
// "home" and an authorization for gw.
func (h *harness) setup() {
	h.ok("gw", Msg{RegisterGateway: &RegisterGateway{Endpoint: "http://127.0.0.1:7000"}})
	h.ok("gw2", Msg{RegisterGateway: &RegisterGateway{Endpoint: "http://127.0.0.1:7001"}})
	for i := range 14 {
		h.ok(nodeName(i), Msg{RegisterNode: &RegisterNode{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", 8000+i), Capacity: 1 << 30, Stake: 1000}})
	}
	h.ok("alice", Msg{BuyTerritory: &BuyTerritory{Name: "home", GiB: 1, Days: 30}})
	h.ok("alice", Msg{Authorize: &Authorize{Gateway: h.addr("gw")}})
}

func (h *harness) declare(gw, owner string, size uint64, salt byte, first int) (types.FID, Result) {
	l, fid := layoutOf(size, salt)
	r := h.do(gw, Msg{DeclareFile: &DeclareFile{Owner: h.addr(owner), FID: fid, Name: fmt.Sprintf("file-%d", salt),
		Territory: "home", Layout: l, Columns: h.nodes(first)}})
	return fid, r
}

func (h *harness) reportAll(fid types.FID, first int) {
	for j := range types.TotalShards {
		h.ok(nodeName(first+j), Msg{ReportColumn: &ReportColumn{FID: fid, Column: uint8(j)}})
	}
}
