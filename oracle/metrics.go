package oracle

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	gometrics "github.com/hashicorp/go-metrics"
	gmprom "github.com/hashicorp/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// Metric names are documented in docs/OPERATIONS.md; deploy/prometheus
// and deploy/grafana refer to them.

// latencyBuckets are histogram buckets in seconds, from 100 µs to 30 s.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// memberMetrics are the counters and histograms a member updates as it
// works; gauges read the member's state at scrape time instead.
type memberMetrics struct {
	verdicts          *prometheus.CounterVec
	challengesIssued  prometheus.Counter
	challengesExpired prometheus.Counter
	commitments       prometheus.Counter
	registrations     prometheus.Counter
	proofSeconds      prometheus.Histogram
	entryCommands     prometheus.Histogram
	commitSeconds     prometheus.Histogram
	auditSeconds      prometheus.Histogram
	auditBatch        prometheus.Histogram
	audits            *prometheus.CounterVec
	signaturesSent    prometheus.Counter

	// signedEpoch is the newest epoch this member has signed (0: none seen).
	signedEpoch atomic.Uint64
}

func newMemberMetrics() *memberMetrics {
	const ns, sub = "truegpu", "oracle"
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	hist := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help, Buckets: buckets})
	}
	mm := &memberMetrics{
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "verdicts_total",
			Help: "Verdicts this member committed as leader, by outcome (accepted, rejected) and reason code."}, []string{"outcome", "reason"}),
		challengesIssued:  counter("challenges_issued_total", "Challenges this member issued as leader."),
		challengesExpired: counter("challenges_expired_total", "Overdue challenges this member expired as leader (missed: liveness or unproven commitment)."),
		commitments:       counter("commitments_total", "Commitments this member recorded as leader."),
		registrations:     counter("registrations_total", "Node registrations this member committed as leader."),
		proofSeconds: hist("proof_verification_seconds",
			"Time from a proof submission reaching the leader's pipeline to its verdict being committed: decoding, queueing, batch verification and replication.", latencyBuckets),
		entryCommands: hist("raft_entry_commands", "Commands coalesced into one Raft log entry by this member as leader.",
			[]float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048}),
		commitSeconds: hist("raft_commit_seconds",
			"Time from handing a log entry to Raft to its being committed and applied on this member as leader (replication to a quorum, fsync on each, apply).", latencyBuckets),
		auditSeconds: hist("audit_seconds", "Time this member took to audit one closed epoch (tree, digest and proof re-verification).", latencyBuckets),
		auditBatch: hist("audit_verify_batch_proofs", "Accepted proofs re-verified in one batch by an epoch audit.",
			[]float64{0, 1, 4, 16, 64, 256, 1024, 4096, 16384}),
		audits: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "audits_total",
			Help: "Epoch audits by result: passed (the member signs) or refused (it disagrees and never signs)."}, []string{"result"}),
		signaturesSent: counter("report_signatures_submitted_total", "Epoch report signatures this member submitted and saw accepted."),
	}
	for _, r := range []string{"passed", "refused"} {
		mm.audits.WithLabelValues(r)
	}
	mm.verdicts.WithLabelValues("accepted", "")
	return mm
}

// observeCommitted counts a command this member committed as leader.
func (mm *memberMetrics) observeCommitted(c *truegpuv1.Command) {
	switch b := c.Body.(type) {
	case *truegpuv1.Command_RecordVerdicts:
		for _, v := range b.RecordVerdicts.Verdicts {
			if v.Accepted {
				mm.verdicts.WithLabelValues("accepted", "").Inc()
			} else {
				mm.verdicts.WithLabelValues("rejected", v.Reason).Inc()
			}
		}
	case *truegpuv1.Command_IssueChallenges:
		mm.challengesIssued.Add(float64(len(b.IssueChallenges.Challenges)))
	case *truegpuv1.Command_ExpireChallenges:
		mm.challengesExpired.Add(float64(len(b.ExpireChallenges.ChallengeIds)))
	case *truegpuv1.Command_RecordCommitment:
		mm.commitments.Inc()
	case *truegpuv1.Command_RegisterNode:
		mm.registrations.Inc()
	}
}

// noteSigned records that this member's signature is on epoch e.
func (mm *memberMetrics) noteSigned(e uint64) {
	for {
		cur := mm.signedEpoch.Load()
		if e <= cur || mm.signedEpoch.CompareAndSwap(cur, e) {
			return
		}
	}
}

func (mm *memberMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{mm.verdicts, mm.challengesIssued, mm.challengesExpired, mm.commitments, mm.registrations,
		mm.proofSeconds, mm.entryCommands, mm.commitSeconds, mm.auditSeconds, mm.auditBatch, mm.audits, mm.signaturesSent}
}

// Metrics returns the member's Prometheus metrics, each labelled with the
// member id: Raft and state-machine progress, leadership, queues, verdicts
// by reason, challenges issued and expired, verification and commit
// latency, entry sizes, audits and report signatures, and the health of
// both Pebble stores (fsync latency, compaction debt). Raft's own metrics
// (hashicorp/go-metrics, prefixed truegpu_raft_) are process-wide and
// unlabelled: in a process running several members they cover all of
// them.
func (m *Member) Metrics() prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"member": m.cfg.ID}
	wrapped := prometheus.WrapRegistererWith(labels, reg)
	gauge := func(name, help string, fn func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "truegpu", Subsystem: "oracle", Name: name, Help: help, ConstLabels: labels}, fn))
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
	meta := func(fn func(*truegpuv1.MetaState) float64) func() float64 {
		return func() float64 {
			meta, err := m.fsm.Meta()
			if err != nil {
				return 0
			}
			return fn(meta)
		}
	}
	gauge("nodes", "Registered nodes.", meta(func(s *truegpuv1.MetaState) float64 { return float64(s.NodeCount) }))
	gauge("epoch", "The open epoch.", meta(func(s *truegpuv1.MetaState) float64 { return float64(s.CurrentEpoch) }))
	gauge("last_complete_epoch", "Newest epoch whose report has the threshold of member signatures; 0 if none.",
		meta(func(s *truegpuv1.MetaState) float64 { return float64(s.LastCompleteEpoch) }))
	gauge("verdicts_applied", "Verdicts in the replicated state (every member; grows on followers too).",
		meta(func(s *truegpuv1.MetaState) float64 { return float64(s.TotalVerdicts) }))
	gauge("audit_lag_epochs", "Closed epochs newer than the newest one this member has signed or was not asked to sign: 0 when it is caught up.",
		meta(func(s *truegpuv1.MetaState) float64 {
			closed := s.CurrentEpoch - 1
			if s.CurrentEpoch == 0 {
				closed = 0
			}
			if signed := m.metrics.signedEpoch.Load(); signed < closed {
				return float64(closed - signed)
			}
			return 0
		}))
	latestReport := func(fn func(r *truegpuv1.EpochReport) float64) func() float64 {
		return func() float64 {
			es, err := m.fsm.LatestEpoch(false)
			if err != nil || es.Report == nil {
				return 0
			}
			return fn(es.Report)
		}
	}
	gauge("latest_report_epoch", "Epoch of the newest closed report, signed or not.", latestReport(func(r *truegpuv1.EpochReport) float64 { return float64(r.Epoch) }))
	gauge("latest_report_signatures", "Member signatures on the newest closed report.", latestReport(func(r *truegpuv1.EpochReport) float64 { return float64(len(r.Signatures)) }))
	gauge("latest_report_threshold", "Signatures the newest closed report needs to be complete.", latestReport(func(r *truegpuv1.EpochReport) float64 { return float64(r.Threshold) }))
	for _, c := range m.metrics.collectors() {
		wrapped.MustRegister(c)
	}
	open := func(fn func() *pebble.Metrics) func() *pebble.Metrics {
		return func() *pebble.Metrics {
			if m.ctx.Err() != nil { // closing: the stores may be gone
				return nil
			}
			return fn()
		}
	}
	wrapped.MustRegister(&pebbleCollector{stores: map[string]func() *pebble.Metrics{"raft": open(m.store.Metrics), "state": open(m.fsm.Metrics)}})
	return prometheus.Gatherers{reg, raftMetrics()}
}

var (
	raftMetricsOnce sync.Once
	raftMetricsReg  *prometheus.Registry
)

// raftMetrics bridges hashicorp/go-metrics, which Raft reports to, into a
// Prometheus registry: once per process, since go-metrics is global. Raft's
// timers arrive as summaries in milliseconds, e.g.
// truegpu_raft_commitTime{quantile="0.99"}.
func raftMetrics() *prometheus.Registry {
	raftMetricsOnce.Do(func() {
		raftMetricsReg = prometheus.NewRegistry()
		sink, err := gmprom.NewPrometheusSinkFrom(gmprom.PrometheusOpts{Registerer: raftMetricsReg, Expiration: 10 * time.Minute})
		if err != nil {
			return
		}
		cfg := gometrics.DefaultConfig("truegpu")
		cfg.EnableHostname = false
		cfg.EnableRuntimeMetrics = false
		cfg.EnableServiceLabel = false
		if _, err := gometrics.NewGlobal(cfg, sink); err != nil {
			return
		}
	})
	return raftMetricsReg
}

// pebbleCollector exports the health of a member's Pebble stores (the
// Raft log and the state), labelled by store: WAL fsync latency, estimated
// compaction debt, compactions in progress, read amplification, L0 size
// and disk use.
type pebbleCollector struct {
	stores map[string]func() *pebble.Metrics
}

var (
	pebbleFsyncDesc = prometheus.NewDesc("truegpu_oracle_fsync_seconds",
		"Latency of the Pebble write-ahead log's fsyncs, by store (raft: the Raft log, synced on every write; state: the state machine).", []string{"store"}, nil)
	pebbleDebtDesc = prometheus.NewDesc("truegpu_oracle_pebble_compaction_debt_bytes",
		"Pebble's estimate of the bytes compactions must rewrite for the LSM to reach a stable shape, by store.", []string{"store"}, nil)
	pebbleCompactingDesc = prometheus.NewDesc("truegpu_oracle_pebble_compactions_in_progress",
		"Pebble compactions running now, by store.", []string{"store"}, nil)
	pebbleReadAmpDesc = prometheus.NewDesc("truegpu_oracle_pebble_read_amplification",
		"Pebble read amplification (L0 sublevels plus non-empty levels), by store.", []string{"store"}, nil)
	pebbleL0FilesDesc = prometheus.NewDesc("truegpu_oracle_pebble_l0_files",
		"Table files in Pebble's level 0, by store.", []string{"store"}, nil)
	pebbleDiskDesc = prometheus.NewDesc("truegpu_oracle_pebble_disk_bytes",
		"Disk space used by the Pebble store (tables, WAL, manifest), by store.", []string{"store"}, nil)
)

// fsyncBuckets are the exported fsync histogram's upper bounds in seconds.
var fsyncBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

func (c *pebbleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{pebbleFsyncDesc, pebbleDebtDesc, pebbleCompactingDesc, pebbleReadAmpDesc, pebbleL0FilesDesc, pebbleDiskDesc} {
		ch <- d
	}
}

func (c *pebbleCollector) Collect(ch chan<- prometheus.Metric) {
	for store, metrics := range c.stores {
		pm := metrics()
		if pm == nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(pebbleDebtDesc, prometheus.GaugeValue, float64(pm.Compact.EstimatedDebt), store)
		ch <- prometheus.MustNewConstMetric(pebbleCompactingDesc, prometheus.GaugeValue, float64(pm.Compact.NumInProgress), store)
		ch <- prometheus.MustNewConstMetric(pebbleReadAmpDesc, prometheus.GaugeValue, float64(pm.ReadAmp()), store)
		ch <- prometheus.MustNewConstMetric(pebbleL0FilesDesc, prometheus.GaugeValue, float64(pm.Levels[0].TablesCount), store)
		ch <- prometheus.MustNewConstMetric(pebbleDiskDesc, prometheus.GaugeValue, float64(pm.DiskSpaceUsage()), store)
		if h := pm.LogWriter.FsyncLatency; h != nil {
			if count, sum, buckets, ok := rebucketNanos(h); ok {
				ch <- prometheus.MustNewConstHistogram(pebbleFsyncDesc, count, sum, buckets, store)
			}
		}
	}
}

// rebucketNanos reads Pebble's fsync histogram (observed in nanoseconds,
// about 100 buckets) into fsyncBuckets in seconds. Each exported bucket
// counts the observations at or below the largest Pebble bound that does
// not exceed it, so it never overstates.
func rebucketNanos(h prometheus.Histogram) (count uint64, sum float64, buckets map[float64]uint64, ok bool) {
	var d dto.Metric
	if err := h.Write(&d); err != nil || d.Histogram == nil {
		return 0, 0, nil, false
	}
	hist := d.Histogram
	buckets = make(map[float64]uint64, len(fsyncBuckets))
	for _, b := range fsyncBuckets {
		var n uint64
		for _, pb := range hist.Bucket {
			if pb.GetUpperBound()/1e9 <= b {
				n = pb.GetCumulativeCount()
			}
		}
		buckets[b] = n
	}
	return hist.GetSampleCount(), hist.GetSampleSum() / 1e9, buckets, true
}
