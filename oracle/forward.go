package oracle

import (
	"context"
	"fmt"
	"sync"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// forward runs call on the leader when this member is not the leader.
// It returns handled=false when this member should serve the call itself.
func forward[Req, Resp any](ctx context.Context, m *Member, req Req, call func(*memberClients, context.Context, Req) (Resp, error)) (resp Resp, handled bool, err error) {
	if m.IsLeader() {
		return resp, false, nil
	}
	if wasForwarded(ctx) {
		return resp, true, m.notLeaderError()
	}
	cc, err := m.leaderConn()
	if err != nil {
		return resp, true, err
	}
	resp, err = call(newMemberClients(cc), ForwardContext(ctx), req)
	return resp, true, err
}

// forwardedKey marks a request a member forwarded to the leader, so a stale
// view of the leader cannot bounce it around.
const forwardedKey = "x-truegpu-forwarded"

// refreshKey marks a JoinMember that only refreshes the metadata of a
// current member (a member keeping its own row current); it never adds a
// voter, so a removed member cannot rejoin by itself.
const refreshKey = "x-truegpu-refresh-only"

// ForwardContext marks an outgoing context as forwarded by a member,
// keeping the refresh-only mark of the incoming call.
func ForwardContext(ctx context.Context) context.Context {
	kv := []string{forwardedKey, "1"}
	if refreshOnly(ctx) {
		kv = append(kv, refreshKey, "1")
	}
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

func refreshOnly(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(refreshKey)) > 0
}

func wasForwarded(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(forwardedKey)) > 0
}

func (m *Member) forwardJoin(ctx context.Context, addr string, meta *truegpuv1.SetMemberCommand) error {
	cc, err := m.peers.get(addr)
	if err != nil {
		return err
	}
	ctx = metadata.AppendToOutgoingContext(ctx, refreshKey, "1")
	_, err = truegpuv1.NewAdminServiceClient(cc).JoinMember(ctx, &truegpuv1.JoinMemberRequest{
		Id: meta.Id, RaftAddress: meta.RaftAddress, GrpcAddress: meta.GrpcAddress, HttpAddress: meta.HttpAddress,
		SignerAddress: ethcrypto.Address(meta.SignerAddress).String(), Seq: meta.Seq, Signature: meta.Signature,
	})
	return err
}

// leaderConn returns a connection to the leader's gRPC server.
func (m *Member) leaderConn() (*grpc.ClientConn, error) {
	id, addr := m.LeaderInfo()
	if id == "" {
		return nil, ErrNoLeader
	}
	if addr == "" {
		return nil, fmt.Errorf("%w: leader %s has not published its gRPC address yet", ErrNoLeader, id)
	}
	return m.peers.get(addr)
}

// conns caches gRPC client connections to other members.
type conns struct {
	mu   sync.Mutex
	byTo map[string]*grpc.ClientConn
	opts []grpc.DialOption
}

func (c *conns) get(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.byTo[addr]; ok {
		return cc, nil
	}
	opts := c.opts
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, err
	}
	if c.byTo == nil {
		c.byTo = map[string]*grpc.ClientConn{}
	}
	c.byTo[addr] = cc
	return cc, nil
}

func (c *conns) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cc := range c.byTo {
		cc.Close()
	}
	c.byTo = nil
}

// memberClients are the clients a follower forwards calls with.
type memberClients struct {
	node   truegpuv1.NodeServiceClient
	rep    truegpuv1.ReputationServiceClient
	admin  truegpuv1.AdminServiceClient
	member truegpuv1.MemberServiceClient
}

func newMemberClients(cc grpc.ClientConnInterface) *memberClients {
	return &memberClients{truegpuv1.NewNodeServiceClient(cc), truegpuv1.NewReputationServiceClient(cc), truegpuv1.NewAdminServiceClient(cc), truegpuv1.NewMemberServiceClient(cc)}
}

func (c *memberClients) registerNode(ctx context.Context, r *truegpuv1.RegisterNodeRequest) (*truegpuv1.RegisterNodeResponse, error) {
	return c.node.RegisterNode(ctx, r)
}

func (c *memberClients) submitCommitment(ctx context.Context, r *truegpuv1.SubmitCommitmentRequest) (*truegpuv1.SubmitCommitmentResponse, error) {
	return c.node.SubmitCommitment(ctx, r)
}

func (c *memberClients) submitWalk(ctx context.Context, r *truegpuv1.SubmitWalkRequest) (*truegpuv1.SubmitWalkResponse, error) {
	return c.node.SubmitWalk(ctx, r)
}

func (c *memberClients) submitProof(ctx context.Context, r *truegpuv1.SubmitProofRequest) (*truegpuv1.SubmitProofResponse, error) {
	return c.node.SubmitProof(ctx, r)
}

func (c *memberClients) getNode(ctx context.Context, r *truegpuv1.GetNodeRequest) (*truegpuv1.GetNodeResponse, error) {
	return c.rep.GetNode(ctx, r)
}

func (c *memberClients) listNodes(ctx context.Context, r *truegpuv1.ListNodesRequest) (*truegpuv1.ListNodesResponse, error) {
	return c.rep.ListNodes(ctx, r)
}

func (c *memberClients) joinMember(ctx context.Context, r *truegpuv1.JoinMemberRequest) (*truegpuv1.JoinMemberResponse, error) {
	return c.admin.JoinMember(ctx, r)
}

func (c *memberClients) removeMember(ctx context.Context, r *truegpuv1.RemoveMemberRequest) (*truegpuv1.RemoveMemberResponse, error) {
	return c.admin.RemoveMember(ctx, r)
}

func (c *memberClients) submitReportSignature(ctx context.Context, r *truegpuv1.SubmitReportSignatureRequest) (*truegpuv1.SubmitReportSignatureResponse, error) {
	return c.member.SubmitReportSignature(ctx, r)
}
