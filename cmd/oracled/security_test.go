package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/truegpu/truegpu/internal/devpki"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/membertls"
	"github.com/truegpu/truegpu/oracle"
)

func clearMemberEnv(t *testing.T) {
	for _, env := range []string{"TRUEGPU_NODE_ID", "TRUEGPU_DATA_DIR", "TRUEGPU_SIGNER_KEY", "TRUEGPU_TLS_CERT", "TRUEGPU_TLS_KEY", "TRUEGPU_TLS_CA",
		"TRUEGPU_INSECURE_NO_TLS", "TRUEGPU_RAFT_ADDR", "TRUEGPU_GRPC_ADDR", "TRUEGPU_HTTP_ADDR", "TRUEGPU_RAFT_ADVERTISE", "TRUEGPU_GRPC_ADVERTISE", "TRUEGPU_JOIN"} {
		t.Setenv(env, "") // restored after the test
		os.Unsetenv(env)
	}
}

// TestMemberNeedsTLS: a member does not start without mutual TLS unless
// -insecure-no-tls is given, and then only on loopback addresses; its
// certificate must be its own.
func TestMemberNeedsTLS(t *testing.T) {
	clearMemberEnv(t)
	dir := t.TempDir()
	missingKey := filepath.Join(dir, "no-such-signer-key")
	base := []string{"-node-id", "m1", "-data-dir", dir, "-signer-key", missingKey}
	run := func(extra ...string) error {
		return runMember(context.Background(), append(append([]string{}, base...), extra...))
	}
	if err := run(); !errors.Is(err, errNoTLS) {
		t.Fatalf("no TLS flags: %v, want errNoTLS", err)
	}
	for _, flag := range []string{"-raft-addr", "-grpc-addr", "-http-addr", "-raft-advertise", "-grpc-advertise", "-join"} {
		for _, addr := range []string{"0.0.0.0:7000", ":7000", "10.0.0.1:7000", "oracle.example:7000"} {
			err := run("-insecure-no-tls", flag, addr)
			if err == nil || !strings.Contains(err.Error(), "loopback") || !strings.Contains(err.Error(), flag) {
				t.Errorf("-insecure-no-tls %s %s: %v, want a loopback-only refusal naming the flag", flag, addr, err)
			}
		}
	}
	// On loopback the insecure member gets past the TLS check (and stops
	// at the missing signer key).
	if err := run("-insecure-no-tls", "-grpc-addr", "[::1]:0", "-http-addr", "localhost:0"); err == nil || errors.Is(err, errNoTLS) || strings.Contains(err.Error(), "loopback") {
		t.Fatalf("-insecure-no-tls on loopback: %v, want it past the TLS check", err)
	}
	ca, err := devpki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	files, err := ca.WritePEM(filepath.Join(dir, "pki"), "m1", "m2")
	if err != nil {
		t.Fatal(err)
	}
	f := files["m2"]
	if err := run("-tls-cert", f.Cert, "-tls-key", f.Key, "-tls-ca", f.CA); !errors.Is(err, membertls.ErrNoMemberID) {
		t.Fatalf("member m1 with m2's certificate: %v, want ErrNoMemberID", err)
	}
	if err := run("-tls-cert", f.Cert, "-tls-key", f.Key, "-tls-ca", f.CA, "-insecure-no-tls"); err == nil || !strings.Contains(err.Error(), "cannot be combined") {
		t.Fatalf("TLS and -insecure-no-tls: %v", err)
	}
	if err := run("-tls-cert", f.Cert); err == nil || !strings.Contains(err.Error(), "together") {
		t.Fatalf("-tls-cert alone: %v", err)
	}
	f = files["m1"]
	if err := run("-tls-cert", f.Cert, "-tls-key", f.Key, "-tls-ca", f.CA); err == nil || errors.Is(err, errNoTLS) || errors.Is(err, membertls.ErrNoMemberID) {
		t.Fatalf("member m1 with its own certificate: %v, want it past the TLS check", err)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:1": true, "127.5.0.1:1": true, "[::1]:1": true, "localhost:1": true,
		":1": false, "0.0.0.0:1": false, "[::]:1": false, "10.0.0.1:1": false, "example.com:1": false, "127.0.0.1": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestFeedDomain(t *testing.T) {
	const contract = "0x00000000000000000000000000000000000f33d1"
	d, notice, err := feedDomain(8453, contract, false, true)
	if err != nil || d.ChainID != 8453 || d.VerifyingContract != ethcrypto.MustParseAddress(contract) || notice != "" {
		t.Fatalf("chain and contract: %v %q %v", d, notice, err)
	}
	if _, _, err := feedDomain(0, "", false, true); !errors.Is(err, errNoChain) {
		t.Fatalf("production member without a chain: %v, want errNoChain", err)
	}
	for _, tc := range []struct {
		production, noChain bool
	}{{true, true}, {false, false}, {false, true}} {
		d, notice, err := feedDomain(0, "", tc.noChain, tc.production)
		if err != nil || d.ChainID != 0 || !d.VerifyingContract.IsZero() || !strings.Contains(notice, "no chain") {
			t.Fatalf("dev default (%+v): %v %q %v", tc, d, notice, err)
		}
	}
	for _, tc := range []struct {
		chain    uint64
		contract string
		noChain  bool
	}{
		{8453, "", false},
		{0, contract, false},
		{8453, "0x0000000000000000000000000000000000000000", false},
		{8453, "nope", false},
		{8453, contract, true},
	} {
		if _, _, err := feedDomain(tc.chain, tc.contract, tc.noChain, true); err == nil {
			t.Errorf("feedDomain(%d, %q, %v) accepted", tc.chain, tc.contract, tc.noChain)
		}
	}
}

func TestClusterIDFor(t *testing.T) {
	if id, err := clusterIDFor("", false); err != nil || id != oracle.DefaultClusterID {
		t.Fatalf("loopback default: %q %v", id, err)
	}
	if _, err := clusterIDFor("", true); err == nil || !strings.Contains(err.Error(), "-cluster-id") {
		t.Fatalf("TLS member without -cluster-id: %v", err)
	}
	if id, err := clusterIDFor("prod-eu", true); err != nil || id != "prod-eu" {
		t.Fatalf("-cluster-id prod-eu: %q %v", id, err)
	}
	if _, err := clusterIDFor(strings.Repeat("x", 129), true); err == nil {
		t.Fatal("overlong id accepted")
	}
}

func TestVerifyRaftPeer(t *testing.T) {
	ca, err := devpki.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("m1")
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyRaftPeer(tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert.Leaf}}); err != nil {
		t.Fatalf("member certificate: %v", err)
	}
	anon := *cert.Leaf
	anon.Subject.CommonName = ""
	if err := verifyRaftPeer(tls.ConnectionState{PeerCertificates: []*x509.Certificate{&anon}}); !errors.Is(err, membertls.ErrNoMemberID) {
		t.Fatalf("certificate without a member id: %v", err)
	}
	if err := verifyRaftPeer(tls.ConnectionState{}); err == nil {
		t.Fatal("no certificate admitted")
	}
}
