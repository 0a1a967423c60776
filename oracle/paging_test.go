package oracle

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// TestListNodesPaging: a negative page size and a page token this member
// did not hand out are invalid arguments (400 over REST) with messages in
// the API's terms.
func TestListNodesPaging(t *testing.T) {
	c := newCluster(t, 1, nil)
	m := c.leader(5 * time.Second)
	rep := truegpuv1.NewReputationServiceClient(LocalConn(m, &recordingConn{}))
	ctx := context.Background()
	for _, n := range []*testNode{newTestNode(1), newTestNode(2), newTestNode(3)} {
		if _, err := truegpuv1.NewNodeServiceClient(LocalConn(m, &recordingConn{})).RegisterNode(ctx, n.registerReq(m.cfg.Now())); err != nil {
			t.Fatal(err)
		}
	}
	bad := []*truegpuv1.ListNodesRequest{
		{PageSize: -1},
		{PageSize: -1 << 31},
		{PageToken: "-5"},
		{PageToken: "x"},
		{PageToken: "+1"},
		{PageToken: "01"},
	}
	for _, req := range bad {
		_, err := rep.ListNodes(ctx, req)
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("ListNodes(%v): %v, want InvalidArgument", req, err)
			continue
		}
		if msg := status.Convert(err).Message(); strings.Contains(msg, "strconv") || !strings.Contains(msg, "page_") {
			t.Errorf("ListNodes(%v): message %q", req, msg)
		}
	}
	page, err := rep.ListNodes(ctx, &truegpuv1.ListNodesRequest{PageSize: 2})
	if err != nil || len(page.Nodes) != 2 || page.NextPageToken == "" {
		t.Fatalf("first page: %v, %v", page, err)
	}
	rest, err := rep.ListNodes(ctx, &truegpuv1.ListNodesRequest{PageSize: 2, PageToken: page.NextPageToken})
	if err != nil || len(rest.Nodes) != 1 || rest.NextPageToken != "" {
		t.Fatalf("second page: %v, %v", rest, err)
	}
}
