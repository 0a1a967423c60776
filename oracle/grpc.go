package oracle

import (
	"context"
	"errors"
	"log/slog"

	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// MaxRequestBytes caps one gRPC request message. The largest legitimate
// request, a registration of 64 devices, is far below it.
const MaxRequestBytes = 256 << 10

// NewGRPCServer returns a gRPC server with every service of m registered,
// request size caps, and interceptors that map errors to status codes
// without leaking internal details. opts come after the defaults (e.g. TLS
// credentials). It serves the standard health service and server
// reflection (v1 and v1alpha), so tools such as grpcurl, grpcui and
// Postman list and call the services without the .proto files.
func NewGRPCServer(m *Member, opts ...grpc.ServerOption) *grpc.Server {
	log := m.log
	base := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxRequestBytes),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			resp, err := handler(ctx, req)
			if err != nil {
				return nil, ToStatus(log, info.FullMethod, err)
			}
			return resp, nil
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if err := handler(srv, ss); err != nil {
				return ToStatus(log, info.FullMethod, err)
			}
			return nil
		}),
	}
	s := grpc.NewServer(append(base, opts...)...)
	for _, svc := range publicServices(m) {
		s.RegisterService(svc.desc, svc.impl)
	}
	truegpuv1.RegisterMemberServiceServer(s, &memberService{m: m})
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	reflection.Register(s)
	return s
}

// service is a gRPC service descriptor with its implementation.
type service struct {
	desc *grpc.ServiceDesc
	impl any
}

// publicServices are the truegpu.v1 services of m that nodes and consumers
// call; the gRPC server and LocalConn serve the same set.
func publicServices(m *Member) []service {
	return []service{
		{&truegpuv1.NodeService_ServiceDesc, &nodeService{m: m}},
		{&truegpuv1.ReputationService_ServiceDesc, &reputationService{m: m}},
		{&truegpuv1.FeedService_ServiceDesc, &feedService{m: m}},
		{&truegpuv1.AdminService_ServiceDesc, &adminService{m: m}},
	}
}

// ToStatus maps an error to a gRPC status. Errors of this module carry
// messages written to be shown to clients; anything unrecognised becomes
// Internal with a generic message and is logged.
func ToStatus(log *slog.Logger, method string, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, ErrBadSignature), errors.Is(err, ErrClockSkew), errors.Is(err, ErrReplayed):
		code = codes.Unauthenticated
	case errors.Is(err, ErrUnknownNode), errors.Is(err, ErrNotAdmitted):
		code = codes.PermissionDenied
	case errors.Is(err, ErrRateLimited), errors.Is(err, ErrOverloaded):
		code = codes.ResourceExhausted
	case errors.Is(err, ErrTooLarge), errors.Is(err, ErrInvalidRequest), errors.Is(err, ErrUnknownClass),
		errors.Is(err, fsm.ErrInvalidCommand), errors.Is(err, reputation.ErrInvalidEvent):
		code = codes.InvalidArgument
	case errors.Is(err, ErrUnknownNonce), errors.Is(err, fsm.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, ErrNonceReused), errors.Is(err, fsm.ErrConflict):
		code = codes.AlreadyExists
	case errors.Is(err, ErrNotCommitted), errors.Is(err, ErrProofLate), errors.Is(err, fsm.ErrLate),
		errors.Is(err, fsm.ErrStaleEpoch), errors.Is(err, fsm.ErrBadSignature), errors.Is(err, ErrNotMember):
		code = codes.FailedPrecondition
	case errors.Is(err, ErrNotLeader), errors.Is(err, ErrNoLeader), errors.Is(err, ErrOutcomeUnknown), errors.Is(err, ErrClosed):
		code = codes.Unavailable
	}
	if code == codes.Internal {
		log.Error("internal error", "method", method, "err", err)
		return status.Error(codes.Internal, "internal error")
	}
	msg := err.Error()
	if r := Reason(err); r != "" {
		msg = r + ": " + msg
	}
	return status.Error(code, msg)
}

// ErrMemberOnly reports a member-only call without a client certificate
// signed by the cluster's CA.
var ErrMemberOnly = errors.New("oracle: this call is for cluster members only; present a member certificate")

// memberOnlyMethods are the gRPC methods only members may call: membership
// changes and report signatures.
var memberOnlyMethods = map[string]bool{
	truegpuv1.AdminService_JoinMember_FullMethodName:             true,
	truegpuv1.AdminService_RemoveMember_FullMethodName:           true,
	truegpuv1.MemberService_SubmitReportSignature_FullMethodName: true,
}

// RequireMemberCert returns a server option that refuses member-only calls
// (JoinMember, RemoveMember, SubmitReportSignature) unless the caller
// presented a client certificate that verified against the server's
// client CAs. Use it with TLS credentials whose ClientAuth is
// tls.VerifyClientCertIfGiven, so nodes and consumers can still connect
// without certificates to the public services.
func RequireMemberCert() grpc.ServerOption {
	return grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if memberOnlyMethods[info.FullMethod] && !hasVerifiedClientCert(ctx) {
			return nil, status.Error(codes.PermissionDenied, ErrMemberOnly.Error())
		}
		return handler(ctx, req)
	})
}

func hasVerifiedClientCert(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	return ok && len(ti.State.VerifiedChains) > 0
}
