package oracle

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/truegpu/truegpu/internal/testwait"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// metricValue returns the value of the series of name whose labels
// include want, and whether it exists.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) (float64, bool) {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue series
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return m.Counter.GetValue(), true
			case dto.MetricType_GAUGE:
				return m.Gauge.GetValue(), true
			case dto.MetricType_HISTOGRAM:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// TestMetricsFollowAnEpoch closes an epoch on a one-member cluster and
// watches the member's metrics: the audit passes, the signature is
// submitted and counted, the report shows it, and the audit lag returns
// to 0; commit latency and entry sizes have samples; both Pebble stores
// report.
func TestMetricsFollowAnEpoch(t *testing.T) {
	c := newCluster(t, 1, nil)
	l := c.leader(5 * time.Second)
	g := l.Metrics()
	testwait.Until(t, 10*time.Second, l.selfRegistered, "member row never registered")
	if _, err := l.Propose(context.Background(), &truegpuv1.Command{Body: &truegpuv1.Command_CloseEpoch{CloseEpoch: &truegpuv1.CloseEpochCommand{Epoch: 1}}}); err != nil {
		t.Fatal(err)
	}
	member := map[string]string{"member": l.ID()}
	want := map[string]float64{
		"truegpu_oracle_report_signatures_submitted_total": 1,
		"truegpu_oracle_latest_report_signatures":          1,
		"truegpu_oracle_latest_report_threshold":           1,
		"truegpu_oracle_latest_report_epoch":               1,
		"truegpu_oracle_audit_lag_epochs":                  0,
	}
	testwait.UntilNil(t, 20*time.Second, func() error {
		for name, v := range want {
			if got, ok := metricValue(t, g, name, member); !ok || got != v {
				return fmt.Errorf("%s is %v (present %v), want %v", name, got, ok, v)
			}
		}
		if passed, _ := metricValue(t, g, "truegpu_oracle_audits_total", map[string]string{"member": l.ID(), "result": "passed"}); passed != 1 {
			return fmt.Errorf("truegpu_oracle_audits_total{result=passed} is %v, want 1", passed)
		}
		return nil
	}, "the member's metrics did not follow the epoch")
	for _, name := range []string{"truegpu_oracle_raft_commit_seconds", "truegpu_oracle_raft_entry_commands"} {
		if n, _ := metricValue(t, g, name, member); n == 0 {
			t.Errorf("%s has no samples", name)
		}
	}
	for _, store := range []string{"raft", "state"} {
		if _, ok := metricValue(t, g, "truegpu_oracle_pebble_compaction_debt_bytes", map[string]string{"member": l.ID(), "store": store}); !ok {
			t.Errorf("no compaction debt for the %s store", store)
		}
	}
	if n, _ := metricValue(t, g, "truegpu_oracle_fsync_seconds", map[string]string{"member": l.ID(), "store": "raft"}); n == 0 {
		t.Error("the Raft log's fsync histogram has no samples")
	}
}

// TestObserveCommitted counts committed commands by kind.
func TestObserveCommitted(t *testing.T) {
	mm := newMemberMetrics()
	mm.observeCommitted(&truegpuv1.Command{Body: &truegpuv1.Command_RecordVerdicts{RecordVerdicts: &truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{
		{Accepted: true}, {Reason: "PROOF_INVALID"}, {Reason: "PROOF_INVALID"}, {Reason: "COMMITMENT_LATE"},
	}}}})
	mm.observeCommitted(&truegpuv1.Command{Body: &truegpuv1.Command_IssueChallenges{IssueChallenges: &truegpuv1.IssueChallengesCommand{Challenges: make([]*truegpuv1.IssuedChallenge, 3)}}})
	mm.observeCommitted(&truegpuv1.Command{Body: &truegpuv1.Command_ExpireChallenges{ExpireChallenges: &truegpuv1.ExpireChallengesCommand{ChallengeIds: make([][]byte, 2)}}})
	reg := prometheus.NewRegistry()
	reg.MustRegister(mm.collectors()...)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"truegpu_oracle_verdicts_total", map[string]string{"outcome": "accepted"}, 1},
		{"truegpu_oracle_verdicts_total", map[string]string{"outcome": "rejected", "reason": "PROOF_INVALID"}, 2},
		{"truegpu_oracle_verdicts_total", map[string]string{"outcome": "rejected", "reason": "COMMITMENT_LATE"}, 1},
		{"truegpu_oracle_challenges_issued_total", nil, 3},
		{"truegpu_oracle_challenges_expired_total", nil, 2},
	} {
		if got, _ := metricValue(t, reg, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}
