package api

import "github.com/prometheus/client_golang/prometheus"

// metrics are the API's own counters.
type metrics struct {
	chunks   *prometheus.CounterVec // result: created, repeat
	sessions prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		chunks:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "deoss_gateway_chunks_total", Help: "Upload chunks received: created, or a repeat of a stored one."}, []string{"result"}),
		sessions: prometheus.NewCounter(prometheus.CounterOpts{Name: "deoss_gateway_sessions_total", Help: "Upload sessions created."}),
	}
	if reg != nil {
		reg.MustRegister(m.chunks, m.sessions)
	}
	return m
}
