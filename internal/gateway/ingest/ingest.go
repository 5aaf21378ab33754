package ingest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/codec"
	"github.com/deoss/deoss/internal/gateway/pipeline"
	"github.com/deoss/deoss/internal/gateway/work"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/limit"
	"github.com/deoss/deoss/internal/ttlcache"
	"github.com/deoss/deoss/internal/types"
)

// Chain is what ingest asks of the chain.
type Chain interface {
	// Territory returns a territory, or an error matching ledger.ErrNotFound.
	Territory(ctx context.Context, owner types.Address, name string) (*ledger.Territory, error)
}

// Refusals, matched with errors.Is; the errors returned say more.
var (
	ErrNoTerritory       = errors.New("no such territory")
	ErrTerritoryExpired  = errors.New("territory expired")
	ErrInsufficientSpace = errors.New("insufficient space")
	ErrTooLarge          = errors.New("file too large")
	ErrSizeMismatch      = codec.ErrSizeMismatch // the body's length is not the declared size
	ErrBadKey            = errors.New("sealed file key does not open")
)

// Config tunes ingest. Zero values take the defaults.
type Config struct {
	// Encodes is how many files encode at once (default 2); each takes its
	// share of the cores.
	Encodes int
	// MaxSize bounds a file (default: the format's largest).
	MaxSize int64
	// KEK, when set, is the identity the key that seals session keys is
	// derived from, so that encrypted sessions survive a restart; without it
	// a random key is used.
	KEK *auth.Key
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MaxPending bounds the padded bytes one account holds at this gateway
	// in open sessions, streams being received and files not yet declared
	// (default MaxSize: one largest file).
	MaxPending int64
	// SessionBytes counts the open sessions' bytes (nil: none).
	SessionBytes SessionBytes
}

// Ingest accepts files. Build it with New.
type Ingest struct {
	chain   Chain
	work    *work.Area
	queue   *pipeline.Queue
	maxSize int64
	now     func() time.Time
	kek     cipher.AEAD
	kdf     limit.Slots // Argon2id derivations at once (64 MiB each)
	// keys keeps keys derived for reads for a minute, by an HMAC of salt
	// and cipher under a per-process pepper: a client reading a file in
	// many ranges pays Argon2id (about 0.2 s and 64 MiB) once, not per
	// range. Only in memory, never written.
	keys    *ttlcache.Cache[[32]byte, *codec.Key]
	pepper  [32]byte
	encodes limit.Slots
	// inFlight bounds the files being received and encoded (4 x Encodes).
	inFlight limit.Slots
	workers  int
	bytesIn  prometheus.Counter

	maxPending   uint64
	sessionBytes SessionBytes
	holds        holds
	territories  *ttlcache.Cache[holdKey, *ledger.Territory]
}

// New assembles ingest over the work area and the queue; its metrics go to
// reg (when not nil).
func New(cfg Config, ch Chain, w *work.Area, q *pipeline.Queue, reg prometheus.Registerer) *Ingest {
	if cfg.Encodes <= 0 {
		cfg.Encodes = 2
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = int64(types.MaxSegments) * (types.SegmentSize - types.GCMOverhead)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = cfg.MaxSize
	}
	in := &Ingest{chain: ch, work: w, queue: q, maxSize: cfg.MaxSize, now: cfg.Now, kdf: limit.NewSlots(2),
		maxPending: types.ProfileV2.PaddedSize(uint64(cfg.MaxPending), types.EncryptionAES256GCM), sessionBytes: cfg.SessionBytes,
		holds:   holds{m: map[holdKey]uint64{}},
		encodes: limit.NewSlots(cfg.Encodes), inFlight: limit.NewSlots(4 * cfg.Encodes), workers: max(1, runtime.GOMAXPROCS(0)/cfg.Encodes),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_gateway_bytes_in_total", Help: "User bytes accepted."})}
	in.keys = ttlcache.New[[32]byte, *codec.Key](time.Minute, 1024).WithClock(cfg.Now)
	in.territories = ttlcache.New[holdKey, *ledger.Territory](territoryTTL, 10_000).WithClock(cfg.Now)
	if _, err := rand.Read(in.pepper[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	if cfg.KEK != nil {
		sum := sha256.Sum256(append([]byte("deoss/gateway/kek/v1\n"), cfg.KEK.Seed()...))
		in.kek = aeadOf(sum[:])
	} else {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			panic(err) // crypto/rand does not fail on supported systems
		}
		in.kek = aeadOf(b)
	}
	if reg != nil {
		reg.MustRegister(in.bytesIn)
	}
	return in
}

func aeadOf(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // 32-byte keys only
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// MaxSize is the largest file taken.
func (in *Ingest) MaxSize() int64 { return in.maxSize }

// NewKey derives a fresh file key (with a new salt) from a user's cipher;
// nil for no cipher.
func (in *Ingest) NewKey(ctx context.Context, userCipher string) (*codec.Key, error) {
	if userCipher == "" {
		return nil, nil
	}
	return in.Derive(ctx, []byte(userCipher), nil)
}

// Derive derives a file key from a cipher and a salt (nil: a fresh one), a
// few at a time: Argon2id takes 64 MiB each.
func (in *Ingest) Derive(ctx context.Context, c, salt []byte) (*codec.Key, error) {
	return in.DeriveAllowed(ctx, c, salt, nil)
}

// DeriveAllowed is Derive that asks allow (when not nil) before a
// derivation the read-key cache cannot answer: the caller's rate limit
// counts real work only.
func (in *Ingest) DeriveAllowed(ctx context.Context, c, salt []byte, allow func() error) (*codec.Key, error) {
	var id [32]byte
	if salt != nil {
		mac := hmac.New(sha256.New, in.pepper[:])
		mac.Write(salt)
		mac.Write([]byte{0})
		mac.Write(c)
		mac.Sum(id[:0])
		if k, ok := in.keys.Get(id); ok {
			return k, nil
		}
	}
	if allow != nil {
		if err := allow(); err != nil {
			return nil, err
		}
	}
	release, err := in.kdf.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	if salt == nil {
		return codec.NewKey(c)
	}
	k, err := codec.DeriveKey(c, salt)
	if err == nil {
		in.keys.Put(id, k)
	}
	return k, err
}

// SealKey seals a file key for keeping beside a session (nil for nil).
func (in *Ingest) SealKey(k *codec.Key) ([]byte, error) {
	if k == nil {
		return nil, nil
	}
	return k.Wrap(in.kek)
}

// OpenKey opens what SealKey sealed (nil for nil).
func (in *Ingest) OpenKey(b []byte) (*codec.Key, error) {
	if len(b) == 0 {
		return nil, nil
	}
	k, err := codec.UnwrapKey(in.kek, b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return k, nil
}

// ChunkKey is the key an encrypted session's chunks are kept under at the
// gateway: a subkey of the file key, opened from the session's wrapped key.
func ChunkKey(in *Ingest, wrapped []byte) ([]byte, error) {
	k, err := in.OpenKey(wrapped)
	if err != nil {
		return nil, err
	}
	return k.Subkey("deoss/gateway/session-chunk/v1"), nil
}

// Encryption is the encryption mode a key gives.
func Encryption(k *codec.Key) types.Encryption {
	if k == nil {
		return types.EncryptionNone
	}
	return types.EncryptionAES256GCM
}

// CheckSpace refuses a file of size bytes that the territory cannot take
// now, counting what this gateway holds for it already (pending.go):
// ErrNoTerritory, ErrTerritoryExpired, ErrInsufficientSpace, ErrPendingCap.
func (in *Ingest) CheckSpace(ctx context.Context, user types.Address, territory string, size int64, enc types.Encryption) error {
	return in.CheckSpaceOwn(ctx, user, territory, size, enc, 0)
}

// CheckSpaceOwn is CheckSpace for a file that holds own bytes of the
// pending count already (its session, its stream).
func (in *Ingest) CheckSpaceOwn(ctx context.Context, user types.Address, territory string, size int64, enc types.Encryption, own uint64) error {
	return in.spaceError(ctx, user, territory, types.ProfileV2.PaddedSize(uint64(size), enc), own)
}

// territoryTTL is how long a territory read from the chain answers the
// space checks of later uploads: a small PUT's check was a fifth of the
// gateway's work (and a query for the validator). Only a check that would
// refuse asks again (spaceError), so a purchase is seen at once; what the
// cache can miss is space taken in the last second elsewhere, which the
// chain's own lag hides from any check.
const territoryTTL = time.Second

// territory is an active territory of user, as the chain had it at most
// territoryTTL ago.
func (in *Ingest) territory(ctx context.Context, user types.Address, territory string) (*ledger.Territory, error) {
	if t, ok := in.territories.Get(holdKey{user, territory}); ok && t.Active(in.now().Unix()) {
		cp := *t
		return &cp, nil
	}
	return in.freshTerritory(ctx, user, territory)
}

// freshTerritory asks the chain.
func (in *Ingest) freshTerritory(ctx context.Context, user types.Address, territory string) (*ledger.Territory, error) {
	t, err := in.chain.Territory(ctx, user, territory)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s has no territory %q", ErrNoTerritory, user, territory)
	}
	if err != nil {
		return nil, err
	}
	if !t.Active(in.now().Unix()) {
		return nil, fmt.Errorf("%w: territory %q expired; renew it", ErrTerritoryExpired, territory)
	}
	cp := *t
	in.territories.Put(holdKey{user, territory}, &cp)
	return t, nil
}

// Accept encodes body (size bytes; -1 when unknown, then at most MaxSize)
// into the work area, checks the territory again with the real size (own:
// what its session or stream holds already), and adds the file to the
// queue. It waits for an encode slot.
func (in *Ingest) Accept(ctx context.Context, body io.Reader, f File) (*pipeline.Record, error) {
	user, name, territory, size, key, own := f.Owner, f.Name, f.Territory, f.Size, f.Key, f.Held
	// The encode slot is held while the file is encoded, not while its
	// client dawdles: it is let go of for each read of the body (a slow or
	// stalled uploader keeps no one else waiting). The files under way at
	// once, each with its segments in memory, are bounded apart.
	releaseFlight, err := in.inFlight.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer releaseFlight()
	slot, err := in.encodes.Hold(ctx)
	if err != nil {
		return nil, err
	}
	defer slot.Release()
	body = &slotReader{r: body, slot: slot}
	opts := []codec.EncodeOption{codec.WithOwner(user), codec.WithKey(key), codec.WithWorkers(in.workers)}
	if size >= 0 {
		opts = append(opts, codec.WithSize(size))
	} else {
		body = &capped{r: body, n: in.maxSize + 1}
	}
	res, err := in.work.Encode(ctx, body, opts...)
	switch {
	case errors.Is(err, errCapped), errors.Is(err, codec.ErrTooLarge):
		return nil, fmt.Errorf("%w: files are at most %d bytes here", ErrTooLarge, in.maxSize)
	case err != nil:
		return nil, err
	}
	// The chain refuses an order the territory cannot take; a file the
	// queue could never declare is refused now instead.
	var held uint64
	if own != nil {
		held = own.Bytes()
	}
	if err := in.CheckSpaceOwn(ctx, user, territory, int64(res.Layout.Size), res.Layout.Encryption, held); err != nil {
		if held, herr := in.queue.Holds(res.FID); herr == nil && !held {
			in.work.Remove(res.FID)
		}
		return nil, err
	}
	in.bytesIn.Add(float64(res.Layout.Size))
	rec := pipeline.Record{FID: res.FID, Owner: user, Name: name, Territory: territory, Size: res.Layout.Size, Updated: in.now(), Private: f.Private}
	if f.KeyOp != nil {
		return in.queue.AddWithKey(rec, f.KeyOp)
	}
	return in.queue.Add(rec)
}

// File is what Accept takes besides the body.
type File struct {
	Owner     types.Address
	Name      string
	Territory string
	Size      int64      // -1: unknown
	Key       *codec.Key // nil: not encrypted at the gateway
	Private   bool
	Held      Held // what its session or stream holds of the pending count
	// KeyOp, when set, is journalled with the file's record (an S3 key
	// naming it); its FID and size are filled in. Its other fields may be
	// completed while the body is read (an ETag): it is read only after.
	KeyOp *pipeline.KeyOp
}

var errCapped = errors.New("past the cap")

// capped reads at most n bytes and fails with errCapped past them.
type capped struct {
	r io.Reader
	n int64
}

func (c *capped) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errCapped
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	if c.n <= 0 && err == nil {
		return n, errCapped
	}
	return n, err
}

// slotReader gives back its encode slot while it waits for the client.
type slotReader struct {
	r    io.Reader
	slot *limit.Held
}

func (s *slotReader) Read(p []byte) (n int, err error) {
	err = s.slot.Yield(func() error {
		var rerr error
		n, rerr = s.r.Read(p)
		return rerr
	})
	return n, err
}
