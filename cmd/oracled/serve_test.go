package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/truegpu/truegpu/internal/devpki"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestMemberServesWithTLS runs a production member (mutual TLS from files,
// bootstrapped alone) and checks what it serves: REST and the dashboard
// over HTTP, REST streams through the gateway's TLS connection to the
// member's own gRPC server, gRPC over TLS with member-only calls refused
// without a client certificate; and that it stops serving and frees its
// ports when cancelled.
func TestMemberServesWithTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a member")
	}
	clearMemberEnv(t)
	dir := t.TempDir()
	ca, err := devpki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.WritePEM(filepath.Join(dir, "pki"), "m1")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "signer.key")
	if err := ethcrypto.SaveKeyFile(keyFile, ethcrypto.KeyFromSeed([]byte("m1"))); err != nil {
		t.Fatal(err)
	}
	grpcAddr, httpAddr, raftAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	f := files["m1"]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runMember(ctx, []string{"-node-id", "m1", "-data-dir", filepath.Join(dir, "data"), "-signer-key", keyFile,
			"-tls-cert", f.Cert, "-tls-key", f.Key, "-tls-ca", f.CA, "-cluster-id", "test-cluster", "-feed-no-chain",
			"-bootstrap", "-unsafe-dev-keys", "-profile", "test",
			"-raft-addr", raftAddr, "-grpc-addr", grpcAddr, "-http-addr", httpAddr})
	}()
	base := "http://" + httpAddr
	deadline := time.Now().Add(3 * time.Minute)
	for {
		resp, err := http.Get(base + "/v1/cluster")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"leader":true`) {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("member ended before serving: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("member did not serve a cluster with a leader: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Fatalf("GET /: %d %.200s, want the dashboard", resp.StatusCode, body)
	}
	// A stream goes over the gateway's own TLS connection to gRPC.
	sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
	req, _ := http.NewRequestWithContext(sctx, http.MethodGet, base+"/v1/watch/scores", nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/watch/scores: %v", err)
	}
	resp.Body.Close()
	scancel()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/watch/scores: %d, want 200", resp.StatusCode)
	}

	cert, err := ca.Issue("m1")
	if err != nil {
		t.Fatal(err)
	}
	call := func(tc *tls.Config, fn func(context.Context, truegpuv1.AdminServiceClient) error) error {
		cc, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		defer ccancel()
		return fn(cctx, truegpuv1.NewAdminServiceClient(cc))
	}
	getCluster := func(ctx context.Context, c truegpuv1.AdminServiceClient) error {
		_, err := c.GetCluster(ctx, &truegpuv1.GetClusterRequest{})
		return err
	}
	join := func(ctx context.Context, c truegpuv1.AdminServiceClient) error {
		_, err := c.JoinMember(ctx, &truegpuv1.JoinMemberRequest{Id: "m2", RaftAddress: "127.0.0.1:1"})
		return err
	}
	if err := call(devpki.ClientConfig(ca, cert), getCluster); err != nil {
		t.Fatalf("GetCluster with a member certificate: %v", err)
	}
	anon := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: ca.Pool()}
	if err := call(anon, getCluster); err != nil {
		t.Fatalf("GetCluster without a client certificate: %v", err)
	}
	if err := call(anon, join); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("JoinMember without a client certificate: %v, want PermissionDenied", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("member: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("member did not shut down")
	}
	for _, a := range []string{grpcAddr, httpAddr, raftAddr} {
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("%s still taken after shutdown: %v", a, err)
			continue
		}
		l.Close()
	}
}
