package serve_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/truegpu/truegpu/internal/devpki"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/membertls"
	"github.com/truegpu/truegpu/internal/testlog"
	"github.com/truegpu/truegpu/oracle"
	"github.com/truegpu/truegpu/oracle/serve"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
)

// config is a one-member cluster's configuration in dir.
func config(t *testing.T, dir string) oracle.Config {
	t.Helper()
	p, err := prover.ProfileByName("test")
	if err != nil {
		t.Fatal(err)
	}
	_, vk, err := prover.UnsafeDevKeys(p, "")
	if err != nil {
		t.Fatal(err)
	}
	_, trans := raft.NewInmemTransport("m1")
	rc := raft.DefaultConfig()
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
	return oracle.Config{ID: "m1", DataDir: dir, Transport: trans, SignerKey: ethcrypto.KeyFromSeed([]byte("serve m1")),
		Bootstrap: true, Profile: p, VerifyingKey: vk, Raft: rc, EpochInterval: time.Hour,
		Schedule: oracle.ScheduleConfig{Tick: time.Hour}, Logger: testlog.New(t)}
}

func listen(t *testing.T) *serve.Listeners {
	t.Helper()
	l, err := serve.Listen("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// waitLeader waits until the member leads.
func waitLeader(t *testing.T, m *oracle.Member) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !m.IsLeader(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
	}
}

// free reports whether addr can be listened on again.
func free(addr string) bool {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServe serves a member without and with TLS: REST, the dashboard and
// gRPC answer, the member advertises the addresses listened on, member-only
// calls need a client certificate under TLS, and Close (twice) frees the
// ports.
func TestServe(t *testing.T) {
	ca, err := devpki.NewCA("serve test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("m1")
	if err != nil {
		t.Fatal(err)
	}
	creds := &membertls.Credentials{Cert: cert, CAs: ca.Pool()}
	for _, tc := range []struct {
		name string
		tls  *membertls.Credentials
		// dial is how a client without a member certificate dials.
		dial grpc.DialOption
	}{
		{"plaintext", nil, grpc.WithTransportCredentials(insecure.NewCredentials())},
		{"tls", creds, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS13, RootCAs: ca.Pool()}))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := serve.Start(context.Background(), config(t, t.TempDir()), listen(t), serve.Options{TLS: tc.tls})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			m := srv.Member()
			waitLeader(t, m)
			if _, addr := m.LeaderInfo(); addr != srv.GRPCAddr() {
				t.Errorf("advertised gRPC address %q, listening on %q", addr, srv.GRPCAddr())
			}
			base := "http://" + srv.HTTPAddr()
			// The member publishes its row (with its HTTP address) soon
			// after it leads.
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
				code, body := get(t, base+"/v1/cluster")
				if code == 200 && strings.Contains(body, srv.HTTPAddr()) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("GET /v1/cluster: %d %.300s, want the member's HTTP address", code, body)
				}
			}
			if code, body := get(t, base+"/"); code != 200 || !strings.Contains(strings.ToLower(body), "<html") {
				t.Errorf("GET /: %d %.200s, want the dashboard", code, body)
			}
			// A stream takes the gateway's connection to gRPC.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/watch/scores", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET /v1/watch/scores: %v %v", resp, err)
			}
			resp.Body.Close()

			cc, err := grpc.NewClient(srv.GRPCAddr(), tc.dial)
			if err != nil {
				t.Fatal(err)
			}
			defer cc.Close()
			admin := truegpuv1.NewAdminServiceClient(cc)
			if _, err := admin.GetCluster(ctx, &truegpuv1.GetClusterRequest{}); err != nil {
				t.Fatalf("GetCluster: %v", err)
			}
			_, err = admin.JoinMember(ctx, &truegpuv1.JoinMemberRequest{Id: "m2", RaftAddress: "127.0.0.1:1"})
			if denied := err != nil && strings.Contains(err.Error(), oracle.ErrMemberOnly.Error()); denied != (tc.tls != nil) {
				t.Errorf("JoinMember without a client certificate: %v; want refused as member-only exactly under TLS", err)
			}
			if tc.tls != nil {
				mc, err := grpc.NewClient(srv.GRPCAddr(), srv.Dial())
				if err != nil {
					t.Fatal(err)
				}
				defer mc.Close()
				if _, err := truegpuv1.NewAdminServiceClient(mc).GetCluster(ctx, &truegpuv1.GetClusterRequest{}); err != nil {
					t.Fatalf("GetCluster with the member's certificate: %v", err)
				}
			}

			if err := srv.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := srv.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			for _, a := range []string{srv.GRPCAddr(), srv.HTTPAddr()} {
				if !free(a) {
					t.Errorf("%s still taken after Close", a)
				}
			}
		})
	}
}

// TestServeFailureClosesAll: when serving fails (here on an invalid CORS
// origin), Start closes the listeners and the member it started, so both
// the ports and the data directory can be taken again.
func TestServeFailureClosesAll(t *testing.T) {
	dir := t.TempDir()
	l := listen(t)
	g, h := l.GRPC.Addr().String(), l.HTTP.Addr().String()
	if _, err := serve.Start(context.Background(), config(t, dir), l, serve.Options{AllowedOrigins: []string{"*"}}); err == nil {
		t.Fatal("Start with an invalid CORS origin succeeded")
	}
	for _, a := range []string{g, h} {
		if !free(a) {
			t.Errorf("%s still taken after a failed Start", a)
		}
	}
	srv, err := serve.Start(context.Background(), config(t, dir), listen(t), serve.Options{})
	if err != nil {
		t.Fatalf("member on the same data directory after a failed Start: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCloseWithOpenStream: Close ends within its grace period (and some)
// while a REST stream is open, which neither the HTTP server's nor the
// gRPC server's graceful shutdown would end by itself.
func TestCloseWithOpenStream(t *testing.T) {
	const grace = 300 * time.Millisecond
	srv, err := serve.Start(context.Background(), config(t, t.TempDir()), listen(t), serve.Options{ShutdownGrace: grace})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	waitLeader(t, srv.Member())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+srv.HTTPAddr()+"/v1/watch/scores", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/watch/scores: %v %v", resp, err)
	}
	defer resp.Body.Close()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- srv.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
		if took := time.Since(start); took < grace {
			t.Errorf("Close took %v with a stream open, less than the grace period %v", took, grace)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close did not return with a stream open")
	}
}
