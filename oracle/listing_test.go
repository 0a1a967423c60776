package oracle

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/truegpu/truegpu/oracle/nodelist"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// TestListNodesServed: ListNodes over gRPC filters by status, class and
// minimum score, orders and pages through the listing index, with tokens
// bound to their listing's filters and order; GetFleetStats' counts equal a
// recount of the records and its timeline ends at the fleet's size.
func TestListNodesServed(t *testing.T) {
	c := newCluster(t, 1, nil)
	m := c.leader(5 * time.Second)
	rep := truegpuv1.NewReputationServiceClient(LocalConn(m, &recordingConn{}))
	nodes := truegpuv1.NewNodeServiceClient(LocalConn(m, &recordingConn{}))
	ctx := context.Background()
	classes := []string{"H100-SXM", "A100-80GB", "L40S"}
	for i := range 25 {
		n := newTestNode(100 + i)
		n.dev.ClaimedClass = classes[i%len(classes)]
		if _, err := nodes.RegisterNode(ctx, n.registerReq(m.cfg.Now())); err != nil {
			t.Fatal(err)
		}
	}
	var recs []*truegpuv1.NodeRecord
	if err := m.fsm.Nodes(func(r *truegpuv1.NodeRecord) bool { recs = append(recs, r); return true }); err != nil {
		t.Fatal(err)
	}
	list := func(req *truegpuv1.ListNodesRequest) []*truegpuv1.NodeSummary {
		t.Helper()
		var out []*truegpuv1.NodeSummary
		for {
			resp, err := rep.ListNodes(ctx, req)
			if err != nil {
				t.Fatalf("%v: %v", req, err)
			}
			out = append(out, resp.Nodes...)
			if resp.NextPageToken == "" {
				return out
			}
			req.PageToken = resp.NextPageToken
		}
	}
	// Every listing is exactly the records nodelist.Keep keeps, in
	// nodelist.Compare's order: the semantics the API test fixture serves.
	for _, class := range append(classes, "") {
		for _, orderBy := range []string{"", "address", "score", "score desc", "updated desc"} {
			order, err := nodelist.ParseOrder(orderBy)
			if err != nil {
				t.Fatal(err)
			}
			for _, st := range []truegpuv1.NodeStatus{0, truegpuv1.NodeStatus_NODE_STATUS_PROBATION, truegpuv1.NodeStatus_NODE_STATUS_REJECTED} {
				for _, minScore := range []uint32{0, 1} {
					req := &truegpuv1.ListNodesRequest{Class: class, OrderBy: orderBy, Status: st, MinScoreBp: minScore, PageSize: 4}
					var want []*truegpuv1.NodeSummary
					for _, r := range recs {
						if sm := summary(r); nodelist.Keep(req, sm) {
							want = append(want, sm)
						}
					}
					slices.SortFunc(want, func(a, b *truegpuv1.NodeSummary) int { return nodelist.Compare(order, a, b) })
					got := list(req)
					if !slices.EqualFunc(got, want, func(a, b *truegpuv1.NodeSummary) bool { return a.Address == b.Address }) {
						t.Errorf("class %q status %v order %q min score %d: %v, want %v", class, st, orderBy, minScore, addresses(got), addresses(want))
					}
				}
			}
		}
	}
	// The page's total is the whole listing's.
	first, err := rep.ListNodes(ctx, &truegpuv1.ListNodesRequest{Class: "L40S", PageSize: 2, OrderBy: "score desc"})
	if err != nil || len(first.Nodes) != 2 || first.TotalSize != 8 || first.NextPageToken == "" {
		t.Fatalf("first L40S page: %v, %v", first, err)
	}
	// A token is good only for its own listing.
	for _, req := range []*truegpuv1.ListNodesRequest{
		{Class: "H100-SXM", PageSize: 2, OrderBy: "score desc", PageToken: first.NextPageToken},
		{Class: "L40S", PageSize: 2, OrderBy: "score", PageToken: first.NextPageToken},
		{Class: "L40S", PageSize: 2, OrderBy: "score desc", MinScoreBp: 1, PageToken: first.NextPageToken},
		{Class: "L40S", PageSize: 2, OrderBy: "score desc", PageToken: first.NextPageToken[:len(first.NextPageToken)-2]},
		{PageToken: "AQAAAAAA"}, // a well-formed header of no listing
	} {
		_, err := rep.ListNodes(ctx, req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "page_token") {
			t.Errorf("ListNodes(%v): %v, want InvalidArgument about page_token", req, err)
		}
	}
	// The same listing goes on with a different page size.
	if rest, err := rep.ListNodes(ctx, &truegpuv1.ListNodesRequest{Class: "L40S", PageSize: 100, OrderBy: "score desc", PageToken: first.NextPageToken}); err != nil || len(rest.Nodes) != 6 || rest.NextPageToken != "" {
		t.Fatalf("rest of the L40S listing: %v, %v", rest, err)
	}

	stats, err := rep.GetFleetStats(ctx, &truegpuv1.GetFleetStatsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	byStatus := map[string]uint32{}
	byClass := map[string]map[string]uint32{}
	for _, r := range recs {
		st := statusName(r.Status)
		byStatus[st]++
		for _, c := range summary(r).Classes {
			if byClass[c] == nil {
				byClass[c] = map[string]uint32{}
			}
			byClass[c][st]++
		}
	}
	if stats.TotalNodes != uint32(len(recs)) || len(stats.ByStatus) != len(byStatus) || len(stats.ByClass) != len(byClass) {
		t.Fatalf("fleet stats %v; recount: %d nodes, %v, %v", stats, len(recs), byStatus, byClass)
	}
	for st, n := range byStatus {
		if stats.ByStatus[st] != n {
			t.Errorf("by status %s: %d, recount %d", st, stats.ByStatus[st], n)
		}
	}
	for i, cc := range stats.ByClass {
		if i > 0 && stats.ByClass[i-1].Class >= cc.Class {
			t.Errorf("classes out of order: %q after %q", cc.Class, stats.ByClass[i-1].Class)
		}
		for st, n := range byClass[cc.Class] {
			if cc.ByStatus[st] != n {
				t.Errorf("class %s status %s: %d, recount %d", cc.Class, st, cc.ByStatus[st], n)
			}
		}
	}
	tl := stats.Timeline
	if len(tl) != timelineBuckets || tl[len(tl)-1].Nodes != uint32(len(recs)) {
		t.Fatalf("timeline of %d points, last %v; want %d points ending at %d nodes", len(tl), tl[len(tl)-1], timelineBuckets, len(recs))
	}
	for i := 1; i < len(tl); i++ {
		if tl[i].AtUnixMs-tl[i-1].AtUnixMs != 60_000 || tl[i].Nodes < tl[i-1].Nodes {
			t.Fatalf("timeline points %v then %v", tl[i-1], tl[i])
		}
	}
}

func addresses(ns []*truegpuv1.NodeSummary) []string {
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = n.Address
	}
	return out
}
