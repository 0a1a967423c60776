package transport_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/truegpu/truegpu/internal/devpki"
	"github.com/truegpu/truegpu/internal/membertls"
	"github.com/truegpu/truegpu/oracle/transport"
)

// testLogger collects the layer's log records, so tests can check that a
// bad client was seen and dropped.
type testLogger struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *testLogger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type member struct {
	id     string
	cert   tls.Certificate
	layer  *transport.StreamLayer
	logged *testLogger
}

func newCA(t *testing.T) *devpki.CA {
	t.Helper()
	ca, err := devpki.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func listen(t *testing.T, ca *devpki.CA, id string, opts ...transport.Option) *member {
	t.Helper()
	cert, err := ca.Issue(id)
	if err != nil {
		t.Fatal(err)
	}
	logged := &testLogger{}
	opts = append([]transport.Option{transport.WithLogger(slog.New(slog.NewTextHandler(logged, nil)))}, opts...)
	layer, err := transport.Listen("127.0.0.1:0", nil, devpki.ServerConfig(ca, cert), devpki.ClientConfig(ca, cert), opts...)
	if err != nil {
		t.Fatalf("Listen(%s): %v", id, err)
	}
	t.Cleanup(func() { layer.Close() })
	return &member{id: id, cert: cert, layer: layer, logged: logged}
}

// acceptOne accepts one connection in the background.
func acceptOne(l *transport.StreamLayer) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(ch)
			return
		}
		ch <- c
	}()
	return ch
}

// exchange checks that a dialed connection and its accepted side carry
// bytes both ways, and that the server sees the client's member id.
func exchange(t *testing.T, dialed net.Conn, accepted <-chan net.Conn, wantPeer string) {
	t.Helper()
	if _, err := dialed.Write([]byte("ping")); err != nil {
		t.Fatalf("client write: %v", err)
	}
	var srv net.Conn
	select {
	case srv = <-accepted:
	case <-time.After(20 * time.Second):
		t.Fatal("no connection accepted within 20s")
	}
	if srv == nil {
		t.Fatal("Accept failed")
	}
	defer srv.Close()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("server read %q, %v; want ping", buf, err)
	}
	if _, err := srv.Write([]byte("pong")); err != nil {
		t.Fatalf("server write: %v", err)
	}
	if _, err := io.ReadFull(dialed, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client read %q, %v; want pong", buf, err)
	}
	state := srv.(*tls.Conn).ConnectionState()
	if state.Version != tls.VersionTLS13 {
		t.Errorf("TLS version %x, want TLS 1.3", state.Version)
	}
	if state.NegotiatedProtocol != transport.ALPN {
		t.Errorf("ALPN %q, want %q", state.NegotiatedProtocol, transport.ALPN)
	}
	if len(state.PeerCertificates) == 0 || state.PeerCertificates[0].Subject.CommonName != wantPeer {
		t.Errorf("server saw peer certificates %v, want common name %s", state.PeerCertificates, wantPeer)
	}
}

func TestTwoMembersTalk(t *testing.T) {
	ca := newCA(t)
	a := listen(t, ca, "node-a")
	b := listen(t, ca, "node-b")
	for _, pair := range [][2]*member{{a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		accepted := acceptOne(to.layer)
		c, err := from.layer.Dial(rafAddr(to.layer), 10*time.Second)
		if err != nil {
			t.Fatalf("%s dial %s: %v", from.id, to.id, err)
		}
		exchange(t, c, accepted, from.id)
		c.Close()
	}
}

func TestBadClientsDoNotStopAccept(t *testing.T) {
	ca := newCA(t)
	srv := listen(t, ca, "node-a", transport.WithHandshakeTimeout(500*time.Millisecond))
	good := listen(t, ca, "node-b")
	addr := srv.layer.Addr().String()

	// A member of another cluster: its certificate is signed by another CA.
	rogueCA := newCA(t)
	rogue := listen(t, rogueCA, "node-b")

	// A client that opens TCP and never speaks holds a handshake slot until
	// the handshake timeout; it must not delay other clients.
	staller, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer staller.Close()

	accepted := acceptOne(srv.layer)

	// Plain TCP garbage.
	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(plain, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	io.Copy(io.Discard, plain) // the server hangs up
	plain.Close()

	// Foreign-CA client: it cannot verify our server (wrong roots), and
	// even with our roots, our server refuses its certificate.
	if c, err := rogue.layer.Dial(rafAddr(srv.layer), 5*time.Second); err == nil {
		c.Close()
		t.Error("dial with a foreign CA's roots succeeded, want a verification failure")
	}
	crossCfg := membertls.ClientConfig(ca.Pool(), rogue.cert)
	crossCfg.ServerName = "127.0.0.1"
	crossCfg.NextProtos = []string{transport.ALPN}
	if c, err := tls.Dial("tcp", addr, crossCfg); err == nil {
		// TLS 1.3 clients finish first; the server's refusal arrives as an
		// alert on the first read.
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, rerr := c.Read(make([]byte, 1)); rerr == nil {
			t.Error("server accepted a client certificate from a foreign CA")
		}
		c.Close()
	}

	// After all that, a member still gets through.
	c, err := good.layer.Dial(rafAddr(srv.layer), 10*time.Second)
	if err != nil {
		t.Fatalf("member dial after bad clients: %v", err)
	}
	defer c.Close()
	exchange(t, c, accepted, "node-b")

	// The server logs a refused handshake just after sending its alert,
	// so the last record may land a moment after the client saw the alert.
	waitFor(t, "two failed handshakes in the server log (plain TCP, foreign certificate)", func() bool {
		return strings.Count(srv.logged.String(), "TLS handshake failed") >= 2
	})
}

func TestStalledHandshakeTimesOut(t *testing.T) {
	ca := newCA(t)
	srv := listen(t, ca, "node-a", transport.WithHandshakeTimeout(200*time.Millisecond))
	c, err := net.Dial("tcp", srv.layer.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The server gives up on the silent client and closes the connection;
	// the read returns instead of hanging until the test deadline.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("read from a stalled handshake = %v, want the server to close the connection", err)
	}
}

func TestHandshakeLimit(t *testing.T) {
	ca := newCA(t)
	srv := listen(t, ca, "node-a", transport.WithMaxHandshakes(1), transport.WithHandshakeTimeout(time.Minute))
	staller, err := net.Dial("tcp", srv.layer.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer staller.Close()
	// The slot is taken by the staller; a second connection is dropped
	// (it may take a moment for the staller's handshake to start).
	for range 100 {
		extra, err := net.Dial("tcp", srv.layer.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		extra.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, rerr := extra.Read(make([]byte, 1))
		extra.Close()
		if rerr == io.EOF || strings.Contains(srv.logged.String(), "too many concurrent handshakes") {
			break
		}
	}
	if !strings.Contains(srv.logged.String(), "too many concurrent handshakes") {
		t.Fatalf("no connection was dropped at the handshake limit; log:\n%s", srv.logged)
	}
}

func TestVerifyPeer(t *testing.T) {
	ca := newCA(t)
	allowOnly := func(id string) transport.Option {
		return transport.WithVerifyPeer(func(cs tls.ConnectionState) error {
			if cn := cs.PeerCertificates[0].Subject.CommonName; cn != id {
				return fmt.Errorf("member %q is not in the configuration", cn)
			}
			return nil
		})
	}
	srv := listen(t, ca, "node-a", allowOnly("node-b"))
	b := listen(t, ca, "node-b")
	x := listen(t, ca, "node-x")

	accepted := acceptOne(srv.layer)
	if c, err := x.layer.Dial(rafAddr(srv.layer), 10*time.Second); err == nil {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, rerr := c.Read(make([]byte, 1)); rerr == nil {
			t.Error("connection from a member outside the allowlist stayed open")
		}
		c.Close()
	}
	c, err := b.layer.Dial(rafAddr(srv.layer), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exchange(t, c, accepted, "node-b")
	if !strings.Contains(srv.logged.String(), "node-x") || !strings.Contains(srv.logged.String(), "peer rejected") {
		t.Errorf("rejected peer not logged; log:\n%s", srv.logged)
	}
}

func TestCloseUnblocksAccept(t *testing.T) {
	ca := newCA(t)
	m := listen(t, ca, "node-a")
	errc := make(chan error, 1)
	go func() {
		_, err := m.layer.Accept()
		errc <- err
	}()
	if err := m.layer.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-errc; !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("Accept after Close = %v, want ErrClosed", err)
	}
	if _, err := m.layer.Accept(); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("second Accept after Close = %v, want ErrClosed", err)
	}
	if err := m.layer.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	if c, err := net.DialTimeout("tcp", m.layer.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("listener still accepts TCP after Close")
	}
}

func TestListenValidates(t *testing.T) {
	ca := newCA(t)
	cert, err := ca.Issue("node-a")
	if err != nil {
		t.Fatal(err)
	}
	good := func() (*tls.Config, *tls.Config) {
		return devpki.ServerConfig(ca, cert), devpki.ClientConfig(ca, cert)
	}
	cases := []struct {
		name      string
		bind      string
		advertise net.Addr
		mutate    func(s, c *tls.Config) (*tls.Config, *tls.Config)
		opts      []transport.Option
		wants     []string
	}{
		{"NilConfigs", "127.0.0.1:0", nil, func(s, c *tls.Config) (*tls.Config, *tls.Config) { return nil, nil },
			nil, []string{"server TLS config is nil", "client TLS config is nil"}},
		{"NoCertificates", "127.0.0.1:0", nil, func(s, c *tls.Config) (*tls.Config, *tls.Config) {
			s.Certificates, c.Certificates = nil, nil
			return s, c
		}, nil, []string{"server TLS config has no certificate", "client TLS config has no certificate"}},
		{"NoCAs", "127.0.0.1:0", nil, func(s, c *tls.Config) (*tls.Config, *tls.Config) {
			s.ClientCAs, c.RootCAs = nil, nil
			return s, c
		}, nil, []string{"ClientCAs", "RootCAs"}},
		{"InsecureSkipVerify", "127.0.0.1:0", nil, func(s, c *tls.Config) (*tls.Config, *tls.Config) {
			c.InsecureSkipVerify = true
			return s, c
		}, nil, []string{"InsecureSkipVerify"}},
		{"BadOptions", "127.0.0.1:0", nil, nil,
			[]transport.Option{transport.WithHandshakeTimeout(0), transport.WithMaxHandshakes(0), transport.WithLogger(nil)},
			[]string{"handshake timeout", "max handshakes", "logger"}},
		{"UnspecifiedAdvertise", "0.0.0.0:0", nil, nil, nil, []string{"not reachable"}},
		{"ExplicitUnspecifiedAdvertise", "127.0.0.1:0", &net.TCPAddr{IP: net.IPv4zero, Port: 7000}, nil, nil, []string{"not reachable"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, c := good()
			if tc.mutate != nil {
				s, c = tc.mutate(s, c)
			}
			l, err := transport.Listen(tc.bind, tc.advertise, s, c, tc.opts...)
			if err == nil {
				l.Close()
				t.Fatal("Listen succeeded, want an error")
			}
			if !errors.Is(err, transport.ErrConfig) {
				t.Fatalf("Listen = %v, want ErrConfig", err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Listen error %q does not mention %q", err, w)
				}
			}
		})
	}
	t.Run("AdvertiseOverride", func(t *testing.T) {
		s, c := good()
		adv := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 7000}
		l, err := transport.Listen("127.0.0.1:0", adv, s, c)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if l.Addr().String() != "10.1.2.3:7000" {
			t.Fatalf("Addr() = %s, want the advertised 10.1.2.3:7000", l.Addr())
		}
	})
}

func TestDialStalledServer(t *testing.T) {
	ca := newCA(t)
	m := listen(t, ca, "node-a")
	// A TCP listener that accepts and never answers the TLS handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	c, err := m.layer.Dial(raft.ServerAddress(ln.Addr().String()), 200*time.Millisecond)
	if err == nil {
		c.Close()
		t.Fatal("Dial to a server that never completes the handshake succeeded")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial to a stalled server = %v, want a deadline error", err)
	}
}
