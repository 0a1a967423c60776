package membertls_test

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/truegpu/truegpu/internal/devpki"
	"github.com/truegpu/truegpu/internal/membertls"
)

func writeCA(t testing.TB, ids ...string) (*devpki.CA, map[string]devpki.Files, string) {
	t.Helper()
	ca, err := devpki.NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := ca.WritePEM(dir, ids...)
	if err != nil {
		t.Fatal(err)
	}
	return ca, files, dir
}

func TestLoad(t *testing.T) {
	_, files, _ := writeCA(t, "node-1")
	f := files["node-1"]
	c, err := membertls.Load(f.Cert, f.Key, f.CA, "node-1")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	id, err := membertls.MemberID(c.Cert.Leaf)
	if err != nil || id != "node-1" {
		t.Fatalf("MemberID = %q, %v", id, err)
	}
	if _, err := c.Cert.Leaf.Verify(x509.VerifyOptions{Roots: c.CAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("loaded certificate does not verify against the loaded CA: %v", err)
	}
	if s := c.ServerConfig(); s.ClientCAs != c.CAs || len(s.Certificates) != 1 {
		t.Error("ServerConfig does not carry the credentials")
	}
	// A member started with another member's certificate is refused.
	if _, err := membertls.Load(f.Cert, f.Key, f.CA, "node-2"); !errors.Is(err, membertls.ErrNoMemberID) {
		t.Fatalf("Load as another member: %v, want ErrNoMemberID", err)
	}
}

func TestLoadErrors(t *testing.T) {
	_, files, dir := writeCA(t, "node-1")
	f := files["node-1"]
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name            string
		cert, key, cafn string
		want            error
	}{
		{"MissingCert", filepath.Join(dir, "nope.pem"), f.Key, f.CA, os.ErrNotExist},
		{"KeyMismatch", f.Cert, filepath.Join(dir, "ca-key.pem"), f.CA, membertls.ErrBadPEM},
		{"GarbageCA", f.Cert, f.Key, garbage, membertls.ErrBadPEM},
		{"MissingCA", f.Cert, f.Key, filepath.Join(dir, "nope.pem"), os.ErrNotExist},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := membertls.Load(tc.cert, tc.key, tc.cafn, ""); !errors.Is(err, tc.want) {
				t.Fatalf("Load = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestMemberID(t *testing.T) {
	for _, tc := range []struct {
		cn string
		ok bool
	}{{"oracle-1", true}, {"", false}, {"has space", false}, {"tab\tx", false}, {string(make([]byte, 129)), false}} {
		c := &x509.Certificate{}
		c.Subject.CommonName = tc.cn
		if _, err := membertls.MemberID(c); (err == nil) != tc.ok {
			t.Errorf("MemberID(%q) err = %v, want ok=%v", tc.cn, err, tc.ok)
		}
	}
	if _, err := membertls.MemberID(nil); !errors.Is(err, membertls.ErrNoMemberID) {
		t.Errorf("MemberID(nil) = %v", err)
	}
}

// FuzzParse feeds arbitrary bytes as the certificate, key and CA bundle.
// Parse must never panic and must fail with ErrBadPEM, or succeed with a
// parsed certificate and a pool.
func FuzzParse(f *testing.F) {
	ca, files, _ := writeCA(f, "node-1", "node-2")
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	cert1, key1 := read(files["node-1"].Cert), read(files["node-1"].Key)
	cert2 := read(files["node-2"].Cert)
	f.Add(cert1, key1, ca.CertPEM())                // valid
	f.Add(cert2, key1, ca.CertPEM())                // key of another member
	f.Add(cert1[:len(cert1)/2], key1, ca.CertPEM()) // truncated certificate
	f.Add(cert1, key1, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, certPEM, keyPEM, caPEM []byte) {
		c, err := membertls.Parse(certPEM, keyPEM, caPEM)
		if err != nil {
			if !errors.Is(err, membertls.ErrBadPEM) {
				t.Fatalf("Parse error %v does not wrap ErrBadPEM", err)
			}
			return
		}
		if len(c.Cert.Certificate) == 0 || c.Cert.Leaf == nil || c.CAs == nil {
			t.Fatalf("Parse succeeded without a parsed certificate or pool")
		}
		_, _ = membertls.MemberID(c.Cert.Leaf)
	})
}
