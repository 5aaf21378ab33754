package ledger

import (
	"github.com/deoss/deoss/internal/types"
)

// Health is a histogram by health, 0..12 healthy columns.
type Health [types.TotalShards + 1]HealthBucket

// QueueBucket counts the open orders of files of one health.
type QueueBucket struct {
	Orders   uint64 `json:"orders"`
	Bytes    uint64 `json:"bytes"`
	Eligible uint64 `json:"eligible"` // claimable now
}

// RepairStatus is the answer to "repair".
type RepairStatus struct {
	Now    int64                              `json:"now"`
	Health Health                             `json:"health"`
	Queue  [types.TotalShards + 1]QueueBucket `json:"queue"`
	// Claims in flight and their bytes.
	Claims      uint64 `json:"claims"`
	ClaimsBytes uint64 `json:"claims_bytes"`
	// Bytes restored in the last hour and day of block time, the rate
	// measured over the last hour (or the day, if the hour restored
	// nothing), and the time the queue would take at it (-1: no rate).
	RepairedHour uint64 `json:"repaired_bytes_hour"`
	RepairedDay  uint64 `json:"repaired_bytes_day"`
	Rate         uint64 `json:"rate_bytes_per_second"`
	ETA          int64  `json:"eta_seconds"`
	// Sweeping: nodes whose change of state is still being applied to
	// their columns (the histogram lags them until it is).
	Sweeping uint64 `json:"sweeping_nodes"`
}

// RestoralQueue is the answer to "restorals".
type RestoralQueue struct {
	Now    int64      `json:"now"`
	Orders []Restoral `json:"orders"`
}

// WhatIf is the answer to "whatif": the histogram now and after losing
// Nodes (their columns counted unhealthy), with the files that would fall
// below 4 and the bytes repair would move.
type WhatIf struct {
	Nodes         []types.Address `json:"nodes"`
	Before        Health          `json:"before"`
	After         Health          `json:"after"`
	FilesAffected uint64          `json:"files_affected"`
	FilesLost     uint64          `json:"files_lost"`
	RepairBytes   uint64          `json:"repair_bytes"`
}

// MaxWhatIf bounds the nodes of one what-if.
const MaxWhatIf = 64

func (q querier) health() Health {
	var h Health
	q.s.o.iterate(pHealth, func(k string, v []byte) bool {
		if i := int(k[len(pHealth)]); i < len(h) {
			mustUnmarshal(v, &h[i])
		}
		return true
	})
	return h
}

func (q querier) repairStatus() RepairStatus {
	st := RepairStatus{Now: q.now, Health: q.health(), ETA: -1}
	var queued uint64
	q.s.o.iterate(pQueue, func(k string, v []byte) bool {
		i := int(k[len(pQueue)])
		b := uint64At(v)
		st.Queue[i].Orders++
		st.Queue[i].Bytes += b
		if int64(beUint64(k[len(pQueue)+1:])) <= q.now {
			st.Queue[i].Eligible++
		}
		queued += b
		return true
	})
	q.s.o.iterate(pClaim, func(k string, _ []byte) bool {
		var fid types.FID
		copy(fid[:], k[len(pClaim)+8:])
		if r, ok := load[Restoral](q.s, orderKey(fid, k[len(pClaim)+8+types.HashSize])); ok {
			st.Claims++
			st.ClaimsBytes += r.Bytes
			queued += r.Bytes
		}
		return true
	})
	q.s.o.iterate(pRepaird, func(k string, v []byte) bool {
		t := int64(beUint64(k[len(pRepaird):]))
		if t+RepairWindow > q.now-86400 {
			st.RepairedDay += uint64At(v)
		}
		if t+RepairWindow > q.now-3600 {
			st.RepairedHour += uint64At(v)
		}
		return true
	})
	switch {
	case st.RepairedHour > 0:
		st.Rate = st.RepairedHour / 3600
	case st.RepairedDay > 0:
		st.Rate = st.RepairedDay / 86400
	}
	if queued == 0 {
		st.ETA = 0
	} else if st.Rate > 0 {
		st.ETA = int64(queued / st.Rate)
	}
	q.s.o.iterate(pSweep, func(string, []byte) bool { st.Sweeping++; return true })
	return st
}

func (q querier) restorals() RestoralQueue {
	out := RestoralQueue{Now: q.now, Orders: []Restoral{}}
	q.s.o.iterate(pQueue, func(k string, _ []byte) bool {
		var fid types.FID
		rest := k[len(pQueue)+1+8:]
		copy(fid[:], rest)
		if r, ok := load[Restoral](q.s, orderKey(fid, rest[types.HashSize])); ok {
			out.Orders = append(out.Orders, *r)
		}
		return len(out.Orders) < q.page.limit
	})
	return out
}

func (q querier) claims(node types.Address) []Restoral {
	out := []Restoral{}
	q.s.o.iterate(pClaim, func(k string, _ []byte) bool {
		var fid types.FID
		copy(fid[:], k[len(pClaim)+8:])
		if r, ok := load[Restoral](q.s, orderKey(fid, k[len(pClaim)+8+types.HashSize])); ok && r.Claimant == node {
			out = append(out, *r)
		}
		return true
	})
	return out
}

// whatIf walks the nodes' columns (a query, not a block: its work is the
// columns of the nodes named) and moves each file they touch from its
// health to what it would be without them.
func (q querier) whatIf(nodes []types.Address) WhatIf {
	w := WhatIf{Nodes: nodes, Before: q.health()}
	w.After = w.Before
	lose := map[types.FID]uint8{} // healthy columns on the nodes, per file
	var order []types.FID
	for _, n := range nodes {
		prefix := pNodeCol + string(n[:])
		q.s.o.iterate(prefix, func(k string, _ []byte) bool {
			var fid types.FID
			copy(fid[:], k[len(prefix):])
			col := k[len(prefix)+types.HashSize]
			f, ok := load[File](q.s, fidKey(fid))
			if !ok || !counted(f) || f.Columns[col].Node != n {
				return true
			}
			if _, seen := lose[fid]; !seen {
				order = append(order, fid)
			}
			if f.Columns[col].Down == "" {
				lose[fid]++
				w.RepairBytes += ColumnBytes(&f.Layout)
			}
			return true
		})
	}
	for _, fid := range order {
		k := lose[fid]
		if k == 0 {
			continue
		}
		f, _ := load[File](q.s, fidKey(fid))
		w.FilesAffected++
		after := f.Health - min(k, f.Health)
		b := &w.After[f.Health]
		b.Files--
		b.Bytes -= f.Layout.Size
		w.After[after].Files++
		w.After[after].Bytes += f.Layout.Size
		if after < types.DataShards && f.Health >= types.DataShards {
			w.FilesLost++
		}
	}
	return w
}
