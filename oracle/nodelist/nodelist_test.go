package nodelist

import (
	"slices"
	"strings"
	"testing"

	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

func TestPageSize(t *testing.T) {
	for _, c := range []struct {
		in   int32
		want int
	}{{0, DefaultPageSize}, {1, 1}, {MaxPageSize, MaxPageSize}, {MaxPageSize + 1, MaxPageSize}} {
		if got, err := PageSize(c.in); err != nil || got != c.want {
			t.Errorf("PageSize(%d) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	if _, err := PageSize(-1); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("PageSize(-1): %v", err)
	}
	if _, err := ParseOrder("score asc"); err == nil || !strings.Contains(err.Error(), "score desc") {
		t.Errorf("ParseOrder(\"score asc\"): %v, want an error naming the orders", err)
	}
}

// TestCompare: each order, with its tie-break, on nodes whose mixed-case
// addresses sort differently as text and as bytes.
func TestCompare(t *testing.T) {
	n := func(addr string, score uint32, updated int64) *truegpuv1.NodeSummary {
		return &truegpuv1.NodeSummary{Address: addr, ScoreBp: score, UpdatedAtUnixMs: updated}
	}
	// As text "0xB…" sorts before "0xa…"; as bytes 0xa… comes first.
	a := n("0xa000000000000000000000000000000000000001", 5000, 10)
	b := n("0xB000000000000000000000000000000000000002", 5000, 30)
	c := n("0xc000000000000000000000000000000000000003", 9000, 10)
	for _, tc := range []struct {
		order fsm.NodeOrder
		want  []*truegpuv1.NodeSummary
	}{
		{fsm.OrderAddress, []*truegpuv1.NodeSummary{a, b, c}},
		{fsm.OrderScoreDesc, []*truegpuv1.NodeSummary{c, a, b}},
		{fsm.OrderScoreAsc, []*truegpuv1.NodeSummary{b, a, c}},
		{fsm.OrderUpdatedDesc, []*truegpuv1.NodeSummary{b, a, c}},
	} {
		got := slices.SortedFunc(slices.Values([]*truegpuv1.NodeSummary{c, b, a}), func(x, y *truegpuv1.NodeSummary) int { return Compare(tc.order, x, y) })
		if !slices.Equal(got, tc.want) {
			t.Errorf("order %d: %v, want %v", tc.order, got, tc.want)
		}
	}
	req := &truegpuv1.ListNodesRequest{Status: truegpuv1.NodeStatus_NODE_STATUS_TRUSTED, Class: "H100-SXM", MinScoreBp: 6000}
	keep := &truegpuv1.NodeSummary{Status: truegpuv1.NodeStatus_NODE_STATUS_TRUSTED, Classes: []string{"A100-80GB", "H100-SXM"}, ScoreBp: 6000}
	if !Keep(req, keep) {
		t.Error("Keep refused a node that passes every filter")
	}
	for _, edit := range []func(*truegpuv1.NodeSummary){
		func(s *truegpuv1.NodeSummary) { s.Status = truegpuv1.NodeStatus_NODE_STATUS_SUSPECT },
		func(s *truegpuv1.NodeSummary) { s.Classes = []string{"A100-80GB"} },
		func(s *truegpuv1.NodeSummary) { s.ScoreBp = 5999 },
	} {
		s := &truegpuv1.NodeSummary{Status: keep.Status, Classes: keep.Classes, ScoreBp: keep.ScoreBp}
		if edit(s); Keep(req, s) {
			t.Errorf("Keep kept %v", s)
		}
	}
	if !Keep(&truegpuv1.ListNodesRequest{}, &truegpuv1.NodeSummary{}) {
		t.Error("an empty request must keep every node")
	}
}
