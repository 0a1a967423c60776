package fsm

import (
	"bytes"
	"cmp"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// BenchmarkListNodes measures ListNodes pages over a state of 100,000 nodes
// (TRUEGPU_BENCH_NODES to change), built through Apply before the clock
// starts: registrations of one or two devices over four classes (one
// device in twelve copying another's UUID), then three rounds that
// challenge a tenth of the nodes each, with honest, flaky and invalid
// nodes, verdicts, expiries and epoch closes, so statuses and scores
// spread. Node requests carry placeholder signatures that the state's
// Config.Recover resolves (stubSign), which keeps the setup to about half
// a minute.
//
// Each sub-benchmark reads one page of up to 100 rows (the rows metric);
// the minimum score filters keep about one node in twenty. "scan" is the
// listing as it was before the index, for comparison: decode every record,
// filter, sort, take a page.
func BenchmarkListNodes(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("TRUEGPU_BENCH_NODES")); err == nil && v > 0 {
		n = v
	}
	f, err := Open(b.TempDir(), Config{Recover: stubRecover})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	lf := newListFleet(b, f, 42)
	lf.stub, lf.frac = true, 0.1
	lf.register(n)
	for range 3 {
		lf.round()
	}
	counts := f.FleetCounts()
	var scores []uint32
	if err := f.Nodes(func(r *truegpuv1.NodeRecord) bool { scores = append(scores, r.ScoreBp); return true }); err != nil {
		b.Fatal(err)
	}
	slices.Sort(scores)
	// high is a minimum score that about one node in twenty reaches.
	high := max(scores[len(scores)*95/100], 1)
	b.Logf("state of %d nodes built in %v; by status %v; scores %d..%d, minimum score filter %d", counts.Total, time.Since(start).Round(time.Millisecond),
		counts.ByStatus, scores[0], scores[len(scores)-1], high)

	const page = 100
	probation, suspect, rejected := truegpuv1.NodeStatus_NODE_STATUS_PROBATION, truegpuv1.NodeStatus_NODE_STATUS_SUSPECT, truegpuv1.NodeStatus_NODE_STATUS_REJECTED
	second := func(q NodeQuery) NodeQuery {
		p, err := f.ListNodes(q)
		if err != nil || p.Next == nil {
			b.Fatalf("%+v: %v, no second page", q, err)
		}
		q.After = p.Next
		return q
	}
	cases := []struct {
		name string
		q    NodeQuery
	}{
		{"status=probation/score_desc", NodeQuery{Status: probation, Order: OrderScoreDesc, Limit: page}},
		{"status=suspect/score_desc", NodeQuery{Status: suspect, Order: OrderScoreDesc, Limit: page}},
		{"status=rejected/score_desc", NodeQuery{Status: rejected, Order: OrderScoreDesc, Limit: page}},
		{"status=suspect/score_desc/second_page", second(NodeQuery{Status: suspect, Order: OrderScoreDesc, Limit: page})},
		{"status=probation/class/min_score/score_desc", NodeQuery{Status: probation, Class: "H100-SXM", MinScoreBp: high, Order: OrderScoreDesc, Limit: page}},
		{"status=probation/address", NodeQuery{Status: probation, Order: OrderAddress, Limit: page}},
		{"status=suspect/updated_desc", NodeQuery{Status: suspect, Order: OrderUpdatedDesc, Limit: page}},
		{"all/score_desc", NodeQuery{Order: OrderScoreDesc, Limit: page}},
		{"class/score_asc", NodeQuery{Class: "L40S", Order: OrderScoreAsc, Limit: page}},
		{"all/address/min_score", NodeQuery{MinScoreBp: high, Order: OrderAddress, Limit: page}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			rows := 0
			for b.Loop() {
				p, err := f.ListNodes(c.q)
				if err != nil {
					b.Fatal(err)
				}
				rows = len(p.Nodes)
			}
			b.ReportMetric(float64(rows), "rows")
		})
	}
	// What GetFleetStats reads: the counts and the kept timeline.
	b.Run("fleet_counts", func(b *testing.B) {
		for b.Loop() {
			if f.FleetCounts().Total != counts.Total {
				b.Fatal("counts changed")
			}
			if _, err := f.Timeline(0); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("scan/status=suspect/score_desc", func(b *testing.B) {
		for b.Loop() {
			var rows []*truegpuv1.NodeRecord
			if err := f.Nodes(func(r *truegpuv1.NodeRecord) bool {
				if r.Status == suspect {
					rows = append(rows, r)
				}
				return true
			}); err != nil {
				b.Fatal(err)
			}
			slices.SortStableFunc(rows, func(x, y *truegpuv1.NodeRecord) int {
				return cmp.Or(cmp.Compare(y.ScoreBp, x.ScoreBp), bytes.Compare(x.Address, y.Address))
			})
			_ = rows[:min(page, len(rows))]
		}
	})
}
