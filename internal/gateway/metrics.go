package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/deoss/deoss/internal/gateway/pipeline"
)

// metrics are the gateway's Prometheus metrics (GET /metrics).
type metrics struct {
	reg      *prometheus.Registry // the distributor registers its own here too
	bytesIn  prometheus.Counter
	chunks   *prometheus.CounterVec // result: created, repeat
	sessions prometheus.Counter
	// Reading.
	fragments    *prometheus.CounterVec // source: cache, work, peer, node
	badFragments prometheus.Counter
	bytesServed  prometheus.Counter
	firstByte    prometheus.Histogram
}

func newMetrics(q *pipeline.Queue) *metrics {
	m := &metrics{
		reg:          prometheus.NewRegistry(),
		bytesIn:      prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_gateway_bytes_in_total", Help: "User bytes accepted."}),
		chunks:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deoss_gateway_chunks_total", Help: "Upload chunks received: created, or a repeat of a stored one."}, []string{"result"}),
		sessions:     prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_gateway_sessions_total", Help: "Upload sessions created."}),
		fragments:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deoss_gateway_fragments_read_total", Help: "Fragments read for downloads, by source."}, []string{"source"}),
		badFragments: prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_gateway_bad_fragments_total", Help: "Fragments that failed verification (routed around)."}),
		bytesServed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_gateway_bytes_served_total", Help: "User bytes sent to downloaders."}),
		firstByte: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "deoss_gateway_first_byte_seconds", Help: "From a download request to its first byte.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
	}
	m.reg.MustRegister(m.bytesIn, m.chunks, m.sessions, m.fragments, m.badFragments, m.bytesServed, m.firstByte, queueDepth{q})
	return m
}

// queueDepth reports the files in the pipeline per state, read from the
// queue at each scrape.
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
