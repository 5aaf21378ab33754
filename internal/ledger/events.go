package ledger

// The events the ledger emits: their types, attribute keys and actions are
// the contract between the ledger and its followers (nodes, gateways), so
// both sides use these names and never spell them out.
const (
	EventPrefix        = "deoss."
	EventTransfer      = "deoss.transfer"
	EventFaucet        = "deoss.faucet"
	EventFile          = "deoss.file"   // a storage order changed: action, fid, state, node x12
	EventColumn        = "deoss.column" // one column: action, fid, column, node (and from)
	EventGateway       = "deoss.gateway"
	EventAuthorization = "deoss.authorization"
	EventNode          = "deoss.node"
	EventTerritory     = "deoss.territory"
	EventChallenge     = "deoss.challenge" // a proof of storage: action, node, fid, column, segment, chunk, deadline
	EventReward        = "deoss.reward"    // an epoch's rewards: node, amount, epoch
	EventRestoral      = "deoss.restoral"  // a restoral order: action, fid, column, from, how, health (node: the claimant)
	EventBucket        = "deoss.bucket"    // a bucket created or deleted: action, owner, bucket
	EventObject        = "deoss.object"    // a key put or deleted: action, owner, bucket, fid
	EventPack          = "deoss.pack"      // a pack declared or deleted (pack), an object in one refused, moved or removed (fid)
)

// Attribute keys.
const (
	AttrAction   = "action"
	AttrFID      = "fid"
	AttrState    = "state"
	AttrNode     = "node"
	AttrColumn   = "column"
	AttrFrom     = "from"
	AttrTo       = "to"
	AttrAmount   = "amount"
	AttrOwner    = "owner"
	AttrGateway  = "gateway"
	AttrUser     = "user"
	AttrEndpoint = "endpoint"
	AttrName     = "name"
	AttrSegment  = "segment"
	AttrChunk    = "chunk"
	AttrDeadline = "deadline"
	AttrTargeted = "targeted"
	AttrHow      = "how"
	AttrEpoch    = "epoch"
	AttrFee      = "fee"
	AttrHealth   = "health"
	AttrBucket   = "bucket"
	AttrPack     = "pack"
	AttrEntries  = "entries"
	AttrReason   = "reason"
)

// Actions of file and column events.
const (
	ActionDeclared     = "declared"
	ActionStored       = "stored"
	ActionOwnerAdded   = "owner_added"
	ActionOwnerRemoved = "owner_removed"
	ActionDeleted      = "deleted"
	ActionExpired      = "expired"
	ActionReassigned   = "reassigned"
	ActionReported     = "reported"
	ActionRestored     = "restored" // a column moved by repair: node (new), from (old)
	ActionLost         = "lost"     // a file fell below 4 healthy columns
	ActionFound        = "found"    // a lost file has 4 healthy columns again
)

// Actions of restoral events.
const (
	ActionOrdered   = "ordered"
	ActionClaimed   = "claimed"
	ActionLapsed    = "lapsed"
	ActionCompleted = "completed"
	ActionCancelled = "cancelled"
)

// Actions of bucket and object events (and ActionDeleted).
const (
	ActionCreated = "created"
	ActionPut     = "put"
)

// Actions of pack events (and ActionDeclared, ActionDeleted).
const (
	ActionRefused = "refused" // an entry skipped: its owner's state refused it
	ActionMoved   = "moved"   // an entry moved to a new pack (compaction)
	ActionRemoved = "removed" // a packed object's owner let go of it
)

// Actions of challenge events.
const (
	ActionChallenged = "challenged"
	ActionProved     = "proved"
	ActionFailed     = "failed"
)

// Attr returns the value of the event's first attribute key ("" if none).
func (e Event) Attr(key string) string {
	for _, a := range e.Attrs {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}

// Has reports whether some attribute key of the event has value.
func (e Event) Has(key, value string) bool {
	for _, a := range e.Attrs {
		if a.Key == key && a.Value == value {
			return true
		}
	}
	return false
}
