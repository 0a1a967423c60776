package oracle

import (
	"context"
	"fmt"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// memberService serves truegpu.v1.MemberService, the members' own
// service: report signatures handed to the leader.
type memberService struct {
	truegpuv1.UnimplementedMemberServiceServer
	m *Member
}

// SubmitReportSignature is served by the leader; the state machine checks
// that the signature recovers to a signer of the report.
//
// The caller must be the member named in the signature, and the signature's
// signer that member's signer in the member table.
func (s *memberService) SubmitReportSignature(ctx context.Context, req *truegpuv1.SubmitReportSignatureRequest) (*truegpuv1.SubmitReportSignatureResponse, error) {
	if err := s.m.authorize(ctx, "SubmitReportSignature", req.GetSignature().GetMemberId(), false); err != nil {
		return nil, err
	}
	if r, ok, err := forward(ctx, s.m, req, (*memberClients).submitReportSignature); ok {
		return r, err
	}
	if req.Signature == nil {
		return nil, fmt.Errorf("%w: signature is required", ErrInvalidRequest)
	}
	if err := s.m.checkSignerOf(req.Signature); err != nil {
		return nil, err
	}
	idx, err := s.m.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_AddReportSignature{AddReportSignature: &truegpuv1.AddReportSignatureCommand{Epoch: req.Epoch, Signature: req.Signature}}})
	if err != nil {
		return nil, err
	}
	return &truegpuv1.SubmitReportSignatureResponse{AppliedIndex: idx}, nil
}

// checkSignerOf requires that a report signature names a member whose row
// holds the signature's signer.
func (m *Member) checkSignerOf(sig *truegpuv1.MemberSignature) error {
	signer, err := ethcrypto.ParseAddress(sig.SignerAddress)
	if err != nil {
		return fmt.Errorf("%w: signer address: %w", ErrInvalidRequest, err)
	}
	members, err := m.fsm.Members()
	if err != nil {
		return err
	}
	for _, mem := range members {
		if mem.Id == sig.MemberId {
			if len(mem.SignerAddress) == 20 && ethcrypto.Address(mem.SignerAddress) == signer {
				return nil
			}
			break
		}
	}
	return fmt.Errorf("%w: %s is not the signer of member %q", ErrInvalidRequest, signer, sig.MemberId)
}
