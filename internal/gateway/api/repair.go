package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deoss/deoss/internal/httpapi"
	"github.com/deoss/deoss/internal/ledger"
	"github.com/deoss/deoss/internal/types"
)

// RepairChain is the chain's repair state, for GET /repair/status and
// /repair/whatif and the repair metrics (the gateway's chain view has it;
// an API without it answers 501).
type RepairChain interface {
	RepairStatus(ctx context.Context) (*ledger.RepairStatus, error)
	WhatIf(ctx context.Context, nodes []types.Address) (*ledger.WhatIf, error)
}

func (a *API) repairChain() (RepairChain, error) {
	rc, ok := a.Chain.(RepairChain)
	if !ok {
		return nil, httpapi.Errorf(http.StatusNotImplemented, "unsupported", "this gateway does not read the chain's repair state")
	}
	return rc, nil
}

func (a *API) repairStatus(w http.ResponseWriter, r *http.Request) error {
	rc, err := a.repairChain()
	if err != nil {
		return err
	}
	st, err := rc.RepairStatus(r.Context())
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, st)
	return nil
}

// repairWhatIf answers GET /repair/whatif?node=A,B (or node=A&node=B).
func (a *API) repairWhatIf(w http.ResponseWriter, r *http.Request) error {
	rc, err := a.repairChain()
	if err != nil {
		return err
	}
	var nodes []types.Address
	for _, v := range r.URL.Query()["node"] {
		for _, s := range strings.Split(v, ",") {
			n, err := types.ParseAddress(s)
			if err != nil {
				return httpapi.Errorf(http.StatusBadRequest, "bad_node", "node %q: %v", s, err)
			}
			nodes = append(nodes, n)
		}
	}
	if len(nodes) == 0 || len(nodes) > ledger.MaxWhatIf {
		return httpapi.Errorf(http.StatusBadRequest, "bad_node", "name 1 to %d nodes: ?node=ADDRESS[,ADDRESS...]", ledger.MaxWhatIf)
	}
	wi, err := rc.WhatIf(r.Context(), nodes)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, wi)
	return nil
}

// repairCollector exports the chain's repair state: read on scrape, at most
// every 15 s (a scrape never waits more than 5 s on the chain).
type repairCollector struct {
	rc RepairChain

	mu   sync.Mutex
	at   time.Time
	last *ledger.RepairStatus

	files, bytes, orders, orderBytes *prometheus.Desc
	claims, repaired, eta            *prometheus.Desc
}

func newRepairCollector(rc RepairChain) *repairCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &repairCollector{rc: rc,
		files:      d("deoss_chain_files", "Stored files by health (healthy columns, 0..12).", "health"),
		bytes:      d("deoss_chain_file_bytes", "Bytes of stored files by health.", "health"),
		orders:     d("deoss_repair_orders", "Restoral orders queued, by their file's health.", "health"),
		orderBytes: d("deoss_repair_order_bytes", "Bytes of the queued restoral orders, by their file's health.", "health"),
		claims:     d("deoss_repair_claims", "Restoral claims in flight."),
		repaired:   d("deoss_repair_restored_bytes", "Bytes restored in the last window of block time.", "window"),
		eta:        d("deoss_repair_eta_seconds", "Time the queue would take at the last hour's repair rate (-1: no rate)."),
	}
}

func (c *repairCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.files, c.bytes, c.orders, c.orderBytes, c.claims, c.repaired, c.eta} {
		ch <- d
	}
}

func (c *repairCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	if c.last == nil || time.Since(c.at) > 15*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if st, err := c.rc.RepairStatus(ctx); err == nil {
			c.last, c.at = st, time.Now()
		}
		cancel()
	}
	st := c.last
	c.mu.Unlock()
	if st == nil {
		return
	}
	g := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	for h := range st.Health {
		l := strconv.Itoa(h)
		g(c.files, st.Health[h].Files, l)
		g(c.bytes, st.Health[h].Bytes, l)
		g(c.orders, st.Queue[h].Orders, l)
		g(c.orderBytes, st.Queue[h].Bytes, l)
	}
	g(c.claims, st.Claims)
	g(c.repaired, st.RepairedHour, "hour")
	g(c.repaired, st.RepairedDay, "day")
	ch <- prometheus.MustNewConstMetric(c.eta, prometheus.GaugeValue, float64(st.ETA))
}
