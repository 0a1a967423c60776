package devpki_test

import (
	"errors"
	"testing"

	"github.com/truegpu/truegpu/internal/devpki"
)

// FuzzParsePEM feeds arbitrary bytes as the certificate, key and CA bundle.
// ParsePEM must never panic and must fail with ErrBadPEM, or succeed with
// a parsed certificate and a pool.
func FuzzParsePEM(f *testing.F) {
	ca, err := devpki.NewCA("fuzz-ca")
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	files, err := ca.WritePEM(dir, "node-1", "node-2")
	if err != nil {
		f.Fatal(err)
	}
	cert1, key1 := mustRead(f, files["node-1"].Cert), mustRead(f, files["node-1"].Key)
	cert2 := mustRead(f, files["node-2"].Cert)
	f.Add(cert1, key1, ca.CertPEM())                // valid
	f.Add(cert2, key1, ca.CertPEM())                // key of another member
	f.Add(cert1[:len(cert1)/2], key1, ca.CertPEM()) // truncated certificate
	f.Add(cert1, key1, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, certPEM, keyPEM, caPEM []byte) {
		c, pool, err := devpki.ParsePEM(certPEM, keyPEM, caPEM)
		if err != nil {
			if !errors.Is(err, devpki.ErrBadPEM) {
				t.Fatalf("ParsePEM error %v does not wrap ErrBadPEM", err)
			}
			return
		}
		if len(c.Certificate) == 0 || c.Leaf == nil || pool == nil {
			t.Fatalf("ParsePEM succeeded without a parsed certificate or pool")
		}
	})
}
