package oracle

import (
	"context"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
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
// (internal/membertls: the subject common name). A call a follower
// forwards to the leader arrives with the follower's certificate and the
// original caller's id in forwardedForKey; the leader takes that id only
// from a caller holding a member certificate. Whatever the API admits, the
// state machine still checks each member row's signature (fsm.setMember)
// and each report signature (fsm.addReportSignature) itself.

// forwardedForKey carries the member id of the caller of a forwarded
// member-only call.
const forwardedForKey = "x-truegpu-forwarded-for"

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

// callerID returns who made a call: the certificate's member id, or for a
// call forwarded by a member the id that member forwarded it for.
func callerID(ctx context.Context) (string, bool) {
	id, ok := peerMemberID(ctx)
	if !ok {
		return "", false
	}
	if !wasForwarded(ctx) {
		return id, true
	}
	md, _ := metadata.FromIncomingContext(ctx)
	f := md.Get(forwardedForKey)
	if len(f) != 1 || f[0] == "" {
		return "", false
	}
	return f[0], true
}

// authorize admits a member-only call about member id: from id itself, or
// with operators from one of Config.Operators. Without Config.MemberAuth
// (loopback development clusters) every caller is admitted.
func (m *Member) authorize(ctx context.Context, method, id string, operators bool) error {
	if !m.cfg.MemberAuth {
		return nil
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
