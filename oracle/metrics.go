package oracle

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics returns the member's Prometheus metrics: Raft and state-machine
// progress, leadership, and the verification queue.
func (m *Member) Metrics() prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	gauge := func(name, help string, fn func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "truegpu", Subsystem: "oracle", Name: name, Help: help, ConstLabels: prometheus.Labels{"member": m.cfg.ID}}, fn))
	}
	gauge("applied_index", "Raft index of the last entry applied to the state machine.", func() float64 { return float64(m.fsm.AppliedIndex()) })
	gauge("commit_index", "Raft commit index seen by this member.", func() float64 { return float64(m.raft.CommitIndex()) })
	gauge("is_leader", "1 when this member leads the cluster.", func() float64 {
		if m.IsLeader() {
			return 1
		}
		return 0
	})
	gauge("verify_queue", "Proofs waiting for batch verification.", func() float64 { return float64(len(m.pipeline.jobs)) })
	gauge("propose_queue", "Commands waiting to be proposed.", func() float64 { return float64(len(m.proposer.queue)) })
	gauge("nodes", "Registered nodes.", func() float64 {
		meta, err := m.fsm.Meta()
		if err != nil {
			return 0
		}
		return float64(meta.NodeCount)
	})
	return reg
}
