// Package transport owns the network layer between oracle members: a
// hashicorp/raft StreamLayer over mutually authenticated TLS 1.3. Every
// connection, in either direction, presents a certificate signed by the
// cluster's CA, so only members can send Raft RPCs or receive the log.
//
// The caller builds the Raft transport on top:
//
//	layer, err := transport.Listen("0.0.0.0:7000", advertise, serverTLS, clientTLS)
//	trans := raft.NewNetworkTransport(layer, 3, 10*time.Second, os.Stderr)
//
// Handshakes run in their own goroutines with a deadline, so a client that
// connects and stalls, speaks plain TCP or presents a foreign certificate is
// logged and dropped without delaying Accept for anyone else.
//
// Certificates come from the operator's CA (or internal/devpki in
// development). Dial verifies the server's certificate against the host of
// the address it dials, so each member's certificate must carry its
// advertised address (IP or DNS name) as a SAN. The package does not own
// certificate loading, rotation or revocation, nor which member ids are
// allowed: pass WithVerifyPeer to restrict peers beyond "signed by the CA".
package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ALPN is the TLS application protocol both sides negotiate, so a member
// cannot be confused with another TLS service that trusts the same CA.
const ALPN = "truegpu-raft/1"

// Errors returned by the package. Compare with errors.Is.
var (
	// ErrConfig is wrapped by every problem Listen finds in its TLS
	// configurations or addresses.
	ErrConfig = errors.New("transport: invalid configuration")
	// ErrClosed is returned by Accept after Close.
	ErrClosed = errors.New("transport: stream layer closed")
	// ErrPeerRejected is logged for a handshake refused by WithVerifyPeer.
	ErrPeerRejected = errors.New("transport: peer rejected")
)

// Option adjusts a StreamLayer.
type Option func(*settings)

type settings struct {
	handshakeTimeout time.Duration
	maxHandshakes    int
	logger           *slog.Logger
	verifyPeer       func(tls.ConnectionState) error
}

// WithHandshakeTimeout bounds each incoming TLS handshake. Default 10s.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(s *settings) { s.handshakeTimeout = d }
}

// WithMaxHandshakes bounds concurrent incoming handshakes; connections
// beyond it are closed at once and logged. Default 64.
func WithMaxHandshakes(n int) Option {
	return func(s *settings) { s.maxHandshakes = n }
}

// WithLogger receives failed handshakes (Warn) and listener errors.
// Default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(s *settings) { s.logger = l }
}

// WithVerifyPeer runs f on each incoming connection after the certificate
// chain verified; an error drops the connection. Use it to admit only
// known member ids (for example the certificate's common name).
func WithVerifyPeer(f func(tls.ConnectionState) error) Option {
	return func(s *settings) { s.verifyPeer = f }
}

// StreamLayer is a raft.StreamLayer over mutual TLS. It is safe for
// concurrent use.
type StreamLayer struct {
	ln        net.Listener
	advertise net.Addr
	server    *tls.Config
	client    *tls.Config
	set       settings

	conns     chan net.Conn
	ctx       context.Context // canceled by Close
	cancel    context.CancelFunc
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	slots     chan struct{}
	wg        sync.WaitGroup
}

var _ raft.StreamLayer = (*StreamLayer)(nil)

// Listen listens on bindAddr (host:port; port 0 picks a free port) and
// returns a stream layer that accepts with server and dials with client.
// advertise is the address other members dial; nil means the listener's
// address, which must then not be unspecified (0.0.0.0 or ::).
//
// Both configurations are cloned and tightened: TLS 1.3 minimum, the ALPN
// protocol, and for server RequireAndVerifyClientCert. server must have a
// certificate and ClientCAs; client must have a certificate and RootCAs
// (the system roots are never used to authenticate members). All problems
// are reported at once, each wrapping ErrConfig.
func Listen(bindAddr string, advertise net.Addr, server, client *tls.Config, opts ...Option) (*StreamLayer, error) {
	set := settings{handshakeTimeout: 10 * time.Second, maxHandshakes: 64, logger: slog.Default()}
	for _, o := range opts {
		o(&set)
	}
	if err := checkConfig(server, client, set); err != nil {
		return nil, err
	}
	srv := server.Clone()
	srv.MinVersion = tls.VersionTLS13
	srv.ClientAuth = tls.RequireAndVerifyClientCert
	srv.NextProtos = []string{ALPN}
	cli := client.Clone()
	cli.MinVersion = tls.VersionTLS13
	cli.NextProtos = []string{ALPN}

	ln, err := net.Listen("tcp", bindAddr)
	if err != nil {
		return nil, fmt.Errorf("transport: listen on %s: %w", bindAddr, err)
	}
	if advertise == nil {
		advertise = ln.Addr()
	}
	if err := checkAdvertise(advertise); err != nil {
		ln.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &StreamLayer{
		ctx:       ctx,
		cancel:    cancel,
		ln:        ln,
		advertise: advertise,
		server:    srv,
		client:    cli,
		set:       set,
		conns:     make(chan net.Conn),
		closing:   make(chan struct{}),
		slots:     make(chan struct{}, set.maxHandshakes),
	}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func checkConfig(server, client *tls.Config, set settings) error {
	var errs []error
	if server == nil {
		errs = append(errs, fmt.Errorf("%w: server TLS config is nil", ErrConfig))
	} else {
		if len(server.Certificates) == 0 && server.GetCertificate == nil {
			errs = append(errs, fmt.Errorf("%w: server TLS config has no certificate (set Certificates)", ErrConfig))
		}
		if server.ClientCAs == nil {
			errs = append(errs, fmt.Errorf("%w: server TLS config has no ClientCAs; members must verify each other against the cluster CA", ErrConfig))
		}
	}
	if client == nil {
		errs = append(errs, fmt.Errorf("%w: client TLS config is nil", ErrConfig))
	} else {
		if len(client.Certificates) == 0 && client.GetClientCertificate == nil {
			errs = append(errs, fmt.Errorf("%w: client TLS config has no certificate; servers require one", ErrConfig))
		}
		if client.RootCAs == nil {
			errs = append(errs, fmt.Errorf("%w: client TLS config has no RootCAs; set the cluster CA (system roots are not used)", ErrConfig))
		}
		if client.InsecureSkipVerify {
			errs = append(errs, fmt.Errorf("%w: client TLS config has InsecureSkipVerify set", ErrConfig))
		}
	}
	if set.handshakeTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%w: handshake timeout %v must be positive", ErrConfig, set.handshakeTimeout))
	}
	if set.maxHandshakes <= 0 {
		errs = append(errs, fmt.Errorf("%w: max handshakes %d must be positive", ErrConfig, set.maxHandshakes))
	}
	if set.logger == nil {
		errs = append(errs, fmt.Errorf("%w: logger is nil", ErrConfig))
	}
	return errors.Join(errs...)
}

func checkAdvertise(a net.Addr) error {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return fmt.Errorf("%w: advertise address %q: %w", ErrConfig, a, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return fmt.Errorf("%w: advertise address %q is not reachable by other members; pass the address they should dial", ErrConfig, a)
	}
	return nil
}

// acceptLoop accepts TCP connections and hands each to a handshake
// goroutine.
func (s *StreamLayer) acceptLoop() {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closing:
				return
			default:
			}
			// Transient errors (such as running out of file descriptors):
			// back off as net/http does, and keep serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.set.logger.Error("transport: accept failed", "addr", s.ln.Addr().String(), "error", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.closing:
				return
			}
			continue
		}
		backoff = 0
		select {
		case s.slots <- struct{}{}:
		default:
			s.set.logger.Warn("transport: too many concurrent handshakes, dropping connection",
				"remote", c.RemoteAddr().String(), "limit", s.set.maxHandshakes)
			c.Close()
			continue
		}
		s.wg.Add(1)
		go s.handshake(c)
	}
}

// handshake completes the TLS handshake on c and delivers it to Accept.
func (s *StreamLayer) handshake(c net.Conn) {
	defer s.wg.Done()
	// Close cancels s.ctx, which aborts the handshake.
	ctx, cancel := context.WithTimeout(s.ctx, s.set.handshakeTimeout)
	defer cancel()
	tc := tls.Server(c, s.server)
	err := tc.HandshakeContext(ctx)
	if err == nil && s.set.verifyPeer != nil {
		if verr := s.set.verifyPeer(tc.ConnectionState()); verr != nil {
			err = fmt.Errorf("%w: %w", ErrPeerRejected, verr)
		}
	}
	<-s.slots
	if err != nil {
		select {
		case <-s.closing:
		default:
			s.set.logger.Warn("transport: TLS handshake failed, connection dropped",
				"remote", c.RemoteAddr().String(), "error", err)
		}
		c.Close()
		return
	}
	select {
	case s.conns <- tc:
	case <-s.closing:
		tc.Close()
	}
}

// Accept returns the next connection whose TLS handshake succeeded. It
// returns ErrClosed after Close.
func (s *StreamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.closing:
		return nil, ErrClosed
	}
}

// Close stops listening, aborts handshakes in progress and waits for them
// to end. Connections already returned by Accept or Dial stay open. Calls
// after the first return the first call's result.
func (s *StreamLayer) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.cancel()
		if err := s.ln.Close(); err != nil {
			s.closeErr = fmt.Errorf("transport: close listener: %w", err)
		}
		s.wg.Wait()
	})
	return s.closeErr
}

// Addr returns the advertised address.
func (s *StreamLayer) Addr() net.Addr { return s.advertise }

// Dial connects to a member at address and completes the TLS handshake
// within timeout. The server's certificate must be valid for the host part
// of address unless the client configuration names a ServerName.
func (s *StreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	cfg := s.client
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(string(address))
		if err != nil {
			return nil, fmt.Errorf("transport: dial %s: %w", address, err)
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: cfg}
	c, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, fmt.Errorf("transport: dial %s: %w", address, err)
	}
	return c, nil
}
