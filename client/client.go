// Package client is the Go client of a TrueGPU oracle cluster, for
// schedulers, dashboards and other consumers.
//
// It wraps the generated gRPC stubs (package truegpuv1) with what a
// long-running consumer needs:
//
//   - Dial with TLS (the system roots or the cluster's CA, optionally a
//     client certificate), or in plaintext for a member on loopback;
//   - retries with backoff while the cluster has no leader or is
//     overloaded, and leader redirects: when a member answers that another
//     member leads (and where), the call is retried there;
//   - paging through nodes with server-side filters (Nodes, ListNodes);
//   - score watches that reconnect after a member restarts (WatchScores);
//   - the signed feed (LatestReport, Report, NodeProof) and its offline
//     verification (VerifyReport, VerifyNodeProof): the EIP-712 digest,
//     k-of-n member signatures against the signers the consumer trusts,
//     and a node's Merkle proof, the same checks the feed contract makes.
//
// Every call that is not a stream is retried only on errors that leave
// nothing applied or on writes that are idempotent (node registrations,
// commitments and proofs are idempotent by (node, nonce)).
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// Errors of the package. Compare with errors.Is.
var (
	// ErrInsecureRemote reports a plaintext dial to an address that is not
	// on loopback.
	ErrInsecureRemote = errors.New("client: plaintext is allowed only for loopback addresses; set Options.TLS")
	// ErrNoTransportSecurity reports Options with neither TLS nor Insecure.
	ErrNoTransportSecurity = errors.New("client: set Options.TLS, or Options.Insecure for a member on loopback")
)

// Options configure a Client. The zero value is invalid: choose TLS or
// Insecure.
type Options struct {
	// TLS secures the connection. Set RootCAs to the cluster's CA (nil
	// uses the system roots) and, for member-only calls, Certificates to
	// a client certificate the cluster trusts.
	TLS *tls.Config
	// Insecure dials in plaintext. Only loopback addresses (127.0.0.0/8,
	// ::1, localhost) are accepted, as `oracled dev` serves them.
	Insecure bool
	// Attempts is how many times a unary call is tried while the cluster
	// has no leader, is overloaded or is unreachable. Default 5.
	Attempts int
	// Backoff is the pause before the second attempt; it doubles up to
	// 16 times its value. Default 200ms.
	Backoff time.Duration
	// DialOptions are added to every connection (e.g. interceptors).
	DialOptions []grpc.DialOption
}

// Client talks to one oracle member, and to the leader when that member
// redirects a call there. It is safe for concurrent use.
type Client struct {
	addr  string
	opts  Options
	creds credentials.TransportCredentials
	conn  *grpc.ClientConn

	mu      sync.Mutex
	leaders map[string]*grpc.ClientConn // redirect targets by address

	nodes      truegpuv1.NodeServiceClient
	reputation truegpuv1.ReputationServiceClient
	feed       truegpuv1.FeedServiceClient
	admin      truegpuv1.AdminServiceClient
}

// Dial returns a client of the member at addr (host:port). Like gRPC, it
// connects lazily: an unreachable member surfaces on the first call.
func Dial(addr string, opts Options) (*Client, error) {
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 200 * time.Millisecond
	}
	c := &Client{addr: addr, opts: opts, leaders: map[string]*grpc.ClientConn{}}
	switch {
	case opts.TLS != nil:
		cfg := opts.TLS.Clone()
		if cfg.MinVersion == 0 {
			cfg.MinVersion = tls.VersionTLS12
		}
		c.creds = credentials.NewTLS(cfg)
	case opts.Insecure:
		if !isLoopback(addr) {
			return nil, fmt.Errorf("%w: %s", ErrInsecureRemote, addr)
		}
		c.creds = insecure.NewCredentials()
	default:
		return nil, ErrNoTransportSecurity
	}
	conn, err := c.dial(addr)
	if err != nil {
		return nil, err
	}
	c.conn = conn
	c.nodes = truegpuv1.NewNodeServiceClient(conn)
	c.reputation = truegpuv1.NewReputationServiceClient(conn)
	c.feed = truegpuv1.NewFeedServiceClient(conn)
	c.admin = truegpuv1.NewAdminServiceClient(conn)
	return c, nil
}

func (c *Client) dial(addr string) (*grpc.ClientConn, error) {
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(c.creds), grpc.WithChainUnaryInterceptor(c.retry)}, c.opts.DialOptions...)
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("client: connect to %s: %w", addr, err)
	}
	return conn, nil
}

// isLoopback reports whether addr's host is a loopback IP or localhost.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close closes the connections.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := []error{c.conn.Close()}
	for _, cc := range c.leaders {
		errs = append(errs, cc.Close())
	}
	c.leaders = map[string]*grpc.ClientConn{}
	return errors.Join(errs...)
}

// Conn returns the connection to the dialled member, for the generated
// stubs of calls this package does not wrap.
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// leaderHint matches the leader a member names when it cannot serve a call
// itself: "...; the leader is m1 at 10.0.0.1:9090".
var leaderHint = regexp.MustCompile(`the leader is (\S+) at (\S+)`)

// LeaderHint returns the leader id and gRPC address a member named in
// err, if it named one.
func LeaderHint(err error) (id, addr string, ok bool) {
	st, isStatus := status.FromError(err)
	if !isStatus || st.Code() != codes.Unavailable {
		return "", "", false
	}
	m := leaderHint.FindStringSubmatch(st.Message())
	if m == nil {
		return "", "", false
	}
	return m[1], strings.TrimRight(m[2], ".;,)"), true
}

// retry is the unary interceptor behind every call: it follows leader
// redirects and retries transient failures with backoff.
func (c *Client) retry(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	pause := c.opts.Backoff
	target := cc
	var err error
	for attempt := 1; ; attempt++ {
		if target == cc {
			err = invoker(ctx, method, req, reply, cc, opts...)
		} else {
			err = target.Invoke(ctx, method, req, reply, opts...)
		}
		if err == nil || attempt >= c.opts.Attempts || ctx.Err() != nil {
			return err
		}
		if _, addr, ok := LeaderHint(err); ok && addr != "" && addr != target.Target() {
			if lc, lerr := c.leaderConn(addr); lerr == nil {
				target = lc
				continue
			}
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.ResourceExhausted:
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		pause = min(2*pause, 16*c.opts.Backoff)
		target = cc // the leader may have changed: start from the dialled member
	}
}

// leaderConn returns a connection to a redirect target. Redirected calls
// go straight to the invoker of that connection, without another round of
// this client's retries.
func (c *Client) leaderConn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc, ok := c.leaders[addr]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(c.creds)}, c.opts.DialOptions...)...)
	if err != nil {
		return nil, err
	}
	c.leaders[addr] = cc
	return cc, nil
}
