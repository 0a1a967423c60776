package oracle

import (
	"context"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/truegpu/truegpu/internal/membertls"
)

// Who may make member-only calls when Config.MemberAuth is set (the gRPC
// server runs mutual TLS):
//
//	JoinMember(id)             member id itself, or an operator
//	RemoveMember(id)           member id itself, or an operator
//	SubmitReportSignature(id)  member id itself, with the signer of its row
//
// The caller is the member id of its verified client certificate
// (internal/membertls: the subject common name). With MemberAuth a
// follower does not forward these calls: it answers "not the leader" with
// the leader's address, and the caller calls the leader itself, so the
// leader sees the caller's own certificate (a forwarding member could name
// any caller). Whatever the API admits, the state machine still checks each
// member row's signature (fsm.setMember) and each report signature
// (fsm.addReportSignature) itself.

// peerMemberID returns the member id named by the direct caller's verified
// client certificate.
func peerMemberID(ctx context.Context) (string, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return "", false
	}
	id, err := membertls.MemberID(ti.State.VerifiedChains[0][0])
	return id, err == nil
}

// callerID returns who made a call: the member id of the direct caller's
// certificate. A forwarded call has none: under MemberAuth members do not
// forward member-only calls, so such a call is someone naming itself a
// forwarder.
func callerID(ctx context.Context) (string, bool) {
	if wasForwarded(ctx) {
		return "", false
	}
	return peerMemberID(ctx)
}

// authorize admits a member-only call about member id: from id itself, or
// with operators from one of Config.Operators, on the leader. Without
// Config.MemberAuth (loopback development clusters) every caller is
// admitted and followers forward the call.
func (m *Member) authorize(ctx context.Context, method, id string, operators bool) error {
	if !m.cfg.MemberAuth {
		return nil
	}
	if !m.IsLeader() {
		return m.notLeaderError()
	}
	caller, ok := callerID(ctx)
	if !ok {
		return status.Errorf(codes.PermissionDenied, "%s is for cluster members only; present a member certificate", method)
	}
	if caller == id || (operators && slices.Contains(m.cfg.Operators, caller)) {
		return nil
	}
	who := "member " + id + " itself"
	if operators {
		who += " or an operator"
	}
	return status.Errorf(codes.PermissionDenied, "%s about member %q from the certificate of %q: only %s may make it", method, id, caller, who)
}
