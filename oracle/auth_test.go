package oracle

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/truegpu/truegpu/internal/devpki"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// TestRequireMemberCert: over TLS, public calls need no client
// certificate, member-only calls need one from the cluster CA.
func TestRequireMemberCert(t *testing.T) {
	c := newCluster(t, 1, nil)
	m := c.leader(5 * time.Second)
	ca, err := devpki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	srvCert, err := ca.Issue("m0", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	other, err := devpki.NewCA("other")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Issue("intruder", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	member, err := ca.Issue("m1", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	stls := devpki.ServerConfig(ca, srvCert).Clone()
	stls.ClientAuth = tls.VerifyClientCertIfGiven
	stls.NextProtos = []string{"h2"}
	srv := NewGRPCServer(m, grpc.Creds(credentials.NewTLS(stls)), RequireMemberCert())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Stop()
	dial := func(certs []tls.Certificate) truegpuv1.AdminServiceClient {
		cfg := &tls.Config{RootCAs: ca.Pool(), Certificates: certs, MinVersion: tls.VersionTLS13}
		cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return truegpuv1.NewAdminServiceClient(cc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	anon := dial(nil)
	if _, err := anon.GetHealth(ctx, &truegpuv1.GetHealthRequest{}); err != nil {
		t.Fatalf("public call without a certificate: %v", err)
	}
	bad := &truegpuv1.RemoveMemberRequest{Id: "nobody"}
	if _, err := anon.RemoveMember(ctx, bad); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("member-only call without a certificate: %v", err)
	}
	// A certificate from another CA fails the handshake itself.
	if _, err := dial([]tls.Certificate{foreign}).RemoveMember(ctx, bad); status.Code(err) == codes.OK || status.Code(err) == codes.NotFound {
		t.Fatalf("foreign certificate: %v", err)
	}
	// A member certificate reaches the handler (which then refuses an
	// unknown id on its own terms).
	if _, err := dial([]tls.Certificate{member}).RemoveMember(ctx, bad); status.Code(err) == codes.PermissionDenied {
		t.Fatalf("member certificate refused: %v", err)
	}
}
