package ledger

import (
	"encoding/binary"

	"github.com/deoss/deoss/internal/types"
)

// Keys. Every entity lives under a short prefix; the indexes make the queries
// (a user's files, a node's columns) and order expiry ordered scans.
//
//	a/<addr>                        Account
//	t/<owner>/<name>                Territory
//	g/<addr>                        Gateway
//	z/<user>/<gateway>              authorization (empty value)
//	n/<addr>                        Node
//	f/<fid>                         File
//	uf/<owner>/<fid>                a user's file (empty value)
//	nc/<node>/<fid>/<column>        a node's column (empty value)
//	od/<deadline BE8>/<fid>         an order's deadline (empty value)
//	meta/params, meta/genesis       Params, dev flag and chain id
const (
	pAccount   = "a/"
	pTerritory = "t/"
	pGateway   = "g/"
	pAuthz     = "z/"
	pNode      = "n/"
	pFile      = "f/"
	pUserFile  = "uf/"
	pNodeCol   = "nc/"
	pDeadline  = "od/"
	// A file's owners (fo/<fid><owner> -> Owner) and their count
	// (fn/<fid>): keys of their own, so that a file with many owners (the
	// empty v1 file has everyone) is not one record that grows.
	pFileOwner  = "fo/"
	pOwnerCount = "fn/"
	kParams     = "meta/params"
	kChain      = "meta/chain"
)

func addrKey(p string, a types.Address) string { return p + string(a[:]) }

func fidKey(f types.FID) string { return pFile + string(f[:]) }

func territoryKey(owner types.Address, name string) string {
	return pTerritory + string(owner[:]) + "/" + name
}

func authzKey(user, gw types.Address) string { return pAuthz + string(user[:]) + string(gw[:]) }

func userFileKey(owner types.Address, f types.FID) string {
	return pUserFile + string(owner[:]) + string(f[:])
}

func nodeColKey(node types.Address, f types.FID, col uint8) string {
	return pNodeCol + string(node[:]) + string(f[:]) + string([]byte{col})
}

func deadlineKey(deadline int64, f types.FID) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(deadline))
	return pDeadline + string(b[:]) + string(f[:])
}

// Params are the chain's economic and timing parameters, fixed at genesis.
type Params struct {
	// PricePerGiBDay is the cost of one GiB of territory for one day.
	PricePerGiBDay uint64 `json:"price_per_gib_day"`
	// FaucetAmount is what one Faucet message credits (dev chains only).
	FaucetAmount uint64 `json:"faucet_amount"`
	// OrderTTL is how long, in seconds of block time, a declared file may
	// wait for its 12 reports before the order expires.
	OrderTTL int64 `json:"order_ttl_seconds"`
	// MinNodeStake is the least stake a storage node registers with.
	MinNodeStake uint64 `json:"min_node_stake"`

	// FeePerTx + FeePerKiB x (size in KiB, rounded up) is what every
	// transaction pays (the dev faucet excepted), checked in CheckTx.
	FeePerTx  uint64 `json:"fee_per_tx"`
	FeePerKiB uint64 `json:"fee_per_kib"`
	// GatewayDeposit is locked by RegisterGateway, returned on unregister.
	GatewayDeposit uint64 `json:"gateway_deposit"`

	// EpochSeconds is the proof epoch: each node with reported v2 columns
	// is challenged once in each. 0 turns proofs off.
	EpochSeconds int64 `json:"epoch_seconds"`
	// ProofWindow is the time a node has to answer a challenge.
	ProofWindow int64 `json:"proof_window_seconds"`
	// FaultPenalty is the stake a missed or wrong proof costs; LostPenalty
	// what a column the node reports lost costs.
	FaultPenalty uint64 `json:"fault_penalty"`
	LostPenalty  uint64 `json:"lost_penalty"`
	// SuspectAfter and FaultyAfter are the faults in a row that make a
	// node suspect, then faulty.
	SuspectAfter uint32 `json:"suspect_after"`
	FaultyAfter  uint32 `json:"faulty_after"`
	// RewardEpochs: each epoch the pool pays 1/RewardEpochs of itself to
	// the nodes, in proportion to the bytes they proved in it.
	RewardEpochs uint64 `json:"reward_epochs"`
	// ReportsPerEpoch bounds each gateway's ReportMissing messages.
	ReportsPerEpoch uint32 `json:"reports_per_epoch"`

	// RepairDelay11, 9 and 7: how long a restoral order waits before it
	// may be claimed when its file has 11, 9-10 and 7-8 healthy columns
	// (6 or fewer: at once).
	RepairDelay11 int64 `json:"repair_delay_11_seconds"`
	RepairDelay9  int64 `json:"repair_delay_9_seconds"`
	RepairDelay7  int64 `json:"repair_delay_7_seconds"`
	// MaxClaims bounds each node's open claims. A claim lapses after
	// ClaimSeconds + bytes / ClaimRate; LapseBan lapses in a row bar the
	// node from claiming for BanSeconds.
	MaxClaims    uint32 `json:"max_claims"`
	ClaimSeconds int64  `json:"claim_seconds"`
	ClaimRate    uint64 `json:"claim_rate_bytes_per_second"`
	LapseBan     uint32 `json:"lapse_ban"`
	BanSeconds   int64  `json:"ban_seconds"`
}

// DefaultParams are the parameters of a dev chain: small fees, an epoch of
// 30 s.
func DefaultParams() Params {
	return Params{PricePerGiBDay: 10, FaucetAmount: 1_000_000_000, OrderTTL: 3600, MinNodeStake: 1000,
		FeePerTx: 10, FeePerKiB: 1, GatewayDeposit: 10_000,
		EpochSeconds: 30, ProofWindow: 20, FaultPenalty: 10, LostPenalty: 2, SuspectAfter: 2, FaultyAfter: 6,
		RewardEpochs: 100, ReportsPerEpoch: 64,
		RepairDelay11: 20, RepairDelay9: 5, RepairDelay7: 1,
		MaxClaims: 4, ClaimSeconds: 60, ClaimRate: 1 << 20, LapseBan: 3, BanSeconds: 60}
}

// NetworkParams are the defaults of a chain without the faucet: an hour's
// epoch, fees and deposits that make spam cost.
func NetworkParams() Params {
	return Params{PricePerGiBDay: 10, OrderTTL: 3600, MinNodeStake: 100_000,
		FeePerTx: 1000, FeePerKiB: 100, GatewayDeposit: 1_000_000,
		EpochSeconds: 3600, ProofWindow: 1800, FaultPenalty: 1000, LostPenalty: 200, SuspectAfter: 2, FaultyAfter: 6,
		RewardEpochs: 720, ReportsPerEpoch: 64,
		RepairDelay11: 6 * 3600, RepairDelay9: 3600, RepairDelay7: 600,
		MaxClaims: 8, ClaimSeconds: 600, ClaimRate: 1 << 20, LapseBan: 3, BanSeconds: 86400}
}

type chainInfo struct {
	ChainID string
	Dev     bool
}

// Account is a balance and the nonce its next transaction must carry.
type Account struct {
	Balance uint64 `json:"balance"`
	Nonce   uint64 `json:"nonce"`
}

// Territory is space a user bought.
type Territory struct {
	Owner types.Address `json:"owner"`
	Name  string        `json:"name"`
	// Total, Used and Locked are bytes. Locked is held by pending orders;
	// Used by stored files. Used + Locked <= Total always.
	Total  uint64 `json:"total_bytes"`
	Used   uint64 `json:"used_bytes"`
	Locked uint64 `json:"locked_bytes"`
	// Expires is the block time (Unix seconds) at which it stops taking files.
	Expires int64 `json:"expires"`
}

// Free is the space a new file may take.
func (t *Territory) Free() uint64 {
	if t.Used+t.Locked >= t.Total { // a pack's dead bytes may overdraw it
		return 0
	}
	return t.Total - t.Used - t.Locked
}

// Active reports whether the territory takes new files at block time now.
func (t *Territory) Active(now int64) bool { return now < t.Expires }

// Gateway is a registered gateway.
type Gateway struct {
	Address   types.Address `json:"address"`
	Endpoint  string        `json:"endpoint"`
	CacheOnly bool          `json:"cache_only,omitempty"`
	// Deposit is what registering locked; unregistering returns it.
	Deposit uint64 `json:"deposit,omitempty"`
}

// Node states.
const (
	NodeActive  = "active"
	NodeExiting = "exiting"
)

// Node is a registered storage node.
type Node struct {
	Address  types.Address `json:"address"`
	Endpoint string        `json:"endpoint"`
	Capacity uint64        `json:"capacity_bytes"`
	// Assigned is the bytes of every column assigned to the node, reported
	// or not: what it has promised to keep.
	Assigned uint64 `json:"assigned_bytes"`
	Stake    uint64 `json:"stake"`
	State    string `json:"state"`

	// Proof record: proofs passed, missed or wrong (Missed), consecutive
	// faults (Faults), bytes proven for rewards, columns reported lost,
	// and what rewards and penalties came to.
	Passed    uint64 `json:"proofs_passed,omitempty"`
	Missed    uint64 `json:"proofs_missed,omitempty"`
	Faults    uint32 `json:"faults_in_a_row,omitempty"`
	Proven    uint64 `json:"proven_bytes,omitempty"`
	Lost      uint64 `json:"columns_lost,omitempty"`
	Rewards   uint64 `json:"rewards,omitempty"`
	Penalties uint64 `json:"penalties,omitempty"`

	// Repair record: claims open now, lapses in a row and in all, the
	// block time it may claim again from, and columns it restored.
	Claims      uint32 `json:"claims_open,omitempty"`
	Lapses      uint32 `json:"lapses_in_a_row,omitempty"`
	LapsesTotal uint64 `json:"lapses,omitempty"`
	BannedUntil int64  `json:"barred_until,omitempty"`
	Restored    uint64 `json:"columns_restored,omitempty"`
}

// An order's bounds: its end is OrderEnds order TTLs after its declaration,
// and its columns are reassigned at most MaxReassigns times in all (three
// a column).
const (
	OrderEnds    = 3
	MaxReassigns = 3 * types.TotalShards
)

// Free is the space the node can still be assigned.
func (n *Node) Free() uint64 {
	if n.Assigned > n.Capacity {
		return 0
	}
	return n.Capacity - n.Assigned
}

// File states.
const (
	FilePending = "pending" // declared, waiting for reports
	FileStored  = "stored"  // all 12 columns reported
)

// Owner is one owner of a file, with the name they gave it and the territory
// it is charged to.
type Owner struct {
	Address   types.Address `json:"address"`
	Name      string        `json:"name"`
	Territory string        `json:"territory"`
	// Private: gateways serve the file to this owner only (or with a
	// share link the owner signed). The bytes on nodes are not hidden by
	// it: encryption does that.
	Private bool `json:"private,omitempty"`
}

// Column is where one column of a file lives.
type Column struct {
	Node     types.Address `json:"node"`
	Reported bool          `json:"reported"`
	// Down says why the column is not healthy ("" when it is): its
	// node's state, or "lost". Only a stored file's columns are rated.
	Down string `json:"down,omitempty"`
}

// File is a file and, while pending, its storage order.
type File struct {
	FID    types.FID    `json:"fid"`
	Layout types.Layout `json:"layout"`
	// Owners: in the chain's record, the declarer; a query's answer lists
	// the owners (the first MaxOwnersListed in address order) and counts
	// them in OwnerCount.
	Owners     []Owner                   `json:"owners"`
	OwnerCount uint64                    `json:"owner_count,omitempty"`
	Gateway    types.Address             `json:"gateway"` // the declaring gateway
	Columns    [types.TotalShards]Column `json:"columns"`
	State      string                    `json:"state"`
	// Deadline is the block time an unfinished order expires at. A
	// reassignment moves it, never past End (OrderEnds order TTLs from
	// the declaration), and at most MaxReassigns times.
	Deadline  int64  `json:"deadline,omitempty"`
	End       int64  `json:"order_end,omitempty"`
	Reassigns uint32 `json:"reassigns,omitempty"`
	// Declared and StoredAt are block heights.
	Declared int64 `json:"declared_height"`
	StoredAt int64 `json:"stored_height,omitempty"`
	// Health is a stored file's healthy columns (repair.go). Uncharged:
	// it fell below 4 once and its owners' space was released for good.
	Health    uint8 `json:"health,omitempty"`
	Uncharged bool  `json:"uncharged,omitempty"`
	// Pack is set once the file is declared a pack (DeclarePack).
	Pack *PackStats `json:"pack,omitempty"`
}

// Charge is the territory space a file takes: its padded segments, since
// that is what the nodes keep (v1 pads the last segment to 32 MiB, v2 to a
// multiple of 64 KiB).
func Charge(l *types.Layout) uint64 { return l.PaddedSize() }

// ColumnBytes is what one column of the file takes on its node.
func ColumnBytes(l *types.Layout) uint64 { return l.ColumnBytes() }

// MaxOwnersListed bounds the owners a file query lists.
const MaxOwnersListed = 100

// HasOwner reports whether a is one of the file's owners listed; a query's
// answer lists them all unless OwnerCount says there are more (then ask
// owner/<fid>/<addr>).
func (f *File) HasOwner(a types.Address) bool { return f.owner(a) >= 0 }

func (f *File) owner(a types.Address) int {
	for i, o := range f.Owners {
		if o.Address == a {
			return i
		}
	}
	return -1
}

// state is typed access to the overlay.
type state struct{ o *overlay }

func load[T any](s state, key string) (*T, bool) {
	b := s.o.get(key)
	if b == nil {
		return nil, false
	}
	var v T
	mustUnmarshal(b, &v)
	return &v, true
}

func (s state) put(key string, v any) { s.o.set(key, marshal(v)) }

func (s state) flag(key string) bool { return s.o.get(key) != nil }

func (s state) setFlag(key string) { s.o.set(key, []byte{1}) }

func (s state) account(a types.Address) *Account {
	if acc, ok := load[Account](s, addrKey(pAccount, a)); ok {
		return acc
	}
	return &Account{}
}

func (s state) putAccount(a types.Address, acc *Account) { s.put(addrKey(pAccount, a), acc) }

func (s state) params() Params {
	p, ok := load[Params](s, kParams)
	if !ok {
		return DefaultParams()
	}
	return *p
}

func (s state) chain() chainInfo {
	c, _ := load[chainInfo](s, kChain)
	if c == nil {
		return chainInfo{}
	}
	return *c
}

// fee is what tx, of n bytes, pays. The dev faucet is free: it is how an
// empty account gets its first coins.
func (s state) fee(tx *Tx, n int) uint64 {
	if tx.Msg.Faucet != nil && s.chain().Dev {
		return 0
	}
	p := s.params()
	kib := uint64(n+1023) / 1024
	f, err := mul(p.FeePerKiB, kib)
	if err != nil || f+p.FeePerTx < f {
		return ^uint64(0)
	}
	return f + p.FeePerTx
}
