package oracle

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/hashicorp/raft"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// adminService serves truegpu.v1.AdminService: the cluster's view, health,
// and membership changes (member-only; see identity.go).
type adminService struct {
	truegpuv1.UnimplementedAdminServiceServer
	m *Member
}

func (s *adminService) GetCluster(ctx context.Context, req *truegpuv1.GetClusterRequest) (*truegpuv1.GetClusterResponse, error) {
	m := s.m
	cf := m.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return nil, mapRaftError(err)
	}
	table, err := m.fsm.Members()
	if err != nil {
		return nil, err
	}
	meta, err := m.fsm.Meta()
	if err != nil {
		return nil, err
	}
	byID := map[string]*truegpuv1.SetMemberCommand{}
	for _, t := range table {
		byID[t.Id] = t
	}
	leaderID, _ := m.LeaderInfo()
	resp := &truegpuv1.GetClusterResponse{LeaderId: leaderID, AppliedIndex: m.fsm.AppliedIndex(), CommitIndex: m.raft.CommitIndex(),
		CurrentEpoch: meta.CurrentEpoch, LastCompleteEpoch: meta.LastCompleteEpoch, ServedBy: m.cfg.ID, NodeCount: meta.NodeCount,
		ClusterId: m.cfg.ClusterID, Shadow: meta.Shadow}
	if t, err := strconv.ParseUint(m.raft.Stats()["term"], 10, 64); err == nil {
		resp.Term = t
	}
	signers := 0
	for _, srv := range cf.Configuration().Servers {
		mem := &truegpuv1.Member{Id: string(srv.ID), RaftAddress: string(srv.Address), Suffrage: suffrage(srv.Suffrage), Leader: string(srv.ID) == leaderID}
		if t := byID[mem.Id]; t != nil {
			mem.GrpcAddress, mem.HttpAddress = t.GrpcAddress, t.HttpAddress
			if len(t.SignerAddress) == 20 {
				mem.SignerAddress = ethcrypto.Address(t.SignerAddress).String()
				signers++
			}
		}
		resp.Members = append(resp.Members, mem)
	}
	sort.Slice(resp.Members, func(i, j int) bool { return resp.Members[i].Id < resp.Members[j].Id })
	if signers > 0 {
		resp.ReportThreshold = uint32(fsm.Threshold(signers))
	}
	return resp, nil
}

func suffrage(s raft.ServerSuffrage) string {
	switch s {
	case raft.Voter:
		return "voter"
	case raft.Nonvoter:
		return "nonvoter"
	default:
		return "staging"
	}
}

func (s *adminService) JoinMember(ctx context.Context, req *truegpuv1.JoinMemberRequest) (*truegpuv1.JoinMemberResponse, error) {
	if err := s.m.authorize(ctx, "JoinMember", req.Id, true); err != nil {
		return nil, err
	}
	if r, ok, err := forward(ctx, s.m, req, (*memberClients).joinMember); ok {
		return r, err
	}
	if req.Id == "" || req.RaftAddress == "" {
		return nil, fmt.Errorf("%w: id and raft_address are required", ErrInvalidRequest)
	}
	meta := &truegpuv1.SetMemberCommand{Id: req.Id, RaftAddress: req.RaftAddress, GrpcAddress: req.GrpcAddress, HttpAddress: req.HttpAddress,
		Seq: req.Seq, Signature: req.Signature}
	if req.SignerAddress != "" {
		a, err := parseAddress(req.SignerAddress)
		if err != nil {
			return nil, err
		}
		meta.SignerAddress = a[:]
	}
	idx, err := s.m.join(ctx, meta, refreshOnly(ctx))
	if err != nil {
		return nil, err
	}
	return &truegpuv1.JoinMemberResponse{Index: idx}, nil
}

func (s *adminService) RemoveMember(ctx context.Context, req *truegpuv1.RemoveMemberRequest) (*truegpuv1.RemoveMemberResponse, error) {
	if err := s.m.authorize(ctx, "RemoveMember", req.Id, true); err != nil {
		return nil, err
	}
	if r, ok, err := forward(ctx, s.m, req, (*memberClients).removeMember); ok {
		return r, err
	}
	if req.Id == "" {
		return nil, fmt.Errorf("%w: id is required", ErrInvalidRequest)
	}
	idx, err := s.m.Remove(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return &truegpuv1.RemoveMemberResponse{Index: idx}, nil
}

// Health reports the member's health.
func (m *Member) Health() *truegpuv1.GetHealthResponse {
	leaderID, _ := m.LeaderInfo()
	resp := &truegpuv1.GetHealthResponse{RaftState: lowerState(m.raft.State()), AppliedIndex: m.fsm.AppliedIndex(), LeaderId: leaderID}
	if leaderID == "" {
		resp.Problems = append(resp.Problems, "no leader")
	}
	if lag := m.raft.CommitIndex() - min(m.raft.CommitIndex(), m.fsm.AppliedIndex()); lag > 10000 {
		resp.Problems = append(resp.Problems, fmt.Sprintf("applying lags the commit index by %d entries", lag))
	}
	resp.Status = "serving"
	if len(resp.Problems) > 0 {
		resp.Status = "degraded"
	}
	return resp
}

func lowerState(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	default:
		return "shutdown"
	}
}

func (s *adminService) GetHealth(ctx context.Context, req *truegpuv1.GetHealthRequest) (*truegpuv1.GetHealthResponse, error) {
	return s.m.Health(), nil
}
