package gateway

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/deoss/deoss/internal/gateway/pipeline"
)

// metrics are the gateway's Prometheus metrics (GET /metrics).
type metrics struct {
	reg        *prometheus.Registry
	bytesIn    prometheus.Counter
	bytesOut   prometheus.Counter
	pushes     *prometheus.CounterVec // result: ok, failed
	reassigned prometheus.Counter
	cooldowns  prometheus.Counter
	reportWait prometheus.Histogram
}

func newMetrics(q *pipeline.Queue) *metrics {
	m := &metrics{
		reg:        prometheus.NewRegistry(),
		bytesIn:    prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_gateway_bytes_in_total", Help: "User bytes accepted."}),
		bytesOut:   prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_gateway_push_bytes_total", Help: "Fragment bytes pushed to nodes."}),
		pushes:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deoss_gateway_column_pushes_total", Help: "Column pushes by result."}, []string{"result"}),
		reassigned: prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_gateway_reassignments_total", Help: "Columns moved to another node."}),
		cooldowns:  prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_gateway_cooldowns_total", Help: "Nodes sent to the cooldown pool."}),
		reportWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "deoss_gateway_report_seconds", Help: "From declaring a file to its stored state.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 14)}),
	}
	depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "deoss_gateway_queue_files", Help: "Files in the pipeline not yet cleaned."},
		func() float64 {
			recs, err := q.Pending()
			if err != nil {
				return -1
			}
			return float64(len(recs))
		})
	m.reg.MustRegister(m.bytesIn, m.bytesOut, m.pushes, m.reassigned, m.cooldowns, m.reportWait, depth)
	return m
}
