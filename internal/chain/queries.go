package chain

import (
	"context"
	"net/url"
	"strconv"
	"strings"

	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// The ledger's queries (docs/ledger.md) as typed methods, so that no caller
// spells a query path. Not-found answers match ledger.ErrNotFound.

func query[T any](ctx context.Context, c *Client, path string) (*T, error) {
	var v T
	if err := c.Query(ctx, path, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Info returns the chain's id, dev flag and parameters.
func (c *Client) Info(ctx context.Context) (*ledger.ChainInfo, error) {
	return query[ledger.ChainInfo](ctx, c, "chain")
}

// File returns a file's record.
func (c *Client) File(ctx context.Context, fid types.FID) (*ledger.File, error) {
	return query[ledger.File](ctx, c, "file/"+fid.String())
}

// UserFiles lists an account's files.
func (c *Client) UserFiles(ctx context.Context, owner types.Address) ([]ledger.UserFile, error) {
	return pages(ctx, c, "files/"+owner.String(), func(f ledger.UserFile) string { return f.FID.String() })
}

// pages reads a list query page by page (ledger.MaxPage entries each) to
// its end; cursor is an entry's position (the page after starts past it).
func pages[T any](ctx context.Context, c *Client, path string, cursor func(T) string) ([]T, error) {
	var out []T
	after := ""
	for {
		p := path
		if after != "" {
			p += "?after=" + after
		}
		v, err := query[[]T](ctx, c, p)
		if err != nil {
			return nil, err
		}
		out = append(out, *v...)
		if len(*v) < ledger.MaxPage {
			if out == nil {
				out = []T{}
			}
			return out, nil
		}
		after = cursor((*v)[len(*v)-1])
	}
}

// Territory returns one territory of an account.
func (c *Client) Territory(ctx context.Context, owner types.Address, name string) (*ledger.Territory, error) {
	return query[ledger.Territory](ctx, c, "territory/"+owner.String()+"/"+name)
}

// Territories lists an account's territories.
func (c *Client) Territories(ctx context.Context, owner types.Address) ([]ledger.Territory, error) {
	v, err := query[[]ledger.Territory](ctx, c, "territories/"+owner.String())
	return deref(v, err)
}

// Gateway returns a registered gateway.
func (c *Client) Gateway(ctx context.Context, a types.Address) (*ledger.Gateway, error) {
	return query[ledger.Gateway](ctx, c, "gateway/"+a.String())
}

// Gateways lists the registered gateways.
func (c *Client) Gateways(ctx context.Context) ([]ledger.Gateway, error) {
	return pages(ctx, c, "gateways", func(g ledger.Gateway) string { return g.Address.String() })
}

// Authorized lists the gateways a user authorized.
func (c *Client) Authorized(ctx context.Context, user types.Address) ([]types.Address, error) {
	v, err := query[[]types.Address](ctx, c, "authorized/"+user.String())
	return deref(v, err)
}

// Node returns a registered storage node.
func (c *Client) Node(ctx context.Context, a types.Address) (*ledger.Node, error) {
	return query[ledger.Node](ctx, c, "node/"+a.String())
}

// Nodes lists the registered storage nodes.
func (c *Client) Nodes(ctx context.Context) ([]ledger.Node, error) {
	return pages(ctx, c, "nodes", func(n ledger.Node) string { return n.Address.String() })
}

// Columns lists the columns assigned to a node.
func (c *Client) Columns(ctx context.Context, node types.Address) ([]ledger.NodeColumn, error) {
	v, err := query[[]ledger.NodeColumn](ctx, c, "columns/"+node.String())
	return deref(v, err)
}

func deref[T any](v *[]T, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	return *v, nil
}

// Challenges lists a node's open challenges.
func (c *Client) Challenges(ctx context.Context, node types.Address) ([]ledger.Challenge, error) {
	v, err := query[[]ledger.Challenge](ctx, c, "challenges/"+node.String())
	return deref(v, err)
}

// RepairStatus is the chain's health histogram, restoral queue and rate.
func (c *Client) RepairStatus(ctx context.Context) (*ledger.RepairStatus, error) {
	return query[ledger.RepairStatus](ctx, c, "repair")
}

// Restorals lists open restoral orders in queue order (at most limit).
func (c *Client) Restorals(ctx context.Context, limit int) (*ledger.RestoralQueue, error) {
	return query[ledger.RestoralQueue](ctx, c, "restorals?limit="+strconv.Itoa(limit))
}

// Claims lists a node's restoral claims in flight.
func (c *Client) Claims(ctx context.Context, node types.Address) ([]ledger.Restoral, error) {
	v, err := query[[]ledger.Restoral](ctx, c, "claims/"+node.String())
	if err != nil {
		return nil, err
	}
	return *v, nil
}

// WhatIf is what losing nodes would do to the files' health.
func (c *Client) WhatIf(ctx context.Context, nodes []types.Address) (*ledger.WhatIf, error) {
	s := make([]string, len(nodes))
	for i, n := range nodes {
		s[i] = n.String()
	}
	return query[ledger.WhatIf](ctx, c, "whatif/"+strings.Join(s, ","))
}

// Pool returns the rewards pool and the current epoch.
func (c *Client) Pool(ctx context.Context) (*ledger.Pool, error) {
	return query[ledger.Pool](ctx, c, "pool")
}

// AccountView returns an account with what it has locked.
func (c *Client) AccountView(ctx context.Context, a types.Address) (*ledger.AccountView, error) {
	return query[ledger.AccountView](ctx, c, "account/"+a.String())
}

// Owner returns one owner of a file (ledger.ErrNotFound if a owns none).
func (c *Client) Owner(ctx context.Context, fid types.FID, a types.Address) (*ledger.Owner, error) {
	return query[ledger.Owner](ctx, c, "owner/"+fid.String()+"/"+a.String())
}

// Buckets lists an account's buckets.
func (c *Client) Buckets(ctx context.Context, owner types.Address) ([]ledger.Bucket, error) {
	v, err := query[[]ledger.Bucket](ctx, c, "buckets/"+owner.String())
	return deref(v, err)
}

// Bucket returns one of an account's buckets.
func (c *Client) Bucket(ctx context.Context, owner types.Address, name string) (*ledger.Bucket, error) {
	return query[ledger.Bucket](ctx, c, "bucket/"+owner.String()+"/"+name)
}

// Object returns a key's record.
func (c *Client) Object(ctx context.Context, owner types.Address, bucket, key string) (*ledger.Object, error) {
	return query[ledger.Object](ctx, c, "object/"+owner.String()+"/"+bucket+"?"+url.Values{"key": {key}}.Encode())
}

// Objects lists a page of a bucket's keys: those with prefix, after start,
// rolled up at delim (if not empty), at most max entries.
func (c *Client) Objects(ctx context.Context, owner types.Address, bucket, prefix, delim, start string, max int) (*ledger.ObjectList, error) {
	v := url.Values{"prefix": {prefix}, "delim": {delim}, "start": {start}, "max": {strconv.Itoa(max)}}
	return query[ledger.ObjectList](ctx, c, "objects/"+owner.String()+"/"+bucket+"?"+v.Encode())
}

// Packed returns a packed object: its owner, length and the packs it lies in.
func (c *Client) Packed(ctx context.Context, oid types.FID) (*ledger.PackedView, error) {
	return query[ledger.PackedView](ctx, c, "packed/"+oid.String())
}

// PackEntries lists a pack's live entries.
func (c *Client) PackEntries(ctx context.Context, pack types.FID) ([]ledger.PackEntryView, error) {
	return pages(ctx, c, "pack/"+pack.String(), func(e ledger.PackEntryView) string { return e.OID.String() })
}
