package ledger

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/deoss/deoss/internal/types"
)

// Genesis is the chain's initial state.
type Genesis struct {
	ChainID string `json:"chain_id"`
	// Dev enables the faucet. Never on a real network.
	Dev      bool             `json:"dev"`
	Params   Params           `json:"params"`
	Accounts []GenesisAccount `json:"accounts"`
}

// GenesisAccount is an initial balance.
type GenesisAccount struct {
	Address types.Address `json:"address"`
	Balance uint64        `json:"balance"`
}

// Event is a state change that subscribers (gateways, nodes) act on. Type is
// "deoss.<module>"; attributes are strings (CometBFT indexes them).
type Event struct {
	Type  string
	Attrs []Attr
}

// Attr is one event attribute.
type Attr struct{ Key, Value string }

// Result is the outcome of one transaction in a block.
type Result struct {
	Code   Code
	Log    string
	Events []Event
}

// Ledger applies blocks to state. Use: InitChain once on an empty state; then
// for each block BeginBlock, DeliverTx per transaction, EndBlock, Commit.
// CheckTx may be called between blocks. It is not safe for concurrent use.
type Ledger struct {
	base    KV
	appHash []byte
	height  int64
	now     int64 // block time, Unix seconds
	// blockHash is the hash of the block being applied (CometBFT's, from
	// FinalizeBlock): the seed of its challenges.
	blockHash []byte

	o      *overlay
	events []Event

	// checked holds transactions that passed CheckTx, by hash, so that
	// mempool rechecks and DeliverTx skip decoding and the signature.
	// Decoding is a pure function of the bytes, so the cache changes no
	// result, only the work. Only passed transactions are kept (a refused
	// one, of another chain say, costs nothing to hold), and the cache is
	// bounded by their bytes.
	checked      map[[32]byte]*Tx
	checkedBytes int
}

// Bounds of the CheckTx cache (CometBFT's mempool holds 5,000 transactions
// by default).
const (
	maxChecked      = 8192
	maxCheckedBytes = 64 << 20
)

// decode returns the transaction of b, from the CheckTx cache if it is
// there (taken out of it unless keep).
func (l *Ledger) decode(b []byte, keep bool) (*Tx, error) {
	h := TxHash(b)
	if tx, ok := l.checked[h]; ok {
		if !keep {
			delete(l.checked, h)
			l.checkedBytes -= len(b)
		}
		return tx, nil
	}
	return DecodeTx(b)
}

// remember keeps a transaction that passed CheckTx.
func (l *Ledger) remember(b []byte, tx *Tx) {
	h := TxHash(b)
	if _, ok := l.checked[h]; ok {
		return
	}
	if l.checked == nil || len(l.checked) >= maxChecked || l.checkedBytes+len(b) > maxCheckedBytes {
		l.checked, l.checkedBytes = make(map[[32]byte]*Tx), 0
	}
	l.checked[h] = tx
	l.checkedBytes += len(b)
}

// New returns a ledger over committed state with its last app hash.
func New(base KV, appHash []byte) *Ledger {
	return &Ledger{base: base, appHash: appHash, o: newOverlay(base)}
}

// AppHash is the hash of the committed state.
func (l *Ledger) AppHash() []byte { return l.appHash }

// InitChain writes the genesis state. Its changes are committed with the
// first Commit.
func (l *Ledger) InitChain(g *Genesis) error {
	if g.ChainID == "" {
		return fmt.Errorf("genesis: empty chain id")
	}
	s := state{l.o}
	s.put(kChain, chainInfo{ChainID: g.ChainID, Dev: g.Dev})
	s.put(kParams, g.Params)
	for _, a := range g.Accounts {
		acc := s.account(a.Address)
		acc.Balance += a.Balance
		s.putAccount(a.Address, acc)
	}
	return nil
}

// BeginBlock starts a block at a height and block time (Unix seconds), with
// the block's hash (every validator has the same).
func (l *Ledger) BeginBlock(height, unixTime int64, hash []byte) {
	l.height = height
	l.blockHash = append(l.blockHash[:0], hash...)
	// Block times only move forward; a validator's clock never enters.
	l.now = max(l.now, unixTime)
	l.events = nil
}

// CheckTx validates a transaction for the mempool against the latest
// decided state: signature, chain id, a nonce not already used, and a
// balance that pays the fee. A nonce ahead of the account's is allowed,
// because a sender may have several transactions waiting; the block
// enforces the exact order.
func (l *Ledger) CheckTx(b []byte) (*Tx, error) {
	tx, err := l.decode(b, true)
	if err != nil {
		return nil, err
	}
	// The latest decided state: the committed one, plus the writes of a
	// block decided and applied but not committed yet (CometBFT may check
	// a transaction between FinalizeBlock and Commit; a client that saw
	// its faucet transaction in that block must not be told it has no
	// balance). CheckTx only reads.
	decided := state{l.o}
	if tx.ChainID != decided.chain().ChainID {
		return nil, errf(ErrWrongChain, "%q", tx.ChainID)
	}
	acc := decided.account(tx.Sender)
	if tx.Nonce < acc.Nonce {
		return nil, errf(ErrBadNonce, "nonce %d already used (next is %d)", tx.Nonce, acc.Nonce)
	}
	if fee := decided.fee(tx, len(b)); acc.Balance < fee {
		return nil, errf(ErrInsufficientFunds, "the fee is %d, the balance %d", fee, acc.Balance)
	}
	l.remember(b, tx)
	return tx, nil
}

// DeliverTx applies one transaction of the current block. A transaction whose
// signature and nonce are good uses its nonce even when its message fails, so
// a failed transaction can never be replayed later, when it might succeed.
func (l *Ledger) DeliverTx(b []byte) Result {
	tx, err := l.decode(b, false)
	if err != nil {
		return failed(err)
	}
	s := state{l.o}
	if tx.ChainID != s.chain().ChainID {
		return failed(errf(ErrWrongChain, "%q", tx.ChainID))
	}
	acc := s.account(tx.Sender)
	if tx.Nonce != acc.Nonce {
		return failed(errf(ErrBadNonce, "nonce %d, want %d", tx.Nonce, acc.Nonce))
	}
	// The fee is paid first and whatever the message does; a sender who
	// cannot pay it writes nothing, not even an account record.
	fee := s.fee(tx, len(b))
	if acc.Balance < fee {
		return failed(errf(ErrInsufficientFunds, "the fee is %d, the balance %d", fee, acc.Balance))
	}
	acc.Balance -= fee
	acc.Nonce++
	s.putAccount(tx.Sender, acc)
	if fee > 0 {
		_ = l.credit(PoolAddress, fee) // cannot overflow: it came from a balance
	}

	// The message runs on a nested overlay: a failing message leaves no
	// write behind but the nonce.
	outer := l.o
	l.o = newOverlay(outerKV{outer})
	mark := len(l.events)
	err = l.apply(tx)
	inner := l.o
	l.o = outer
	var k kept
	if err != nil && !errors.As(err, &k) {
		l.events = l.events[:mark]
		return failed(err)
	}
	for k, v := range inner.writes {
		outer.writes[k] = v
	}
	if err != nil {
		return Result{Code: CodeOf(err), Log: err.Error(), Events: l.events[mark:]}
	}
	return Result{Code: CodeOK, Events: l.events[mark:]}
}

func failed(err error) Result { return Result{Code: CodeOf(err), Log: err.Error()} }

// EndBlock expires the orders whose deadline has passed, runs the proof
// schedule, re-rates the columns of nodes that changed state (a bounded
// number), lapses restoral claims, and returns the block's events (those of EndBlock itself; DeliverTx returned its own).
func (l *Ledger) EndBlock() []Event {
	mark := len(l.events)
	s := state{l.o}
	for _, k := range l.due(pDeadline) {
		s.o.del(k)
		var fid types.FID
		copy(fid[:], k[len(pDeadline)+8:])
		l.expireOrder(fid)
	}
	l.proofsEndBlock()
	l.sweepEndBlock()
	l.repairEndBlock()
	return l.events[mark:]
}

// Commit ends the block: it returns the block's sorted changes for the caller
// to persist together with the new app hash, and starts a fresh overlay. The
// caller applies the changes to its KV before the next block.
func (l *Ledger) Commit() (changes []Change, appHash []byte) {
	changes = l.o.changes()
	l.appHash = chainHash(l.appHash, changes)
	l.o = newOverlay(l.base)
	return changes, l.appHash
}

// PendingHash returns the app hash Commit will return, without committing
// (CometBFT wants it at the end of FinalizeBlock).
func (l *Ledger) PendingHash() []byte { return chainHash(l.appHash, l.o.changes()) }

func (l *Ledger) emit(typ string, kv ...string) {
	e := Event{Type: typ}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Attrs = append(e.Attrs, Attr{Key: kv[i], Value: kv[i+1]})
	}
	l.events = append(l.events, e)
}

func (l *Ledger) apply(tx *Tx) error {
	m, err := tx.Msg.one()
	if err != nil {
		return err
	}
	from := tx.Sender
	switch m := m.(type) {
	case *Transfer:
		return l.transfer(from, m)
	case *Faucet:
		return l.faucet(from)
	case *BuyTerritory:
		return l.buyTerritory(from, m)
	case *ExpandTerritory:
		return l.expandTerritory(from, m)
	case *RenewTerritory:
		return l.renewTerritory(from, m)
	case *RegisterGateway:
		return l.registerGateway(from, m)
	case *UpdateGateway:
		return l.updateGateway(from, m)
	case *UnregisterGateway:
		return l.unregisterGateway(from)
	case *Authorize:
		return l.authorize(from, m)
	case *Revoke:
		return l.revoke(from, m)
	case *RegisterNode:
		return l.registerNode(from, m)
	case *UpdateNode:
		return l.updateNode(from, m)
	case *ExitNode:
		return l.exitNode(from)
	case *DeclareFile:
		return l.declareFile(from, m)
	case *ReassignColumn:
		return l.reassignColumn(from, m)
	case *ReportColumn:
		return l.reportColumn(from, m)
	case *DeleteFile:
		return l.deleteFile(from, m)
	case *SubmitProof:
		return l.submitProof(from, m)
	case *ReportMissing:
		return l.reportMissing(from, m)
	case *ReportLost:
		return l.reportLost(from, m)
	case *IncreaseStake:
		return l.increaseStake(from, m)
	case *ClaimRestoral:
		return l.claimRestoral(from, m)
	case *CompleteRestoral:
		return l.completeRestoral(from, m)
	case *CreateBucket:
		return l.createBucket(from, m)
	case *DeleteBucket:
		return l.deleteBucket(from, m)
	case *PutObject:
		return l.putObject(from, m)
	case *DeleteObjects:
		return l.deleteObjects(from, m)
	case *DeclarePack:
		return l.declarePack(from, m)
	}
	return errf(ErrMalformed, "unknown message %T", m)
}

// outerKV lets a nested overlay read through its parent's uncommitted writes.
type outerKV struct{ o *overlay }

func (k outerKV) Get(key []byte) []byte { return k.o.get(string(key)) }

func (k outerKV) Iterate(prefix []byte, fn func(key, value []byte) bool) {
	k.o.iterate(string(prefix), func(key string, v []byte) bool { return fn([]byte(key), v) })
}

func beUint64(s string) uint64 {
	var v uint64
	for i := 0; i < 8; i++ {
		v = v<<8 | uint64(s[i])
	}
	return v
}

// ValidName accepts names of 1..255 bytes without control characters or path
// separators, for territories and file names alike.
func ValidName(s string) error {
	if len(s) == 0 || len(s) > 255 {
		return errf(ErrInvalid, "name must be 1 to 255 bytes")
	}
	if strings.ContainsAny(s, "/\\") {
		return errf(ErrInvalid, "name %q contains a path separator", s)
	}
	if s == "." || s == ".." {
		return errf(ErrInvalid, "name %q names a folder", s)
	}
	if !utf8.ValidString(s) {
		return errf(ErrInvalid, "name is not UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errf(ErrInvalid, "name contains a control character")
		}
	}
	return nil
}
