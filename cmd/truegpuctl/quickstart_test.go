package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/truegpu/truegpu/client"
	"github.com/truegpu/truegpu/internal/ethcrypto"
)

// TestQuickstartPKI checks the material quickstart creates: each member's
// certificate names the member id as its subject common name and as a DNS
// name, serves and authenticates clients under the CA, and is valid for
// loopback; signing keys are private; a second run reuses everything.
func TestQuickstartPKI(t *testing.T) {
	dir := t.TempDir()
	if err := quickstartPKI(dir); err != nil {
		t.Fatal(err)
	}
	ca := readCert(t, filepath.Join(dir, "pki", "ca.pem"))
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	keys := map[string][]byte{}
	for _, id := range quickstartMembers {
		c := readCert(t, filepath.Join(dir, "pki", id+".pem"))
		if c.Subject.CommonName != id || !slices.Contains(c.DNSNames, id) {
			t.Errorf("%s: common name %q, DNS names %v; want the member id in both", id, c.Subject.CommonName, c.DNSNames)
		}
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1", KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
				t.Errorf("%s for %v on 127.0.0.1: %v", id, usage, err)
			}
		}
		for _, f := range []string{filepath.Join("pki", id+"-key.pem"), filepath.Join(id, "signer.key")} {
			st, err := os.Stat(filepath.Join(dir, f))
			if err != nil || st.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s: %v, mode %v; want a private file", f, err, st.Mode())
			}
		}
		keys[id], _ = os.ReadFile(filepath.Join(dir, id, "signer.key"))
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, "pki", "ca.pem"))
	if err := quickstartPKI(dir); err != nil {
		t.Fatalf("second run: %v", err)
	}
	again, _ := os.ReadFile(filepath.Join(dir, "pki", "ca.pem"))
	if !bytes.Equal(caPEM, again) {
		t.Error("a second run replaced the CA")
	}
	for id, k := range keys {
		if b, _ := os.ReadFile(filepath.Join(dir, id, "signer.key")); !bytes.Equal(b, k) {
			t.Errorf("a second run replaced %s's signing key", id)
		}
	}
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestQuickstartProcesses runs the quickstart as the README does: it
// builds oracled and attestor, starts three member processes with mutual
// TLS and an attestor, and waits until the attestor's node has accepted
// verdicts and a leaf in a complete signed report; then restarts the
// cluster from its data.
// It takes about a minute (building the binaries is half of it), so it
// runs when TRUEGPU_QUICKSTART_E2E=1; .ci/run sets it.
func TestQuickstartProcesses(t *testing.T) {
	if os.Getenv("TRUEGPU_QUICKSTART_E2E") != "1" {
		t.Skip("set TRUEGPU_QUICKSTART_E2E=1 to build the binaries and run the multi-process quickstart (about a minute)")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "../oracled", "../attestor")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	base := fmt.Sprint(20000 + os.Getpid()%20000)
	// While the cluster runs, read it as a consumer would: the Go client
	// over TLS to a member that may follow, the feed verified against the
	// members' signing keys.
	quickstartReached = func(ctx context.Context, o quickstartOptions, node string) error {
		return consumeQuickstart(ctx, o, node)
	}
	t.Cleanup(func() { quickstartReached = nil })
	code, stdout, stderr := runCtl(t, "quickstart", "--dir", dir, "--bin", bin, "--base-port", base, "--until", "report", "--timeout", "4m")
	if code != 0 || !strings.Contains(stdout, "has accepted verdicts and a leaf in a complete signed report") {
		t.Fatalf("quickstart: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"cluster of 3 members up", "started attestor", "grpcurl -cacert", "quickstart: stopped"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, stderr = runCtl(t, "quickstart", "--dir", dir, "--bin", bin, "--base-port", base, "--until", "cluster", "--timeout", "2m")
	if code != 0 || !strings.Contains(stdout, "cluster of 3 members up") {
		t.Fatalf("quickstart again on the same data: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

func consumeQuickstart(ctx context.Context, o quickstartOptions, node string) error {
	pem, err := os.ReadFile(filepath.Join(o.dir, "pki", "ca.pem"))
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c, err := client.Dial(o.grpcAddr(3), client.Options{TLS: &tls.Config{RootCAs: roots}})
	if err != nil {
		return err
	}
	defer c.Close()
	nodes, err := c.ListNodes(ctx, client.NodeQuery{Class: "H100-SXM", Linearizable: true}, 0)
	if err != nil {
		return fmt.Errorf("list nodes over TLS: %w", err)
	}
	if len(nodes) != 1 || !strings.EqualFold(nodes[0].Address, node) {
		return fmt.Errorf("list nodes: %v, want the attestor's node %s", nodes, node)
	}
	r, err := c.LatestReport(ctx, false)
	if err != nil {
		return err
	}
	var signers []string
	for _, id := range quickstartMembers {
		k, err := ethcrypto.LoadKeyFile(filepath.Join(o.dir, id, "signer.key"))
		if err != nil {
			return err
		}
		signers = append(signers, k.Address().String())
	}
	if err := client.VerifyReport(r, client.Trust{Signers: signers}); err != nil {
		return err
	}
	p, err := c.NodeProof(ctx, r.Epoch, node)
	if err != nil {
		return err
	}
	return client.VerifyNodeProof(r, p)
}
