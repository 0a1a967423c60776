package oracle

import (
	"context"
	"time"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// nodeService serves truegpu.v1.NodeService: registration, the protocol's
// submissions (commitment, walk, proof) and challenge polls and streams.
// The writes are served by the leader's pipeline; a follower forwards them.
type nodeService struct {
	truegpuv1.UnimplementedNodeServiceServer
	m *Member
}

func (s *nodeService) RegisterNode(ctx context.Context, req *truegpuv1.RegisterNodeRequest) (*truegpuv1.RegisterNodeResponse, error) {
	if r, ok, err := forward(ctx, s.m, req, (*memberClients).registerNode); ok {
		return r, err
	}
	return s.m.pipeline.Register(ctx, req)
}

func (s *nodeService) SubmitCommitment(ctx context.Context, req *truegpuv1.SubmitCommitmentRequest) (*truegpuv1.SubmitCommitmentResponse, error) {
	if r, ok, err := forward(ctx, s.m, req, (*memberClients).submitCommitment); ok {
		return r, err
	}
	return s.m.pipeline.Commit(ctx, req)
}

func (s *nodeService) SubmitWalk(ctx context.Context, req *truegpuv1.SubmitWalkRequest) (*truegpuv1.SubmitWalkResponse, error) {
	if r, ok, err := forward(ctx, s.m, req, (*memberClients).submitWalk); ok {
		return r, err
	}
	return s.m.pipeline.Walk(ctx, req)
}

func (s *nodeService) SubmitProof(ctx context.Context, req *truegpuv1.SubmitProofRequest) (*truegpuv1.SubmitProofResponse, error) {
	if r, ok, err := forward(ctx, s.m, req, (*memberClients).submitProof); ok {
		return r, err
	}
	start := time.Now()
	resp, err := s.m.pipeline.Proof(ctx, req)
	if err == nil {
		s.m.metrics.proofSeconds.Observe(time.Since(start).Seconds())
	}
	return resp, err
}

func (s *nodeService) PollChallenges(ctx context.Context, req *truegpuv1.PollChallengesRequest) (*truegpuv1.PollChallengesResponse, error) {
	addr, err := s.m.checkAccess(req, req)
	if err != nil {
		return nil, err
	}
	chs, err := s.m.openChallenges(addr)
	if err != nil {
		return nil, err
	}
	return &truegpuv1.PollChallengesResponse{Challenges: chs}, nil
}

// StreamChallenges is served from the local replica: it sends the node's
// open challenges, then each new one as this member applies it.
func (s *nodeService) StreamChallenges(req *truegpuv1.StreamChallengesRequest, stream truegpuv1.NodeService_StreamChallengesServer) error {
	addr, err := s.m.checkAccess(req, req)
	if err != nil {
		return err
	}
	notes, cancel := s.m.fsm.Subscribe(256)
	defer cancel()
	chs, err := s.m.openChallenges(addr)
	if err != nil {
		return err
	}
	sent := map[string]bool{}
	for _, c := range chs {
		sent[c.ChallengeId] = true
		if err := stream.Send(&truegpuv1.StreamChallengesResponse{Challenge: c}); err != nil {
			return err
		}
	}
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
			var rec *truegpuv1.NodeRecord
			for _, ch := range n.Issued {
				if string(ch.Address) != string(addr[:]) || sent[truegpuv1.FormatChallengeID(ch.Id)] {
					continue
				}
				if rec == nil {
					if rec, err = s.m.fsm.Node(addr); err != nil {
						return err
					}
				}
				c := s.m.challengeView(ch, rec)
				sent[c.ChallengeId] = true
				if err := stream.Send(&truegpuv1.StreamChallengesResponse{Challenge: c}); err != nil {
					return err
				}
			}
		}
	}
}
