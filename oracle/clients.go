package oracle

import (
	"context"

	"google.golang.org/grpc"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

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
