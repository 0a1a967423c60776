package oracle

import (
	"context"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// reputationService serves truegpu.v1.ReputationService: GetNode and
// WatchScores here, ListNodes and GetFleetStats in listing.go.
type reputationService struct {
	truegpuv1.UnimplementedReputationServiceServer
	m *Member
}

func (s *reputationService) GetNode(ctx context.Context, req *truegpuv1.GetNodeRequest) (*truegpuv1.GetNodeResponse, error) {
	addr, err := parseAddress(req.Address)
	if err != nil {
		return nil, err
	}
	if linearizable(req.Consistency) {
		if r, ok, err := forward(ctx, s.m, req, (*memberClients).getNode); ok {
			return r, err
		}
	}
	info, err := s.m.read(ctx, req.Consistency)
	if err != nil {
		return nil, err
	}
	rec, err := s.m.fsm.Node(addr)
	if err != nil {
		return nil, err
	}
	view, err := s.m.NodeView(rec)
	if err != nil {
		return nil, err
	}
	return &truegpuv1.GetNodeResponse{Node: view, Read: info}, nil
}

func (s *reputationService) WatchScores(req *truegpuv1.WatchScoresRequest, stream truegpuv1.ReputationService_WatchScoresServer) error {
	want := map[string]bool{}
	for _, a := range req.Addresses {
		addr, err := parseAddress(a)
		if err != nil {
			return err
		}
		want[addr.String()] = true
	}
	notes, cancel := s.m.fsm.Subscribe(1024)
	defer cancel()
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.m.ctx.Done():
			return ErrClosed
		case n, ok := <-notes:
			if !ok {
				return nil
			}
			for _, c := range n.ScoreChanges {
				if len(want) > 0 && !want[c.Address] {
					continue
				}
				if err := stream.Send(&truegpuv1.WatchScoresResponse{Change: c}); err != nil {
					return err
				}
			}
		}
	}
}
