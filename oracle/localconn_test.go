package oracle

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// recordingConn is the remote side of a LocalConn in tests: it records
// which calls reached it and refuses them.
type recordingConn struct{ methods []string }

func (r *recordingConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	r.methods = append(r.methods, method)
	return status.Error(codes.Unavailable, "remote")
}

func (r *recordingConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	r.methods = append(r.methods, method)
	return nil, status.Error(codes.Unavailable, "remote")
}

func TestLocalConn(t *testing.T) {
	c := newCluster(t, 1, nil)
	m := c.leader(5 * time.Second)
	remote := &recordingConn{}
	conn := LocalConn(m, remote)
	ctx := metadata.NewOutgoingContext(context.Background(), metadata.Pairs("x-request-id", "t1"))

	// A registration and a read are served in process and see the member's state.
	n := newTestNode(1)
	reg, err := truegpuv1.NewNodeServiceClient(conn).RegisterNode(ctx, n.registerReq(m.cfg.Now()))
	if err != nil {
		t.Fatalf("RegisterNode: %v", err)
	}
	if reg.Status != truegpuv1.NodeStatus_NODE_STATUS_PROBATION {
		t.Errorf("registered status %v, want probation", reg.Status)
	}
	rep := truegpuv1.NewReputationServiceClient(conn)
	got, err := rep.GetNode(ctx, &truegpuv1.GetNodeRequest{Address: n.addr(), Consistency: truegpuv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE})
	if err != nil {
		t.Fatalf("GetNode: %v", err)
	}
	if got.Node.GetAddress() != n.addr() || len(got.Node.Devices) != 1 || !got.Read.Linearizable {
		t.Errorf("GetNode = %v, want the registered node read linearizably", got)
	}

	// Errors are mapped to status codes as the gRPC server maps them.
	_, err = rep.GetNode(ctx, &truegpuv1.GetNodeRequest{Address: newTestNode(2).addr()})
	if status.Code(err) != codes.NotFound {
		t.Errorf("GetNode of an unknown node: %v, want NotFound", err)
	}
	_, err = rep.GetNode(ctx, &truegpuv1.GetNodeRequest{Address: "not-an-address"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("GetNode of a malformed address: %v, want InvalidArgument", err)
	}

	// The request size cap of the gRPC server holds in process too.
	big := n.registerReq(m.cfg.Now())
	big.Signature = make([]byte, MaxRequestBytes+1)
	_, err = truegpuv1.NewNodeServiceClient(conn).RegisterNode(ctx, big)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(status.Convert(err).Message(), "limit") {
		t.Errorf("oversized request: %v, want ResourceExhausted naming the limit", err)
	}
	if len(remote.methods) != 0 {
		t.Fatalf("unary public calls reached the remote connection: %v", remote.methods)
	}

	// Member-only calls and streams go to the real server.
	_, err = truegpuv1.NewAdminServiceClient(conn).JoinMember(ctx, &truegpuv1.JoinMemberRequest{Id: "x"})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("JoinMember: %v, want the remote's answer", err)
	}
	if _, err := rep.WatchScores(ctx, &truegpuv1.WatchScoresRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("WatchScores: %v, want the remote's answer", err)
	}
	want := []string{truegpuv1.AdminService_JoinMember_FullMethodName, truegpuv1.ReputationService_WatchScores_FullMethodName}
	if strings.Join(remote.methods, ",") != strings.Join(want, ",") {
		t.Errorf("remote saw %v, want %v", remote.methods, want)
	}
}
