package relay

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the relayer's Prometheus metrics.
type Metrics struct {
	// Relayed counts reports the relayer got accepted by the feed.
	Relayed prometheus.Counter
	// Skipped counts reports not submitted, by reason: on_chain (the
	// feed has the epoch or a newer one), incomplete, backlog, missing.
	Skipped *prometheus.CounterVec
	// Failed counts reports not relayed, by reason: wrong_domain,
	// reverted, retries_exhausted.
	Failed *prometheus.CounterVec
	// LastRelayed is the epoch of the last report this relayer relayed.
	LastRelayed prometheus.Gauge
	// ChainEpoch is the feed's latest epoch as last read.
	ChainEpoch prometheus.Gauge
	// Attempts counts submission attempts (retries included).
	Attempts prometheus.Counter
	// GasUsed counts gas used by relayed reports.
	GasUsed prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Relayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "truegpu_relay_reports_relayed_total", Help: "Epoch reports submitted to the feed contract and accepted.",
		}),
		Skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "truegpu_relay_reports_skipped_total", Help: "Epoch reports not submitted, by reason (on_chain, incomplete, backlog, missing).",
		}, []string{"reason"}),
		Failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "truegpu_relay_reports_failed_total", Help: "Epoch reports not relayed, by reason (wrong_domain, reverted, retries_exhausted).",
		}, []string{"reason"}),
		LastRelayed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "truegpu_relay_last_relayed_epoch", Help: "Epoch of the last report this relayer got accepted.",
		}),
		ChainEpoch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "truegpu_relay_chain_epoch", Help: "The feed contract's latest epoch, as last read.",
		}),
		Attempts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "truegpu_relay_submit_attempts_total", Help: "Submission attempts, retries included.",
		}),
		GasUsed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "truegpu_relay_gas_used_total", Help: "Gas used by accepted submissions.",
		}),
	}
	reg.MustRegister(m.Relayed, m.Skipped, m.Failed, m.LastRelayed, m.ChainEpoch, m.Attempts, m.GasUsed)
	for _, r := range []Outcome{SkippedOnChain, SkippedIncomplete, SkippedBacklog, SkippedMissing} {
		m.Skipped.WithLabelValues(string(r))
	}
	for _, r := range []Outcome{FailedDomain, FailedReverted, FailedRetries} {
		m.Failed.WithLabelValues(string(r))
	}
	return m
}
