package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/deoss/deoss/internal/auth"
	"github.com/deoss/deoss/internal/gateway/console"
	"github.com/deoss/deoss/internal/tlsutil"
	"github.com/deoss/deoss/internal/types"
)

// FID is a file id.
type FID = types.FID

// ParseFID parses a FID from its 64 hex characters.
func ParseFID(s string) (FID, error) { return types.ParseFID(s) }

// Client talks to one gateway as one account.
type Client struct {
	gateway string
	key     *auth.Key
	hc      *http.Client

	mu     sync.Mutex
	target types.Address // the gateway's account, learned once
}

// New makes a client of the gateway at url signing with the key file at
// keyPath (written by `deoss key new`; unsealed).
func New(url, keyPath string) (*Client, error) {
	k, err := auth.Load(keyPath, nil)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", keyPath, err)
	}
	return NewWithKey(url, k), nil
}

// NewWithKey makes a client with a key already loaded.
func NewWithKey(url string, k *auth.Key) *Client {
	return &Client{gateway: strings.TrimRight(url, "/"), key: k, hc: &http.Client{}}
}

// UseCA makes the client trust the CA certificates in the PEM file caFile
// beside the system's (a private CA, or the one `deoss dev --tls` makes).
func (c *Client) UseCA(caFile string) error {
	cfg, err := tlsutil.ClientConfig(caFile)
	if err != nil {
		return err
	}
	c.hc = &http.Client{Transport: tlsutil.Transport(cfg, 8)}
	return nil
}

// ShareURL is a link that reads the private file fid (download, range,
// open) until d from now, signed by the client's key (its owner's): anyone
// who holds it reads the file; it cannot be revoked before it expires (at
// most 7 days).
func (c *Client) ShareURL(fid FID, d time.Duration) (string, error) {
	if d <= 0 || d > auth.MaxShareLifetime {
		return "", fmt.Errorf("a share link is good for up to %s", auth.MaxShareLifetime)
	}
	return c.gateway + "/file/download/" + fid.String() + "?" + auth.ShareQuery(c.key, fid, time.Now().Add(d)).Encode(), nil
}

// ConsoleLink is a one-time link that signs the client's account in to
// the gateway's web console, good for d (at most 15 minutes); the gateway's
// account is asked for (or pinned) first, since the link names it.
func (c *Client) ConsoleLink(ctx context.Context, d time.Duration) (string, error) {
	if d <= 0 || d > console.MaxLinkLifetime {
		return "", fmt.Errorf("a console link is good for up to %s", console.MaxLinkLifetime)
	}
	gw, err := c.gatewayAccount(ctx)
	if err != nil {
		return "", err
	}
	return console.Link(c.gateway, c.key, gw, d, time.Now()), nil
}

// SetGatewayAccount pins the gateway's account that requests are signed
// for, instead of asking the gateway (GET /version) on first use: a
// look-alike gateway then gets nothing it can use at the real one.
func (c *Client) SetGatewayAccount(a types.Address) {
	c.mu.Lock()
	c.target = a
	c.mu.Unlock()
}

// gatewayAccount is the account requests are signed for.
func (c *Client) gatewayAccount(ctx context.Context) (types.Address, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.target != (types.Address{}) {
		return c.target, nil
	}
	req, err := http.NewRequestWithContext(ctx, "GET", c.gateway+"/version", nil)
	if err != nil {
		return types.Address{}, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return types.Address{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return types.Address{}, readError(resp)
	}
	var v struct {
		Account types.Address `json:"account"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || v.Account == (types.Address{}) {
		return types.Address{}, fmt.Errorf("gateway %s does not say its account (GET /version): %v", c.gateway, err)
	}
	c.target = v.Account
	return c.target, nil
}

// Account is the client's account address.
func (c *Client) Account() string { return c.key.Address().String() }

// Error is an error answer of the gateway.
type Error struct {
	Status int    // HTTP status
	Code   string // the gateway's error code (docs/api.yaml)
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("gateway: %s (%d %s)", e.Msg, e.Status, e.Code) }

// Errors to test with errors.Is.
var (
	ErrNotFound     = errors.New("not found")
	ErrForbidden    = errors.New("forbidden")
	ErrUnauthorized = errors.New("unauthenticated or cipher required")
	ErrConflict     = errors.New("conflict")
	ErrUnavailable  = errors.New("unavailable")
)

// Is maps statuses to the sentinel errors.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrForbidden:
		return e.Status == http.StatusForbidden
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized
	case ErrConflict:
		return e.Status == http.StatusConflict
	case ErrUnavailable:
		return e.Status == http.StatusServiceUnavailable
	}
	return false
}

// retryable says whether a request may succeed if sent again.
func retryable(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// do sends a signed request; a non-2xx answer becomes an *Error.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, size int64, hdr map[string]string) (*http.Response, error) {
	resp, err := c.Raw(ctx, method, path, body, size, hdr)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

// Raw sends any request to the gateway (path with its query), signed with
// the client's key, and returns the answer whatever its status; the caller
// closes its body. A body that is a *bytes.Reader or *strings.Reader is
// hashed into the signature; another is sent as UNSIGNED-PAYLOAD (over TLS).
func (c *Client) Raw(ctx context.Context, method, path string, body io.Reader, size int64, hdr map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.gateway+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// Gateways accept signatures good for at most five minutes. A client
	// without a key (NewWithKey(url, nil)) sends unsigned requests.
	if c.key != nil {
		target, err := c.gatewayAccount(ctx)
		if err != nil {
			return nil, err
		}
		if err := auth.SignRequest(req, c.key, target, 4*time.Minute); err != nil {
			return nil, err
		}
	}
	return c.hc.Do(req)
}

func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Code  string `json:"code"`
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &body) != nil || body.Error == "" {
		body.Error = strings.TrimSpace(string(b))
		if body.Error == "" {
			body.Error = resp.Status
		}
	}
	return &Error{Status: resp.StatusCode, Code: body.Code, Msg: body.Error}
}

// call sends a request with an optional JSON body and decodes a JSON answer
// into out (when not nil).
func (c *Client) call(ctx context.Context, method, path string, in, out any, hdr map[string]string) error {
	var body io.Reader
	var size int64
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, size = strings.NewReader(string(b)), int64(len(b))
	}
	resp, err := c.do(ctx, method, path, body, size, hdr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Metadata is what the gateway knows of a file.
type Metadata struct {
	FID        FID    `json:"fid"`
	Version    uint8  `json:"version"` // format version
	Size       uint64 `json:"size"`
	Segments   int    `json:"segments"`
	Encryption string `json:"encryption"`
	State      string `json:"state"`
	Owners     []struct {
		Address   string `json:"address"`
		Name      string `json:"name"`
		Territory string `json:"territory"`
	} `json:"owners"`
	Pipeline string `json:"pipeline,omitempty"`
	Note     string `json:"note,omitempty"`
	// Packed is set for a small object packed with others (FID is its
	// object id): buffered at the gateway, then in which packs and where.
	Packed *struct {
		Buffered  bool `json:"buffered,omitempty"`
		Locations []struct {
			Pack    FID    `json:"pack"`
			Offset  uint64 `json:"offset"`
			Gateway string `json:"gateway"`
		} `json:"locations,omitempty"`
	} `json:"packed,omitempty"`
}

// Stat returns a file's metadata.
func (c *Client) Stat(ctx context.Context, fid FID) (*Metadata, error) {
	var m Metadata
	return &m, c.call(ctx, "GET", "/file/metadata/"+fid.String(), nil, &m, nil)
}

// Column is where one column of a file lives.
type Column struct {
	Column   int    `json:"column"`
	Node     string `json:"node"`
	Endpoint string `json:"endpoint"`
	Reported bool   `json:"reported"`
}

// Location returns the node of each column and whether it reported.
func (c *Client) Location(ctx context.Context, fid FID) ([]Column, error) {
	var out struct {
		Columns []Column `json:"columns"`
	}
	return out.Columns, c.call(ctx, "GET", "/file/location/"+fid.String(), nil, &out, nil)
}

// FileInfo is one file of a list.
type FileInfo struct {
	FID       FID    `json:"fid"`
	Name      string `json:"name"`
	Territory string `json:"territory"`
	Size      uint64 `json:"size"`
	State     string `json:"state"`
}

// List returns the client's files.
func (c *Client) List(ctx context.Context) ([]FileInfo, error) {
	var out []FileInfo
	return out, c.call(ctx, "GET", "/files/"+c.Account(), nil, &out, nil)
}

// Delete removes the client's ownership of a file.
func (c *Client) Delete(ctx context.Context, fid FID) error {
	return c.call(ctx, "DELETE", "/file/"+fid.String(), nil, nil, nil)
}

// NodeInfo is a storage node as the gateway sees it.
type NodeInfo struct {
	Address  string    `json:"address"`
	Endpoint string    `json:"endpoint"`
	State    string    `json:"state"`
	Capacity uint64    `json:"capacity"`
	Used     uint64    `json:"used"`
	Score    float64   `json:"score"`
	Cooldown time.Time `json:"cooldown_until,omitzero"`
	// ProofsPassed and ProofsMissed are the chain's proof record.
	ProofsPassed uint64 `json:"proofs_passed"`
	ProofsMissed uint64 `json:"proofs_missed"`
}

// Nodes lists the storage nodes with the gateway's scores.
func (c *Client) Nodes(ctx context.Context) ([]NodeInfo, error) {
	var out []NodeInfo
	return out, c.call(ctx, "GET", "/nodes", nil, &out, nil)
}

// Ping checks that the gateway answers.
func (c *Client) Ping(ctx context.Context) error {
	return c.call(ctx, "GET", "/version", nil, nil, nil)
}
