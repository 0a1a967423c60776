package oracle

import (
	"context"
	"fmt"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// feedService serves truegpu.v1.FeedService: epoch reports and a node's
// Merkle proof in one, read from the local replica.
type feedService struct {
	truegpuv1.UnimplementedFeedServiceServer
	m *Member
}

func (s *feedService) GetLatestReport(ctx context.Context, req *truegpuv1.GetLatestReportRequest) (*truegpuv1.GetLatestReportResponse, error) {
	info, err := s.m.read(ctx, truegpuv1.ReadConsistency_READ_CONSISTENCY_STALE)
	if err != nil {
		return nil, err
	}
	es, err := s.m.fsm.LatestEpoch(!req.IncludeIncomplete)
	if err != nil {
		return nil, err
	}
	return &truegpuv1.GetLatestReportResponse{Report: es.Report, Read: info}, nil
}

func (s *feedService) GetReport(ctx context.Context, req *truegpuv1.GetReportRequest) (*truegpuv1.GetReportResponse, error) {
	info, err := s.m.read(ctx, truegpuv1.ReadConsistency_READ_CONSISTENCY_STALE)
	if err != nil {
		return nil, err
	}
	es, err := s.m.fsm.Epoch(req.Epoch)
	if err != nil {
		return nil, err
	}
	return &truegpuv1.GetReportResponse{Report: es.Report, Read: info}, nil
}

func (s *feedService) GetNodeProof(ctx context.Context, req *truegpuv1.GetNodeProofRequest) (*truegpuv1.GetNodeProofResponse, error) {
	addr, err := parseAddress(req.Address)
	if err != nil {
		return nil, err
	}
	es, err := s.m.fsm.Epoch(req.Epoch)
	if err != nil {
		return nil, err
	}
	var entries []reputation.Entry
	var mine *reputation.Entry
	for _, l := range es.Leaves {
		e := reputation.Entry{Address: ethcrypto.Address(l.Address), Score: l.ScoreBp, Status: reputation.Status(l.Status)}
		entries = append(entries, e)
		if e.Address == addr {
			mine = &e
		}
	}
	if mine == nil {
		return nil, fmt.Errorf("%w: node %s has no leaf in epoch %d", fsm.ErrNotFound, addr, req.Epoch)
	}
	tree, err := reputation.BuildTree(entries)
	if err != nil {
		return nil, err
	}
	proof, err := tree.Proof(addr)
	if err != nil {
		return nil, err
	}
	leaf := reputation.LeafHash(*mine)
	root := tree.Root()
	resp := &truegpuv1.GetNodeProofResponse{Epoch: req.Epoch, Address: addr.String(), ScoreBp: mine.Score,
		Status: truegpuv1.NodeStatus(mine.Status), Leaf: leaf[:], Root: root[:]}
	for _, p := range proof {
		resp.Proof = append(resp.Proof, p[:])
	}
	return resp, nil
}
