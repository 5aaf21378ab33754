package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/deoss/deoss/internal/gateway/pipeline"
)

// newRegistry is the gateway's Prometheus registry (GET /metrics): each part
// registers its own metrics on it; the queue's depth is read at each scrape.
func newRegistry(q *pipeline.Queue) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(queueDepth{q})
	return reg
}

// queueDepth reports the files in the pipeline per state, read from the
// queue at each scrape (the active records only).
type queueDepth struct{ q *pipeline.Queue }

var queueDepthDesc = prometheus.NewDesc("deoss_gateway_queue_files", "Files in the pipeline not yet cleaned, by state.", []string{"state"}, nil)

func (d queueDepth) Describe(ch chan<- *prometheus.Desc) { ch <- queueDepthDesc }

func (d queueDepth) Collect(ch chan<- prometheus.Metric) {
	recs, err := d.q.Pending()
	if err != nil {
		return
	}
	n := map[string]int{pipeline.Processed: 0, pipeline.Declared: 0, pipeline.Distributing: 0, pipeline.Stored: 0, pipeline.Deleting: 0}
	for _, r := range recs {
		n[r.State]++
	}
	for state, c := range n {
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(c), state)
	}
}
