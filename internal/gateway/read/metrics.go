package read

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the reader's Prometheus metrics; the API observes the served
// bytes and the first byte's delay.
type Metrics struct {
	fragments    *prometheus.CounterVec // source: cache, work, peer, node
	badFragments prometheus.Counter
	BytesServed  prometheus.Counter
	FirstByte    prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		fragments:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deoss_gateway_fragments_read_total", Help: "Fragments read for downloads, by source."}, []string{"source"}),
		badFragments: prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_gateway_bad_fragments_total", Help: "Fragments that failed verification (routed around)."}),
		BytesServed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_gateway_bytes_served_total", Help: "User bytes sent to downloaders."}),
		FirstByte: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "deoss_gateway_first_byte_seconds", Help: "From a download request to its first byte.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
	}
	if reg != nil {
		reg.MustRegister(m.fragments, m.badFragments, m.BytesServed, m.FirstByte)
	}
	return m
}

// Metrics returns the reader's metrics.
func (rd *Reader) Metrics() *Metrics { return rd.m }
