package relay

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the relayer's Prometheus metrics.
type Metrics struct {
	// Relayed counts reports the relayer got accepted by the feed.
	Relayed prometheus.Counter
	// Skipped counts reports not submitted, by reason: on_chain (the
	// feed has the epoch or a newer one), incomplete, backlog, missing,
	// expired, superseded_config.
	Skipped *prometheus.CounterVec
	// Failed counts reports not relayed, by reason: wrong_domain,
	// wrong_config, reverted, retries_exhausted.
	Failed *prometheus.CounterVec
	// LastRelayed is the epoch of the last report this relayer relayed.
	LastRelayed prometheus.Gauge
	// ChainEpoch is the feed's latest epoch as last read.
	ChainEpoch prometheus.Gauge
	// Attempts counts submission attempts (retries included).
	Attempts prometheus.Counter
	// GasUsed counts gas used by relayed reports.
	GasUsed prometheus.Counter
	// Paused is 1 while the feed's pause flag is set, as last read.
	Paused prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Relayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "truegpu_relay_reports_relayed_total", Help: "Epoch reports submitted to the feed contract and accepted.",
		}),
		Skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "truegpu_relay_reports_skipped_total", Help: "Epoch reports not submitted, by reason (on_chain, incomplete, backlog, missing, expired, superseded_config).",
		}, []string{"reason"}),
		Failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "truegpu_relay_reports_failed_total", Help: "Epoch reports not relayed, by reason (wrong_domain, wrong_config, reverted, retries_exhausted).",
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
		Paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "truegpu_relay_feed_paused", Help: "1 while the feed contract is paused (nothing is submitted), as last read.",
		}),
	}
	reg.MustRegister(m.Relayed, m.Skipped, m.Failed, m.LastRelayed, m.ChainEpoch, m.Attempts, m.GasUsed, m.Paused)
	for _, r := range []Outcome{SkippedOnChain, SkippedIncomplete, SkippedBacklog, SkippedMissing, SkippedExpired} {
		m.Skipped.WithLabelValues(string(r))
	}
	for _, r := range []Outcome{FailedDomain, FailedReverted, FailedRetries} {
		m.Failed.WithLabelValues(string(r))
	}
	return m
}

// MetricsServer serves a registry's metrics in the Prometheus text format
// at /metrics.
type MetricsServer struct {
	ln  net.Listener
	srv *http.Server
	err chan error
}

// ServeMetrics listens on addr (host:port; port 0 picks one) and serves
// g's metrics at /metrics until Close.
func ServeMetrics(addr string, g prometheus.Gatherer) (*MetricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("relay: serve metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	s := &MetricsServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, err: make(chan error, 1)}
	go func() { s.err <- s.srv.Serve(ln) }()
	return s, nil
}

// URL is the metrics endpoint's address, http://host:port/metrics.
func (s *MetricsServer) URL() string { return "http://" + s.ln.Addr().String() + "/metrics" }

// Close stops serving.
func (s *MetricsServer) Close() error {
	err := s.srv.Close()
	if serr := <-s.err; !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
