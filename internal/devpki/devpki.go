// Package devpki is a throwaway certificate authority for clusters that
// run on one machine: it creates a CA, issues member certificates of the
// production shape (subject common name and DNS name = the member id),
// builds their mutual-TLS 1.3 configurations (through internal/membertls,
// as production members do), and writes them as PEM files (WritePEM) and
// reads the CA back (ReadCA) so that more members can be issued later. Its
// users are `oracled dev` (oracle/devcluster, in memory), `truegpuctl
// quickstart` and the fault-injection harness (oracle/chaos, PEM files
// for separate oracled processes), and tests that need mutual TLS between
// members.
//
// It is for development and tests only. Keys are generated in process,
// never protected by a passphrase or hardware, and WritePEM stores the CA
// key next to the certificates. A production cluster uses certificates
// issued by the operator's own CA, passed to each member with its
// -tls-cert, -tls-key and -tls-ca flags and loaded by internal/membertls.
//
// The package does not own the transport (oracle/transport), loading a
// production member's TLS material (internal/membertls), or certificate
// rotation and revocation.
package devpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/truegpu/truegpu/internal/membertls"
)

// Errors returned by the package. Compare with errors.Is.
var (
	// ErrBadMemberID is returned by Issue for an id that cannot be a DNS
	// name in a certificate.
	ErrBadMemberID = errors.New("devpki: invalid member id")
	// ErrBadPEM is returned by ReadCA for files that do not hold the
	// expected PEM blocks.
	ErrBadPEM = errors.New("devpki: invalid PEM")
)

// Validity periods. Dev certificates are short-lived on purpose.
const (
	caValidity     = 30 * 24 * time.Hour
	memberValidity = 30 * 24 * time.Hour
	clockSkew      = time.Hour // NotBefore is backdated by this much
)

// CA is an in-memory certificate authority.
type CA struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

// NewCA creates a self-signed ECDSA P-256 CA named name, valid for 30 days.
func NewCA(name string) (*CA, error) {
	if name == "" {
		return nil, errors.New("devpki: CA name must not be empty")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devpki: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"TrueGPU dev PKI (not for production)"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("devpki: self-sign CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("devpki: parse CA: %w", err)
	}
	return &CA{cert: cert, der: der, key: key}, nil
}

func newSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("devpki: serial number: %w", err)
	}
	return serial, nil
}

// Certificate returns the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Pool returns a new pool holding only the CA certificate, for RootCAs
// and ClientCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// CertPEM returns the CA certificate in PEM form.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.der})
}

// validMemberID reports whether id is usable as a DNS SAN: 1 to 63
// characters of letters, digits, '-' and '.', not starting or ending with
// '-' or '.'.
func validMemberID(id string) bool {
	if len(id) == 0 || len(id) > 63 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '.':
			if i == 0 || i == len(id)-1 {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// Issue returns a certificate and key for member id, signed by ca and
// valid for both TLS server and client authentication (members dial each
// other). Its subject common name is id, and its SANs are 127.0.0.1, ::1,
// localhost, id (as a DNS name) and each of hosts (an IP address or a DNS
// name). The returned certificate has Leaf set.
func (ca *CA) Issue(id string, hosts ...string) (tls.Certificate, error) {
	if !validMemberID(id) {
		return tls.Certificate{}, fmt.Errorf("%w: %q (use 1-63 letters, digits, '-' or '.')", ErrBadMemberID, id)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("devpki: generate key for %s: %w", id, err)
	}
	serial, err := newSerial()
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: id, Organization: []string{"TrueGPU dev PKI (not for production)"}},
		NotBefore:    now.Add(-clockSkew),
		NotAfter:     now.Add(memberValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost", id},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("devpki: sign certificate for %s: %w", id, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("devpki: parse certificate for %s: %w", id, err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// ServerConfig returns a TLS 1.3 server configuration that presents cert
// and requires a client certificate signed by ca.
func ServerConfig(ca *CA, cert tls.Certificate) *tls.Config {
	return membertls.ServerConfig(ca.Pool(), cert)
}

// ClientConfig returns a TLS 1.3 client configuration that presents cert
// and verifies servers against ca.
func ClientConfig(ca *CA, cert tls.Certificate) *tls.Config {
	return membertls.ClientConfig(ca.Pool(), cert)
}

// Files names the PEM files WritePEM wrote for one member.
type Files struct {
	Cert string // the member's certificate (--tls-cert)
	Key  string // the member's private key, mode 0600 (--tls-key)
	CA   string // the CA certificate (--tls-ca)
}

// WritePEM issues a certificate for each member id and writes, into dir
// (created with mode 0700 if missing):
//
//	ca.pem            the CA certificate
//	ca-key.pem        the CA key (mode 0600), so more members can be added
//	<id>.pem          each member's certificate
//	<id>-key.pem      each member's key (mode 0600)
//
// It returns the files of each member, keyed by id. Existing files are
// overwritten.
func (ca *CA) WritePEM(dir string, ids ...string) (map[string]Files, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	caPath := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, ca.CertPEM(), 0o644); err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	caKey, err := keyPEM(ca.key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca-key.pem"), caKey, 0o600); err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	out := make(map[string]Files, len(ids))
	for _, id := range ids {
		cert, err := ca.Issue(id)
		if err != nil {
			return nil, err
		}
		kp, err := keyPEM(cert.PrivateKey.(*ecdsa.PrivateKey))
		if err != nil {
			return nil, err
		}
		f := Files{Cert: filepath.Join(dir, id+".pem"), Key: filepath.Join(dir, id+"-key.pem"), CA: caPath}
		if err := os.WriteFile(f.Cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o644); err != nil {
			return nil, fmt.Errorf("devpki: %w", err)
		}
		if err := os.WriteFile(f.Key, kp, 0o600); err != nil {
			return nil, fmt.Errorf("devpki: %w", err)
		}
		out[id] = f
	}
	return out, nil
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("devpki: marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ReadCA loads a CA written by WritePEM (ca.pem and ca-key.pem in dir), so
// more members can be issued later.
func ReadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	keyPEMBytes, err := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		return nil, fmt.Errorf("devpki: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEMBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: CA in %s: %w", ErrBadPEM, dir, err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: CA key in %s is %T, want an ECDSA key", ErrBadPEM, dir, pair.PrivateKey)
	}
	if !pair.Leaf.IsCA {
		return nil, fmt.Errorf("%w: %s/ca.pem is not a CA certificate", ErrBadPEM, dir)
	}
	return &CA{cert: pair.Leaf, der: pair.Certificate[0], key: key}, nil
}
