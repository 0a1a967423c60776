// Package serve puts an oracle member on the network: it opens the
// member's gRPC and HTTP listeners, serves the member's gRPC services
// (oracle.NewGRPCServer) and its HTTP handler (package httpapi: the REST
// gateway, the dashboard, /healthz and /metrics), and shuts them down in
// order: HTTP first, then the gateway's connection, then gRPC, then the
// member. A production member (cmd/oracled) and every member of a
// development cluster (oracle/devcluster) are served by it.
//
// With a member's TLS credentials (internal/membertls) the gRPC server
// takes TLS 1.3: clients without a certificate reach the public services,
// member-only calls need a certificate from the cluster's CA
// (oracle.RequireMemberCert), and the gateway dials the member's own gRPC
// server with the member's certificate. Without credentials gRPC runs in
// plaintext. HTTP is always plaintext.
//
// The package does not own the member's configuration or its Raft
// transport, loading TLS material (internal/membertls), or joining a
// cluster.
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/truegpu/truegpu/internal/membertls"
	"github.com/truegpu/truegpu/oracle"
	"github.com/truegpu/truegpu/oracle/httpapi"
)

// HTTP server timeouts of every member.
const (
	ReadHeaderTimeout = 5 * time.Second
	IdleTimeout       = time.Minute
)

// Listeners are a member's gRPC and HTTP listeners. They are opened before
// the member starts, so that the member can advertise the addresses
// actually listened on (a port 0 becomes a free port).
type Listeners struct {
	GRPC, HTTP net.Listener
}

// Listen opens the gRPC and HTTP listeners on grpcAddr and httpAddr. On
// error nothing stays open.
func Listen(grpcAddr, httpAddr string) (*Listeners, error) {
	gl, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return nil, fmt.Errorf("gRPC listener on %s: %w", grpcAddr, err)
	}
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		gl.Close()
		return nil, fmt.Errorf("HTTP listener on %s: %w", httpAddr, err)
	}
	return &Listeners{GRPC: gl, HTTP: hl}, nil
}

// Close closes both listeners.
func (l *Listeners) Close() error {
	return errors.Join(l.GRPC.Close(), l.HTTP.Close())
}

// Options configure how a member is served. The zero value serves gRPC in
// plaintext, the gateway dialing the gRPC listener's address, and stops
// everything at once on Close.
type Options struct {
	// TLS holds the member's certificate and the cluster's CAs. Set, the
	// gRPC server takes TLS and the gateway dials with the member's
	// certificate; nil, gRPC is plaintext.
	TLS *membertls.Credentials
	// GatewayTarget is the gRPC address the REST gateway dials for what it
	// does not serve in process (streams, member-only calls). With TLS the
	// member's certificate must name its host. Default: the gRPC
	// listener's address.
	GatewayTarget string
	// AllowedOrigins are the origins CORS allows
	// (httpapi.Options.AllowedOrigins). Default none.
	AllowedOrigins []string
	// ShutdownGrace is how long Close lets HTTP requests and gRPC calls in
	// flight finish before it ends them. Zero ends them at once.
	ShutdownGrace time.Duration
}

// Server is a member served on its listeners.
type Server struct {
	member   *oracle.Member
	opts     Options
	grpcAddr string
	httpAddr string
	dial     grpc.DialOption
	grpcSrv  *grpc.Server
	httpSrv  *http.Server
	conn     *grpc.ClientConn
	cancel   context.CancelFunc

	closeOnce sync.Once
	closeErr  error
}

// Start starts the member of cfg and serves it on l (Serve). Empty
// cfg.GRPCAdvertise and cfg.HTTPAdvertise become the listeners' addresses.
// On error the listeners are closed, and so is the member if it started.
func Start(ctx context.Context, cfg oracle.Config, l *Listeners, opts Options) (*Server, error) {
	if cfg.GRPCAdvertise == "" {
		cfg.GRPCAdvertise = l.GRPC.Addr().String()
	}
	if cfg.HTTPAdvertise == "" {
		cfg.HTTPAdvertise = l.HTTP.Addr().String()
	}
	m, err := oracle.Start(ctx, cfg)
	if err != nil {
		l.Close()
		return nil, err
	}
	return Serve(m, l, opts)
}

// Serve serves m on l: its gRPC services on l.GRPC and its HTTP handler
// (REST gateway over oracle.LocalConn, dashboard, /healthz, /metrics) on
// l.HTTP. The returned Server owns m and l: Close closes them. On error
// Serve closes them itself.
func Serve(m *oracle.Member, l *Listeners, opts Options) (*Server, error) {
	s := &Server{member: m, opts: opts, grpcAddr: l.GRPC.Addr().String(), httpAddr: l.HTTP.Addr().String()}
	s.dial = DialOption(opts.TLS)
	var gopts []grpc.ServerOption
	if opts.TLS != nil {
		gopts = append(gopts, grpc.Creds(credentials.NewTLS(APIServerTLS(opts.TLS))), oracle.RequireMemberCert())
	}
	s.grpcSrv = oracle.NewGRPCServer(m, gopts...)
	go s.grpcSrv.Serve(l.GRPC)
	target := opts.GatewayTarget
	if target == "" {
		target = s.grpcAddr
	}
	fail := func(err error) (*Server, error) {
		l.HTTP.Close()
		s.grpcSrv.Stop()
		if s.cancel != nil {
			s.cancel()
		}
		if s.conn != nil {
			s.conn.Close()
		}
		return nil, errors.Join(err, m.Close())
	}
	var err error
	if s.conn, err = grpc.NewClient(target, s.dial); err != nil {
		return fail(fmt.Errorf("gateway connection to %s: %w", target, err))
	}
	var ctx context.Context
	ctx, s.cancel = context.WithCancel(context.Background())
	h, err := httpapi.New(ctx, oracle.LocalConn(m, s.conn), &httpapi.Options{
		Metrics: m.Metrics(), Logger: m.Logger(), AllowedOrigins: opts.AllowedOrigins,
	})
	if err != nil {
		return fail(err)
	}
	s.httpSrv = &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout, IdleTimeout: IdleTimeout}
	go s.httpSrv.Serve(l.HTTP)
	return s, nil
}

// APIServerTLS is the TLS configuration of a member's gRPC server: the
// member's certificate, TLS 1.3, HTTP/2, and client certificates verified
// when given but not required, so that nodes and consumers connect without
// one; member-only calls demand one (oracle.RequireMemberCert).
func APIServerTLS(c *membertls.Credentials) *tls.Config {
	t := c.ServerConfig()
	t.ClientAuth = tls.VerifyClientCertIfGiven
	t.NextProtos = []string{"h2"}
	return t
}

// DialOption is how a member dials gRPC servers of its cluster (its own,
// and other members' when joining): with its certificate when c is set,
// in plaintext when c is nil.
func DialOption(c *membertls.Credentials) grpc.DialOption {
	if c == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(c.ClientConfig()))
}

// Member returns the served member.
func (s *Server) Member() *oracle.Member { return s.member }

// GRPCAddr returns the address the gRPC server listens on.
func (s *Server) GRPCAddr() string { return s.grpcAddr }

// HTTPAddr returns the address the HTTP server listens on.
func (s *Server) HTTPAddr() string { return s.httpAddr }

// Dial returns the option with which the member dials gRPC servers of its
// cluster (DialOption of Options.TLS).
func (s *Server) Dial() grpc.DialOption { return s.dial }

// Close stops serving and closes the member, in this order: the HTTP
// server (no new requests; those in flight get Options.ShutdownGrace),
// the gateway's context and connection, the gRPC server (calls in flight
// get Options.ShutdownGrace), and the member. It returns the member's
// Close error; calls after the first do nothing and return it again.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Server) close() error {
	grace := s.opts.ShutdownGrace
	if grace > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		if s.httpSrv.Shutdown(ctx) != nil {
			s.httpSrv.Close()
		}
		cancel()
	} else {
		s.httpSrv.Close()
	}
	s.cancel()
	s.conn.Close()
	if grace > 0 {
		done := make(chan struct{})
		go func() { s.grpcSrv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(grace):
			s.grpcSrv.Stop()
		}
	} else {
		s.grpcSrv.Stop()
	}
	return s.member.Close()
}
