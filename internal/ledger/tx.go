package ledger

import (
	"crypto/sha256"
	"fmt"
	"reflect"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/types"
)

// MaxTxBytes bounds one transaction. The largest is a storage order of
// types.MaxSegments segments (13 hashes each, about 4.4 MB); the chain's
// mempool and block limits are set from this constant (internal/chain).
const MaxTxBytes = 5 << 20

// Tx is a signed transaction. The signature covers the body: everything but
// the signature, with the chain id (a transaction for one chain is worthless on
// another) and the sender's nonce (each transaction is accepted once).
//
// On the wire a transaction is the CBOR array [body, signature], body being
// the canonical CBOR of the fields below. The signature covers the body bytes
// as sent, so checking it needs no re-encoding.
type Tx struct {
	ChainID string        `cbor:"1,keyasint"`
	Sender  types.Address `cbor:"2,keyasint"`
	Nonce   uint64        `cbor:"3,keyasint"`
	Msg     Msg           `cbor:"4,keyasint"`
	Sig     []byte        `cbor:"-"`
}

type envelope struct {
	_    struct{} `cbor:",toarray"`
	Body []byte
	Sig  []byte
}

// Msg holds exactly one message. (A struct of optional fields is the simplest
// canonical CBOR union: the field number is the message type.)
type Msg struct {
	Transfer          *Transfer          `cbor:"1,keyasint,omitempty"`
	Faucet            *Faucet            `cbor:"2,keyasint,omitempty"`
	BuyTerritory      *BuyTerritory      `cbor:"3,keyasint,omitempty"`
	ExpandTerritory   *ExpandTerritory   `cbor:"4,keyasint,omitempty"`
	RenewTerritory    *RenewTerritory    `cbor:"5,keyasint,omitempty"`
	RegisterGateway   *RegisterGateway   `cbor:"6,keyasint,omitempty"`
	UpdateGateway     *UpdateGateway     `cbor:"7,keyasint,omitempty"`
	UnregisterGateway *UnregisterGateway `cbor:"8,keyasint,omitempty"`
	Authorize         *Authorize         `cbor:"9,keyasint,omitempty"`
	Revoke            *Revoke            `cbor:"10,keyasint,omitempty"`
	RegisterNode      *RegisterNode      `cbor:"11,keyasint,omitempty"`
	UpdateNode        *UpdateNode        `cbor:"12,keyasint,omitempty"`
	ExitNode          *ExitNode          `cbor:"13,keyasint,omitempty"`
	DeclareFile       *DeclareFile       `cbor:"14,keyasint,omitempty"`
	ReassignColumn    *ReassignColumn    `cbor:"15,keyasint,omitempty"`
	ReportColumn      *ReportColumn      `cbor:"16,keyasint,omitempty"`
	DeleteFile        *DeleteFile        `cbor:"17,keyasint,omitempty"`
	SubmitProof       *SubmitProof       `cbor:"18,keyasint,omitempty"`
	ReportMissing     *ReportMissing     `cbor:"19,keyasint,omitempty"`
	ReportLost        *ReportLost        `cbor:"20,keyasint,omitempty"`
	IncreaseStake     *IncreaseStake     `cbor:"21,keyasint,omitempty"`
	ClaimRestoral     *ClaimRestoral     `cbor:"22,keyasint,omitempty"`
	CompleteRestoral  *CompleteRestoral  `cbor:"23,keyasint,omitempty"`
	CreateBucket      *CreateBucket      `cbor:"24,keyasint,omitempty"`
	DeleteBucket      *DeleteBucket      `cbor:"25,keyasint,omitempty"`
	PutObject         *PutObject         `cbor:"26,keyasint,omitempty"`
	DeleteObjects     *DeleteObjects     `cbor:"27,keyasint,omitempty"`
	DeclarePack       *DeclarePack       `cbor:"28,keyasint,omitempty"`
}

// one returns the single message set, or an error.
func (m *Msg) one() (any, error) {
	var found any
	v := reflect.ValueOf(m).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.IsNil() {
			continue
		}
		if found != nil {
			return nil, errf(ErrMalformed, "more than one message")
		}
		found = f.Interface()
	}
	if found == nil {
		return nil, errf(ErrMalformed, "no message")
	}
	return found, nil
}

// Name is the message's type name, for logs and events.
func (m *Msg) Name() string {
	v, err := m.one()
	if err != nil {
		return "invalid"
	}
	return reflect.TypeOf(v).Elem().Name()
}

// Balances.
type (
	// Transfer moves Amount from the sender to To.
	Transfer struct {
		To     types.Address `cbor:"1,keyasint"`
		Amount uint64        `cbor:"2,keyasint"`
	}
	// Faucet credits the sender with the genesis faucet amount; only on dev
	// chains.
	Faucet struct{}
)

// Territories.
type (
	// BuyTerritory buys GiB of space for Days under a new name.
	BuyTerritory struct {
		Name string `cbor:"1,keyasint"`
		GiB  uint64 `cbor:"2,keyasint"`
		Days uint64 `cbor:"3,keyasint"`
	}
	// ExpandTerritory adds GiB until the territory's expiry, paid pro rata.
	ExpandTerritory struct {
		Name string `cbor:"1,keyasint"`
		GiB  uint64 `cbor:"2,keyasint"`
	}
	// RenewTerritory extends the territory by Days (from now if it expired).
	RenewTerritory struct {
		Name string `cbor:"1,keyasint"`
		Days uint64 `cbor:"2,keyasint"`
	}
)

// Gateways.
type (
	// RegisterGateway registers the sender as a gateway at Endpoint (a base
	// URL). A cache-only gateway serves peers and reads but takes no uploads.
	RegisterGateway struct {
		Endpoint  string `cbor:"1,keyasint"`
		CacheOnly bool   `cbor:"2,keyasint,omitempty"`
	}
	UpdateGateway struct {
		Endpoint string `cbor:"1,keyasint"`
	}
	UnregisterGateway struct{}
	// Authorize lets Gateway declare files for the sender and charge them to
	// the sender's territories.
	Authorize struct {
		Gateway types.Address `cbor:"1,keyasint"`
	}
	Revoke struct {
		Gateway types.Address `cbor:"1,keyasint"`
	}
)

// Storage nodes.
type (
	// RegisterNode registers the sender as a storage node, locking Stake.
	RegisterNode struct {
		Endpoint string `cbor:"1,keyasint"`
		Capacity uint64 `cbor:"2,keyasint"` // bytes
		Stake    uint64 `cbor:"3,keyasint"`
	}
	UpdateNode struct {
		Endpoint string `cbor:"1,keyasint"`
		Capacity uint64 `cbor:"2,keyasint"`
	}
	// ExitNode stops new assignments to the node; it is removed (and its
	// stake returned) once it holds no column.
	ExitNode struct{}
)

// Files.
type (
	// DeclareFile is sent by a gateway that Owner authorized: the storage
	// order for a file with its layout and the node of each column.
	DeclareFile struct {
		Owner     types.Address                    `cbor:"1,keyasint"`
		FID       types.FID                        `cbor:"2,keyasint"`
		Name      string                           `cbor:"3,keyasint"`
		Territory string                           `cbor:"4,keyasint"`
		Layout    types.Layout                     `cbor:"5,keyasint"`
		Columns   [types.TotalShards]types.Address `cbor:"6,keyasint"`
		// Private asks gateways to serve the file to its owner only (a
		// signed request, or a share link the owner signed).
		Private bool `cbor:"7,keyasint,omitempty"`
	}
	// ReassignColumn moves an unreported column to another node (sent by the
	// declaring gateway).
	ReassignColumn struct {
		FID    types.FID     `cbor:"1,keyasint"`
		Column uint8         `cbor:"2,keyasint"`
		Node   types.Address `cbor:"3,keyasint"`
	}
	// ReportColumn is sent by the node assigned Column: it holds every
	// fragment of the column.
	ReportColumn struct {
		FID    types.FID `cbor:"1,keyasint"`
		Column uint8     `cbor:"2,keyasint"`
	}
	// DeleteFile removes Owner's ownership of a file (sent by the owner or a
	// gateway the owner authorized). The file goes when its last owner does.
	DeleteFile struct {
		FID   types.FID     `cbor:"1,keyasint"`
		Owner types.Address `cbor:"2,keyasint"`
	}
	// DeclarePack lists the small objects inside a stored pack: a v2 file
	// the sending gateway declared as its own (pack.go). Entries are in
	// offset order and do not overlap.
	DeclarePack struct {
		Pack    types.FID   `cbor:"1,keyasint"`
		Entries []PackEntry `cbor:"2,keyasint"`
	}
	// PackEntry is one object of a pack: bytes [Offset, Offset+Length) of
	// the pack, whose BLAKE3 its OID binds. From, when set, moves the
	// object here from an older pack of the same gateway (compaction).
	PackEntry struct {
		OID       types.FID     `cbor:"1,keyasint"`
		Owner     types.Address `cbor:"2,keyasint"`
		Name      string        `cbor:"3,keyasint"`
		Territory string        `cbor:"4,keyasint"`
		Offset    uint64        `cbor:"5,keyasint"`
		Length    uint64        `cbor:"6,keyasint"`
		Private   bool          `cbor:"7,keyasint,omitempty"`
		From      *types.FID    `cbor:"8,keyasint,omitempty"`
		// Content is the BLAKE3 of the object's bytes: with the owner and
		// the length it must give the OID, so that an entry cannot claim
		// someone else's object under another owner or length (the bytes
		// at Offset are the readers' to verify).
		Content types.Hash `cbor:"9,keyasint"`
	}
)

// signDomain separates transaction signatures from every other use of a key.
const signDomain = "deoss/tx/v1\n"

func signBytes(body []byte) []byte { return append([]byte(signDomain), body...) }

// Sign fills in Sender and Sig with k.
func (tx *Tx) Sign(k *auth.Key) {
	tx.Sender = k.Address()
	tx.Sig = k.Sign(signBytes(marshal(tx)))
}

// Encode returns the transaction's bytes.
func (tx *Tx) Encode() []byte { return marshal(envelope{Body: marshal(tx), Sig: tx.Sig}) }

// Hash is the transaction hash CometBFT uses (SHA-256 of the bytes).
func TxHash(b []byte) [32]byte { return sha256.Sum256(b) }

// DecodeTx parses and checks a transaction without state: size, canonical
// encoding, exactly one message, and the signature.
func DecodeTx(b []byte) (*Tx, error) {
	if len(b) > MaxTxBytes {
		return nil, errf(ErrMalformed, "%d bytes exceed %d", len(b), MaxTxBytes)
	}
	var env envelope
	if err := unmarshalCanonical(b, &env); err != nil {
		return nil, errf(ErrMalformed, "envelope: %v", err)
	}
	var tx Tx
	// The body must be canonical too: otherwise a message could carry, say,
	// 11 fragment hashes where 12 are due and decode with one left zero.
	if err := unmarshalCanonical(env.Body, &tx); err != nil {
		return nil, errf(ErrMalformed, "%v", err)
	}
	if _, err := tx.Msg.one(); err != nil {
		return nil, err
	}
	if err := auth.Verify(tx.Sender, signBytes(env.Body), env.Sig); err != nil {
		return nil, errf(ErrBadSignature, "%v", err)
	}
	tx.Sig = env.Sig
	return &tx, nil
}

func (tx *Tx) String() string {
	return fmt.Sprintf("%s from %s nonce %d", tx.Msg.Name(), tx.Sender, tx.Nonce)
}
