package distribute

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the distributor's Prometheus metrics.
type Metrics struct {
	bytesOut   prometheus.Counter
	pushes     *prometheus.CounterVec // result: ok, failed (charged), not_charged
	reassigned prometheus.Counter
	cooldowns  prometheus.Counter
	reportWait prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		bytesOut:   prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_gateway_push_bytes_total", Help: "Fragment bytes pushed to nodes."}),
		pushes:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deoss_gateway_column_pushes_total", Help: "Column pushes by result: ok, failed (charged to the node), not_charged (the gateway's side or the file's state)."}, []string{"result"}),
		reassigned: prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_gateway_reassignments_total", Help: "Columns moved to another node."}),
		cooldowns:  prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_gateway_cooldowns_total", Help: "Nodes sent to the cooldown pool."}),
		reportWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "deoss_gateway_report_seconds", Help: "From declaring a file to its stored state.",
			Buckets: prometheus.ExponentialBuckets(0.1, 2, 14)}),
	}
	if reg != nil {
		reg.MustRegister(m.bytesOut, m.pushes, m.reassigned, m.cooldowns, m.reportWait)
	}
	return m
}
