package devpki_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/truegpu/truegpu/internal/devpki"
	"github.com/truegpu/truegpu/internal/membertls"
)

func newCA(t *testing.T, name string) *devpki.CA {
	t.Helper()
	ca, err := devpki.NewCA(name)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func issue(t *testing.T, ca *devpki.CA, id string, hosts ...string) tls.Certificate {
	t.Helper()
	c, err := ca.Issue(id, hosts...)
	if err != nil {
		t.Fatalf("Issue(%q): %v", id, err)
	}
	return c
}

func verify(cert *x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage, host string) error {
	_, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err
}

func TestIssue(t *testing.T) {
	ca := newCA(t, "dev-ca")
	cert := issue(t, ca, "node-1", "10.0.0.7", "oracle-1.internal")
	leaf := cert.Leaf
	if leaf.Subject.CommonName != "node-1" {
		t.Errorf("CommonName = %q, want node-1", leaf.Subject.CommonName)
	}
	for _, host := range []string{"127.0.0.1", "::1", "localhost", "node-1", "10.0.0.7", "oracle-1.internal"} {
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if err := verify(leaf, ca.Pool(), usage, host); err != nil {
				t.Errorf("verify for host %s, usage %v: %v", host, usage, err)
			}
		}
	}
	if err := verify(leaf, ca.Pool(), x509.ExtKeyUsageServerAuth, "node-2"); err == nil {
		t.Error("certificate for node-1 verified for host node-2")
	}
	if err := verify(leaf, newCA(t, "other").Pool(), x509.ExtKeyUsageClientAuth, ""); err == nil {
		t.Error("certificate verified against an unrelated CA")
	}
	if !ca.Certificate().IsCA {
		t.Error("CA certificate is not marked as a CA")
	}
}

func TestIssueRejectsBadIDs(t *testing.T) {
	ca := newCA(t, "dev-ca")
	for _, id := range []string{"", "-node", "node.", "node 1", "node/1", "nøde", string(make([]byte, 64))} {
		if _, err := ca.Issue(id); !errors.Is(err, devpki.ErrBadMemberID) {
			t.Errorf("Issue(%q) = %v, want ErrBadMemberID", id, err)
		}
	}
	if _, err := devpki.NewCA(""); err == nil {
		t.Error("NewCA(\"\") succeeded, want an error")
	}
}

// handshake runs a mutual TLS handshake over an in-memory pipe.
func handshake(server, client *tls.Config) (serverErr, clientErr error, peer []*x509.Certificate) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	srv := tls.Server(a, server)
	done := make(chan error, 1)
	go func() {
		err := srv.Handshake()
		if err != nil {
			a.Close()
		}
		done <- err
	}()
	cl := tls.Client(b, client)
	clientErr = cl.Handshake()
	if clientErr != nil {
		b.Close()
	} else {
		// In TLS 1.3 the client finishes before the server has checked its
		// certificate; a read takes the server's verdict (data or an alert).
		go func() {
			var buf [1]byte
			if _, err := cl.Read(buf[:]); err != nil {
				b.Close()
			}
		}()
	}
	serverErr = <-done
	if serverErr == nil {
		// Let the client's read see data, so it returns without error.
		_, _ = srv.Write([]byte{0})
	}
	return serverErr, clientErr, srv.ConnectionState().PeerCertificates
}

func TestConfigsMutualAuth(t *testing.T) {
	ca := newCA(t, "dev-ca")
	other := newCA(t, "rogue-ca")
	srvCert := issue(t, ca, "node-1")
	cliCert := issue(t, ca, "node-2")
	rogue := issue(t, other, "node-2")

	cases := []struct {
		name       string
		server     *tls.Config
		client     *tls.Config
		wantOK     bool
		wantClient string // expected peer common name seen by the server
	}{
		{"SameCA", devpki.ServerConfig(ca, srvCert), withName(devpki.ClientConfig(ca, cliCert), "node-1"), true, "node-2"},
		{"ClientFromOtherCA", devpki.ServerConfig(ca, srvCert), withName(membertls.ClientConfig(ca.Pool(), rogue), "node-1"), false, ""},
		{"ServerFromOtherCA", devpki.ServerConfig(other, rogue), withName(devpki.ClientConfig(ca, cliCert), "node-2"), false, ""},
		{"NoClientCert", devpki.ServerConfig(ca, srvCert), &tls.Config{RootCAs: ca.Pool(), ServerName: "node-1", MinVersion: tls.VersionTLS13}, false, ""},
		{"WrongServerName", devpki.ServerConfig(ca, srvCert), withName(devpki.ClientConfig(ca, cliCert), "node-9"), false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			serr, cerr, peer := handshake(tc.server, tc.client)
			if tc.wantOK {
				if serr != nil || cerr != nil {
					t.Fatalf("handshake failed: server %v, client %v", serr, cerr)
				}
				if len(peer) == 0 || peer[0].Subject.CommonName != tc.wantClient {
					t.Fatalf("server saw peer %v, want %s", peer, tc.wantClient)
				}
				return
			}
			if serr == nil && cerr == nil {
				t.Fatal("handshake succeeded, want a failure")
			}
		})
	}
	if v := devpki.ServerConfig(ca, srvCert).MinVersion; v != tls.VersionTLS13 {
		t.Errorf("ServerConfig MinVersion = %x, want TLS 1.3", v)
	}
	if a := devpki.ServerConfig(ca, srvCert).ClientAuth; a != tls.RequireAndVerifyClientCert {
		t.Errorf("ServerConfig ClientAuth = %v, want RequireAndVerifyClientCert", a)
	}
}

func withName(c *tls.Config, name string) *tls.Config {
	c.ServerName = name
	return c
}

func TestWriteAndLoadPEM(t *testing.T) {
	ca := newCA(t, "dev-ca")
	dir := filepath.Join(t.TempDir(), "pki")
	files, err := ca.WritePEM(dir, "node-1", "node-2")
	if err != nil {
		t.Fatalf("WritePEM: %v", err)
	}
	if len(files) != 2 {
		t.Fatalf("WritePEM returned %d members, want 2", len(files))
	}
	for _, id := range []string{"node-1", "node-2"} {
		f := files[id]
		creds, err := membertls.Load(f.Cert, f.Key, f.CA, id)
		if err != nil {
			t.Fatalf("membertls.Load(%s): %v", id, err)
		}
		if err := verify(creds.Cert.Leaf, creds.CAs, x509.ExtKeyUsageClientAuth, id); err != nil {
			t.Errorf("loaded certificate of %s does not verify against the loaded CA: %v", id, err)
		}
		info, err := os.Stat(f.Key)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("key file %s has mode %o, want 600", f.Key, perm)
		}
	}

	// A CA read back from disk issues certificates the original pool trusts.
	again, err := devpki.ReadCA(dir)
	if err != nil {
		t.Fatalf("ReadCA: %v", err)
	}
	late := issue(t, again, "node-3")
	if err := verify(late.Leaf, ca.Pool(), x509.ExtKeyUsageServerAuth, "node-3"); err != nil {
		t.Errorf("certificate from the reloaded CA does not verify: %v", err)
	}
	if !slices.Equal(again.CertPEM(), ca.CertPEM()) {
		t.Error("reloaded CA certificate differs from the original")
	}
}
