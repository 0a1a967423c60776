// Package membertls loads the TLS material of an oracle cluster member and
// says which member a certificate belongs to.
//
// A production cluster runs with certificates from the operator's own CA,
// given to each member as -tls-cert, -tls-key and -tls-ca. The CA is the
// authority on who may be a member: a member's identity is the subject
// common name of its certificate, which must equal its Raft server id
// (oracled -node-id). The oracle admits member-only calls (JoinMember,
// RemoveMember, SubmitReportSignature) only from a certificate whose
// common name is the member the call is about (or an operator's, for
// membership changes).
//
// internal/devpki mints a throwaway CA and certificates of this shape for
// development and tests.
package membertls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Errors returned by the package. Compare with errors.Is.
var (
	// ErrBadPEM is wrapped by every failure to parse the PEM material.
	ErrBadPEM = errors.New("membertls: invalid PEM")
	// ErrNoMemberID reports a certificate without a usable member id.
	ErrNoMemberID = errors.New("membertls: certificate names no member")
)

// MaxMemberIDLen bounds a member id taken from a certificate.
const MaxMemberIDLen = 128

// Credentials are a member's certificate (with its key) and the pool of CA
// certificates that sign the cluster's members.
type Credentials struct {
	Cert tls.Certificate
	CAs  *x509.CertPool
}

// MemberID returns the member id a certificate names: its subject common
// name, 1 to MaxMemberIDLen printable ASCII characters without spaces.
func MemberID(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", fmt.Errorf("%w: no certificate", ErrNoMemberID)
	}
	id := cert.Subject.CommonName
	if id == "" || len(id) > MaxMemberIDLen {
		return "", fmt.Errorf("%w: the subject common name must be the member id (1 to %d characters)", ErrNoMemberID, MaxMemberIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return "", fmt.Errorf("%w: the subject common name holds a character that cannot be in a member id", ErrNoMemberID)
		}
	}
	return id, nil
}

// Load reads a member's certificate and key and the CA bundle (the files
// of -tls-cert, -tls-key and -tls-ca) and parses them with Parse. When
// memberID is not empty the certificate must name that member.
func Load(certFile, keyFile, caFile, memberID string) (*Credentials, error) {
	var contents [3][]byte
	for i, name := range []string{certFile, keyFile, caFile} {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("membertls: %w", err)
		}
		contents[i] = b
	}
	c, err := Parse(contents[0], contents[1], contents[2])
	if err != nil {
		return nil, fmt.Errorf("membertls: %s, %s, %s: %w", certFile, keyFile, caFile, err)
	}
	if memberID != "" {
		id, err := MemberID(c.Cert.Leaf)
		if err != nil {
			return nil, fmt.Errorf("membertls: %s: %w", certFile, err)
		}
		if id != memberID {
			return nil, fmt.Errorf("%w: %s is the certificate of member %q, not of %q; the subject common name must be the member id", ErrNoMemberID, certFile, id, memberID)
		}
	}
	return c, nil
}

// Parse parses a PEM certificate chain, its private key and a CA bundle
// (one or more certificates). Every failure wraps ErrBadPEM. The returned
// certificate has Leaf set.
func Parse(certPEM, keyPEM, caPEM []byte) (*Credentials, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate and key: %w", ErrBadPEM, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%w: the CA bundle holds no PEM certificate", ErrBadPEM)
	}
	return &Credentials{Cert: cert, CAs: pool}, nil
}

// ServerConfig returns a TLS 1.3 server configuration that presents cert
// and requires a client certificate signed by one of roots.
func ServerConfig(roots *x509.CertPool, cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    roots,
	}
}

// ClientConfig returns a TLS 1.3 client configuration that presents cert
// and verifies servers against roots only (never the system roots).
func ClientConfig(roots *x509.CertPool, cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      roots,
	}
}

// ServerConfig is ServerConfig for c.
func (c *Credentials) ServerConfig() *tls.Config { return ServerConfig(c.CAs, c.Cert) }

// ClientConfig is ClientConfig for c.
func (c *Credentials) ClientConfig() *tls.Config { return ClientConfig(c.CAs, c.Cert) }
