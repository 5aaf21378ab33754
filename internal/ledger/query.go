package ledger

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"

	"github.com/deoss/deoss/internal/types"
)

// Query paths (docs/ledger.md). Answers are JSON of the committed state.
//
//	chain                      {chain_id, dev, params}
//	account/<addr>             Account
//	territory/<addr>/<name>    Territory
//	territories/<addr>         []Territory
//	gateway/<addr>             Gateway
//	gateways                   []Gateway
//	authorized/<user>          []address: gateways the user authorized
//	node/<addr>                Node
//	nodes                      []Node
//	file/<fid>                 File (with its owners: the first 100, and their count)
//	owner/<fid>/<addr>         Owner: one owner of a file
//	files/<addr>               []UserFile
//	columns/<node>             []NodeColumn
//	challenges/<node>          []Challenge: the node's open challenges
//	repair                     RepairStatus: health histogram, queue, claims, rate, ETA
//	restorals                  RestoralQueue: open orders in queue order (?limit=n)
//	claims/<node>              []Restoral: the node's claims in flight
//	whatif/<addr>[,<addr>...]  WhatIf: what losing these nodes would do
//	pool                       Pool: the rewards pool and the epoch
//	buckets/<owner>            []Bucket
//	bucket/<owner>/<name>      Bucket
//	object/<owner>/<bucket>    Object (?key=<key, URL-escaped>)
//	objects/<owner>/<bucket>   ObjectList (?prefix=&delim=&start=&max=, URL-escaped)
//	packed/<oid>               PackedView: a packed object, where it lies
//	pack/<fid>                 []PackEntryView: a pack's live entries (paged by OID)
//
// The lists (gateways, nodes, files) come in pages of at most MaxPage
// entries in key order: a path may end in "?after=<address or fid>" (the
// last entry of the page before) and "&limit=<n>".
func (l *Ledger) Query(path string) ([]byte, error) {
	path, rawq, _ := strings.Cut(path, "?")
	pg, err := parsePage(rawq)
	if err != nil {
		return nil, err
	}
	vals, _ := url.ParseQuery(rawq) // parsePage refused a bad one
	q := querier{s: state{newOverlay(l.base)}, page: pg, now: l.now, vals: vals}
	v, err := q.answer(strings.Trim(path, "/"))
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// ChainInfo is the answer to "chain".
type ChainInfo struct {
	ChainID string `json:"chain_id"`
	Dev     bool   `json:"dev"`
	Params  Params `json:"params"`
}

// UserFile is one entry of a user's file list.
type UserFile struct {
	FID       types.FID `json:"fid"`
	Name      string    `json:"name"`
	Territory string    `json:"territory"`
	Size      uint64    `json:"size"`
	State     string    `json:"state"`
	Packed    bool      `json:"packed,omitempty"`  // FID is an OID: the object lies in a pack
	Private   bool      `json:"private,omitempty"` // served to its owners only (or by a share link)
}

// NodeColumn is one column a node is assigned.
type NodeColumn struct {
	FID      types.FID `json:"fid"`
	Column   uint8     `json:"column"`
	Reported bool      `json:"reported"`
	State    string    `json:"state"`
}

// AccountView is the answer to "account": the account and what its
// gateway deposit and node stake lock beside its balance.
type AccountView struct {
	Account
	GatewayDeposit uint64 `json:"gateway_deposit,omitempty"`
	NodeStake      uint64 `json:"node_stake,omitempty"`
}

// Pool is the answer to "pool".
type Pool struct {
	Balance      uint64 `json:"balance"`
	Epoch        int64  `json:"epoch"`
	EpochSeconds int64  `json:"epoch_seconds"`
}

type querier struct {
	s    state
	page page
	now  int64      // the latest block time
	vals url.Values // the query string (object queries)
}

// MaxPage is the most entries one list query answers.
const MaxPage = 1000

// page is a list query's window: entries whose key suffix is after after
// (raw bytes), at most limit of them.
type page struct {
	after string
	limit int
}

func parsePage(raw string) (page, error) {
	p := page{limit: MaxPage}
	if raw == "" {
		return p, nil
	}
	v, err := url.ParseQuery(raw)
	if err != nil {
		return p, errf(ErrInvalid, "query string: %v", err)
	}
	if a := v.Get("after"); a != "" {
		if addr, err := types.ParseAddress(a); err == nil {
			p.after = string(addr[:])
		} else if fid, err := types.ParseFID(a); err == nil {
			p.after = string(fid[:])
		} else {
			return p, errf(ErrInvalid, "after=%q is neither an address nor a FID", a)
		}
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return p, errf(ErrInvalid, "limit=%q", l)
		}
		p.limit = min(n, MaxPage)
	}
	return p, nil
}

// iterate walks prefix within the page: keys past after, at most limit,
// from a seek when the KV has one (SeekKV).
func (q querier) iterate(prefix string, fn func(k string, v []byte)) {
	n := 0
	start, from := prefix+q.page.after, prefix
	if q.page.after != "" {
		from = start + "\x00" // the first key past after
	}
	q.s.o.iterateFrom(prefix, from, func(k string, v []byte) bool {
		if q.page.after != "" && k <= start {
			return true
		}
		fn(k, v)
		n++
		return n < q.page.limit
	})
}

func pageOf[T any](q querier, prefix string) []T {
	out := []T{}
	q.iterate(prefix, func(_ string, b []byte) {
		var v T
		mustUnmarshal(b, &v)
		out = append(out, v)
	})
	return out
}

func (q querier) accountView(a types.Address) AccountView {
	v := AccountView{Account: *q.s.account(a)}
	if g, ok := load[Gateway](q.s, addrKey(pGateway, a)); ok {
		v.GatewayDeposit = g.Deposit
	}
	if n, ok := load[Node](q.s, addrKey(pNode, a)); ok {
		v.NodeStake = n.Stake
	}
	return v
}

func (q querier) answer(path string) (any, error) {
	parts := strings.Split(path, "/")
	arg := func(i int) string {
		if i < len(parts) {
			return parts[i]
		}
		return ""
	}
	switch parts[0] {
	case "chain":
		c := q.s.chain()
		return ChainInfo{ChainID: c.ChainID, Dev: c.Dev, Params: q.s.params()}, nil
	case "account":
		a, err := parseAddr(arg(1))
		if err != nil {
			return nil, err
		}
		return q.accountView(a), nil
	case "territory":
		a, err := parseAddr(arg(1))
		if err != nil {
			return nil, err
		}
		return one[Territory](q.s, territoryKey(a, strings.Join(parts[2:], "/")), "territory")
	case "territories":
		a, err := parseAddr(arg(1))
		if err != nil {
			return nil, err
		}
		return all[Territory](q.s, pTerritory+string(a[:])+"/"), nil
	case "gateway":
		a, err := parseAddr(arg(1))
		if err != nil {
			return nil, err
		}
		return one[Gateway](q.s, addrKey(pGateway, a), "gateway")
	case "gateways":
		return pageOf[Gateway](q, pGateway), nil
	case "authorized":
		a, err := parseAddr(arg(1))
		if err != nil {
			return nil, err
		}
		out := []types.Address{}
		prefix := pAuthz + string(a[:])
		q.s.o.iterate(prefix, func(k string, _ []byte) bool {
			var g types.Address
			copy(g[:], k[len(prefix):])
			out = append(out, g)
			return true
		})
		return out, nil
	case "node":
		a, err := parseAddr(arg(1))
		if err != nil {
			return nil, err
		}
		return one[Node](q.s, addrKey(pNode, a), "node")
	case "nodes":
		return pageOf[Node](q, pNode), nil
	case "file":
		f, err := types.ParseFID(arg(1))
		if err != nil {
			return nil, errf(ErrInvalid, "%v", err)
		}
		file, err := one[File](q.s, fidKey(f), "file")
		if err != nil {
			return nil, err
		}
		file.Owners = ownersOf(q.s, f, MaxOwnersListed)
		file.OwnerCount = uint64At(q.s.o.get(pOwnerCount + string(f[:])))
		return file, nil
	case "owner":
		f, err := types.ParseFID(arg(1))
		if err != nil {
			return nil, errf(ErrInvalid, "%v", err)
		}
		a, err := parseAddr(arg(2))
		if err != nil {
			return nil, err
		}
		return one[Owner](q.s, ownerKey(f, a), "owner")
	case "files":
		a, err := parseAddr(arg(1))
		if err != nil {
			return nil, err
		}
		return q.userFiles(a), nil
	case "columns":
		a, err := parseAddr(arg(1))
		if err != nil {
			return nil, err
		}
		return q.nodeColumns(a), nil
	case "challenges":
		a, err := parseAddr(arg(1))
		if err != nil {
			return nil, err
		}
		return all[Challenge](q.s, pChall+string(a[:])), nil
	case "repair":
		return q.repairStatus(), nil
	case "restorals":
		return q.restorals(), nil
	case "claims":
		a, err := parseAddr(arg(1))
		if err != nil {
			return nil, err
		}
		return q.claims(a), nil
	case "whatif":
		var nodes []types.Address
		for _, s := range strings.Split(arg(1), ",") {
			a, err := parseAddr(s)
			if err != nil {
				return nil, err
			}
			nodes = append(nodes, a)
		}
		if len(nodes) > MaxWhatIf {
			return nil, errf(ErrInvalid, "%d nodes; at most %d", len(nodes), MaxWhatIf)
		}
		return q.whatIf(nodes), nil
	case "buckets", "bucket", "object", "objects":
		a, err := parseAddr(arg(1))
		if err != nil {
			return nil, err
		}
		return q.objectQuery(parts[0], a, arg(2), q.vals)
	case "packed", "pack":
		id, err := types.ParseFID(arg(1))
		if err != nil {
			return nil, errf(ErrInvalid, "%v", err)
		}
		if parts[0] == "pack" {
			return q.packEntries(id), nil
		}
		return q.packedObject(id)
	case "pool":
		p := q.s.params()
		return Pool{Balance: q.s.account(PoolAddress).Balance, Epoch: int64(uint64At(q.s.o.get(kEpoch))), EpochSeconds: p.EpochSeconds}, nil
	}
	return nil, errf(ErrNotFound, "no query %q", path)
}

func (q querier) userFiles(a types.Address) []UserFile {
	out := []UserFile{}
	prefix := pUserFile + string(a[:])
	q.iterate(prefix, func(k string, _ []byte) {
		var fid types.FID
		copy(fid[:], k[len(prefix):])
		o, ok := load[Owner](q.s, ownerKey(fid, a))
		if !ok {
			return
		}
		if f, ok := load[File](q.s, fidKey(fid)); ok {
			out = append(out, UserFile{FID: fid, Name: o.Name, Territory: o.Territory, Size: f.Layout.Size, State: f.State, Private: o.Private})
		} else if p, ok := load[PackedObject](q.s, packedKey(fid)); ok {
			out = append(out, UserFile{FID: fid, Name: o.Name, Territory: o.Territory, Size: p.Length, State: FileStored, Packed: true, Private: o.Private})
		}
	})
	return out
}

func (q querier) nodeColumns(a types.Address) []NodeColumn {
	out := []NodeColumn{}
	prefix := pNodeCol + string(a[:])
	q.s.o.iterate(prefix, func(k string, _ []byte) bool {
		rest := k[len(prefix):]
		var fid types.FID
		copy(fid[:], rest[:types.HashSize])
		col := rest[types.HashSize]
		if f, ok := load[File](q.s, fidKey(fid)); ok && int(col) < types.TotalShards {
			out = append(out, NodeColumn{FID: fid, Column: col, Reported: f.Columns[col].Reported, State: f.State})
		}
		return true
	})
	return out
}

func parseAddr(s string) (types.Address, error) {
	a, err := types.ParseAddress(s)
	if err != nil {
		return a, errf(ErrInvalid, "%v", err)
	}
	return a, nil
}

func one[T any](s state, key, what string) (*T, error) {
	v, ok := load[T](s, key)
	if !ok {
		return nil, errf(ErrNotFound, "no such %s", what)
	}
	return v, nil
}

func all[T any](s state, prefix string) []T {
	out := []T{}
	s.o.iterate(prefix, func(_ string, b []byte) bool {
		var v T
		mustUnmarshal(b, &v)
		out = append(out, v)
		return true
	})
	return out
}
