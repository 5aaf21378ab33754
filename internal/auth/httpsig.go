package auth

import (
	"container/heap"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deoss/deoss/internal/types"
)

// Signed HTTP requests carry three headers:
//
//	Account:   the signer's address (deoss1...)
//	Message:   v1 <expiry, Unix seconds> <nonce, 32 hex> <METHOD> <path>
//	Signature: hex of ed25519("deoss/http/v1\n" + Message)
//
// The message names the request it authorizes (method and path, with the
// query), so a signature cannot be moved to another request; the expiry bounds
// how long it is good; the nonce makes it good once.
const (
	HeaderAccount   = "Account"
	HeaderMessage   = "Message"
	HeaderSignature = "Signature"
	httpDomain      = "deoss/http/v1\n"
)

// Errors of signed requests.
var (
	ErrUnsigned      = errors.New("request is not signed (Account, Message and Signature headers)")
	ErrMalformedAuth = errors.New("malformed request signature headers")
	ErrWrongRequest  = errors.New("signed message is for another request")
	ErrStale         = errors.New("signed message expired or too far in the future")
	ErrReplayed      = errors.New("signed message was already used")
	ErrReplayFull    = errors.New("too many signed requests in flight; retry later")
)

// SignRequest signs req with k, good for lifetime from now.
func SignRequest(req *http.Request, k *Key, lifetime time.Duration) error {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	msg := fmt.Sprintf("v1 %d %s %s %s", time.Now().Add(lifetime).Unix(), hex.EncodeToString(nonce), req.Method, req.URL.RequestURI())
	req.Header.Set(HeaderAccount, k.Address().String())
	req.Header.Set(HeaderMessage, msg)
	req.Header.Set(HeaderSignature, hex.EncodeToString(k.Sign([]byte(httpDomain+msg))))
	return nil
}

// signedMessage is a parsed Message header.
type signedMessage struct {
	expiry int64
	nonce  string
	method string
	uri    string
}

// parseMessage parses a Message header strictly.
func parseMessage(s string) (signedMessage, error) {
	var m signedMessage
	if len(s) > 4096 {
		return m, fmt.Errorf("%w: message of %d bytes", ErrMalformedAuth, len(s))
	}
	parts := strings.Split(s, " ")
	if len(parts) != 5 || parts[0] != "v1" {
		return m, fmt.Errorf("%w: want \"v1 <expiry> <nonce> <method> <path>\"", ErrMalformedAuth)
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || exp <= 0 || strconv.FormatInt(exp, 10) != parts[1] {
		return m, fmt.Errorf("%w: expiry %q", ErrMalformedAuth, parts[1])
	}
	if len(parts[2]) != 32 || strings.ToLower(parts[2]) != parts[2] {
		return m, fmt.Errorf("%w: nonce must be 32 lowercase hex characters", ErrMalformedAuth)
	}
	if _, err := hex.DecodeString(parts[2]); err != nil {
		return m, fmt.Errorf("%w: nonce: %v", ErrMalformedAuth, err)
	}
	if parts[3] == "" || !strings.HasPrefix(parts[4], "/") {
		return m, fmt.Errorf("%w: method and path", ErrMalformedAuth)
	}
	return signedMessage{expiry: exp, nonce: parts[2], method: parts[3], uri: parts[4]}, nil
}

// Verifier checks signed requests. It is safe for concurrent use.
type Verifier struct {
	// MaxLifetime bounds how far in the future an expiry may be; Skew is the
	// clock difference tolerated between signer and verifier.
	MaxLifetime, Skew time.Duration
	// Now is the clock (time.Now if nil).
	Now    func() time.Time
	replay *ReplayCache
}

// NewVerifier returns a verifier remembering at most capacity nonces.
func NewVerifier(maxLifetime, skew time.Duration, capacity int) *Verifier {
	return &Verifier{MaxLifetime: maxLifetime, Skew: skew, replay: NewReplayCache(capacity)}
}

// Verify returns the address that signed r, or why r is refused. A verified
// request's nonce is spent.
func (v *Verifier) Verify(r *http.Request) (types.Address, error) {
	acc, msg, sig := r.Header.Get(HeaderAccount), r.Header.Get(HeaderMessage), r.Header.Get(HeaderSignature)
	if acc == "" && msg == "" && sig == "" {
		return types.Address{}, ErrUnsigned
	}
	addr, err := types.ParseAddress(acc)
	if err != nil {
		return addr, fmt.Errorf("%w: account: %v", ErrMalformedAuth, err)
	}
	m, err := parseMessage(msg)
	if err != nil {
		return addr, err
	}
	rawSig, err := hex.DecodeString(sig)
	if err != nil {
		return addr, fmt.Errorf("%w: signature is not hex", ErrMalformedAuth)
	}
	if err := Verify(addr, []byte(httpDomain+msg), rawSig); err != nil {
		return addr, err
	}
	if m.method != r.Method || m.uri != r.URL.RequestURI() {
		return addr, fmt.Errorf("%w: signed %s %s, got %s %s", ErrWrongRequest, m.method, m.uri, r.Method, r.URL.RequestURI())
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	exp := time.Unix(m.expiry, 0)
	if now.After(exp.Add(v.Skew)) || exp.After(now.Add(v.MaxLifetime+v.Skew)) {
		return addr, fmt.Errorf("%w: expires %s", ErrStale, exp.UTC().Format(time.RFC3339))
	}
	// The nonce is remembered until the message could no longer pass the
	// expiry check anyway: that bounds the cache.
	if err := v.replay.Add(acc+" "+m.nonce, exp.Add(v.Skew), now); err != nil {
		return addr, err
	}
	return addr, nil
}

// ReplayCache remembers spent nonces until they expire, holding at most a
// fixed number.
type ReplayCache struct {
	mu       sync.Mutex
	capacity int
	seen     map[string]struct{}
	byExpiry expiryHeap
}

// NewReplayCache returns a cache of at most capacity nonces.
func NewReplayCache(capacity int) *ReplayCache {
	return &ReplayCache{capacity: capacity, seen: map[string]struct{}{}}
}

// Add spends a nonce good until expiry. It fails with ErrReplayed for a nonce
// already spent, and with ErrReplayFull when capacity unexpired nonces are
// held (refusing is safe; forgetting one early would allow a replay).
func (c *ReplayCache) Add(nonce string, expiry, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.byExpiry) > 0 && !c.byExpiry[0].at.After(now) {
		delete(c.seen, heap.Pop(&c.byExpiry).(expiring).nonce)
	}
	if _, ok := c.seen[nonce]; ok {
		return ErrReplayed
	}
	if len(c.seen) >= c.capacity {
		return ErrReplayFull
	}
	c.seen[nonce] = struct{}{}
	heap.Push(&c.byExpiry, expiring{nonce, expiry})
	return nil
}

type expiring struct {
	nonce string
	at    time.Time
}

type expiryHeap []expiring

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiring)) }
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
