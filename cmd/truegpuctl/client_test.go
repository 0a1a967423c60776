package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/truegpu/truegpu/oracle/httpapi/apitest"
)

// runCtl runs truegpuctl in-process.
func runCtl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// jsonOf decodes JSON output.
func jsonOf(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, s)
	}
	return m
}

// dataLines returns the non-header lines of a table.
func dataLines(s string) []string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) <= 1 {
		return nil
	}
	return lines[1:]
}

func TestClientVerbs(t *testing.T) {
	probe := apitest.New()
	var fake, honest string
	for _, a := range probe.Addresses() {
		n := probe.Node(a)
		if len(n.GetReasons()) > 0 && n.GetReasons()[0].GetCode() == "CAPACITY_SLOW" && fake == "" {
			fake = a
		}
		if len(n.GetReasons()) == 0 && honest == "" {
			honest = a
		}
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    []string
		wantErr    []string
		check      func(t *testing.T, stdout string)
		afterCheck []string // args of a second call whose output must contain wantAfter
		wantAfter  []string
	}{
		{name: "nodes table", args: []string{"nodes"}, wantOut: []string{"ADDRESS", "STATUS", "CORRECTNESS", "trusted", "rejected", "CAPACITY_SLOW"},
			check: func(t *testing.T, out string) {
				if n := len(dataLines(out)); n != apitest.NumNodes {
					t.Errorf("%d rows, want %d", n, apitest.NumNodes)
				}
			}},
		{name: "nodes filtered json", args: []string{"nodes", "--status", "rejected", "-o", "json"},
			check: func(t *testing.T, out string) {
				m := jsonOf(t, out)
				nodes := m["nodes"].([]any)
				if len(nodes) != apitest.NumRejected {
					t.Errorf("%d nodes, want %d", len(nodes), apitest.NumRejected)
				}
				for _, n := range nodes {
					if s := n.(map[string]any)["status"]; s != "NODE_STATUS_REJECTED" {
						t.Errorf("status %v in a rejected listing", s)
					}
				}
			}},
		{name: "nodes ordered and limited", args: []string{"nodes", "--order", "score desc", "--limit", "5"}, wantErr: []string{"showing 5 of 36 nodes"},
			check: func(t *testing.T, out string) {
				rows := dataLines(out)
				if len(rows) != 5 {
					t.Fatalf("%d rows, want 5", len(rows))
				}
				prev := "99.99%"
				for _, r := range rows {
					score := strings.Fields(r)[2]
					if len(score) == len(prev) && score > prev {
						t.Errorf("score %s after %s: not descending", score, prev)
					}
					prev = score
				}
			}},
		{name: "nodes by class and min score", args: []string{"nodes", "--class", "H200", "--min-score", "90"},
			check: func(t *testing.T, out string) {
				rows := dataLines(out)
				if len(rows) == 0 {
					t.Fatal("no rows")
				}
				for _, r := range rows {
					f := strings.Fields(r)
					if f[7] != "H200" || f[2] < "90.00%" {
						t.Errorf("row %q does not match --class H200 --min-score 90", r)
					}
				}
			}},
		{name: "flags after positional args", args: []string{"node", fake, "-o", "json"},
			check: func(t *testing.T, out string) {
				if a := jsonOf(t, out)["node"].(map[string]any)["address"]; a != fake {
					t.Errorf("address %v, want %s", a, fake)
				}
			}},
		{name: "node table shows reasons and evidence", args: []string{"node", strings.ToLower(fake)},
			wantOut: []string{"Address:", fake, "Status:", "rejected", "CAPACITY_SLOW", "evidence: challenge 0x", "Devices:", "NVIDIA GeForce RTX 3090", "Recent challenges (10 of 14 shown", "COMMITMENT_LATE"}},
		{name: "honest node has no reasons", args: []string{"node", honest}, wantOut: []string{"trusted", "Reasons:\n  none"}},
		{name: "unknown node exits 1", args: []string{"node", "0x0000000000000000000000000000000000000001"}, wantCode: 1,
			wantErr: []string{"is not registered (not found)"}},
		{name: "bad address exits 1 with the server's reason", args: []string{"node", "0xzz"}, wantCode: 1, wantErr: []string{"not a 0x-prefixed", "invalid argument"}},
		{name: "node without address", args: []string{"node"}, wantCode: 2, wantErr: []string{"one ADDRESS"}},
		{name: "bad status", args: []string{"nodes", "--status", "great"}, wantCode: 2, wantErr: []string{"use trusted, probation, suspect or rejected"}},
		{name: "bad min score", args: []string{"nodes", "--min-score", "120"}, wantCode: 2, wantErr: []string{"between 0 and 100"}},
		{name: "bad order", args: []string{"nodes", "--order", "random"}, wantCode: 2},
		{name: "bad output", args: []string{"cluster", "-o", "yaml"}, wantCode: 2, wantErr: []string{"use table or json"}},
		{name: "cert without key", args: []string{"cluster", "--tls-cert", "c.pem"}, wantCode: 2, wantErr: []string{"--tls-key"}},
		{name: "feed latest", args: []string{"feed", "latest"}, wantOut: []string{"Epoch:", "42", "2 of 3 signers, 2 needed (complete)", "oracle-1", "(not signed)", "Root:", "0x"}},
		{name: "feed latest incomplete", args: []string{"feed", "latest", "--include-incomplete"}, wantOut: []string{"43", "(incomplete)"}},
		{name: "feed epoch json", args: []string{"feed", "41", "-o", "json"},
			check: func(t *testing.T, out string) {
				r := jsonOf(t, out)["report"].(map[string]any)
				if r["epoch"] != "41" || len(r["signatures"].([]any)) != 3 {
					t.Errorf("report %v", r)
				}
			}},
		{name: "unknown epoch", args: []string{"feed", "99"}, wantCode: 1, wantErr: []string{"no report for epoch 99"}},
		{name: "bad epoch", args: []string{"feed", "yesterday"}, wantCode: 2},
		{name: "feed proof", args: []string{"feed", "proof", "42", fake}, wantOut: []string{"Leaf:", "Root:", "Proof:", "rejected"}},
		{name: "feed proof needs two args", args: []string{"feed", "proof", "42"}, wantCode: 2},
		{name: "cluster", args: []string{"cluster"}, wantOut: []string{"Leader:", "oracle-1", "leader", "follower", "Health:", "serving", "2 of 3"}},
		{name: "cluster json", args: []string{"cluster", "-o", "json"},
			check: func(t *testing.T, out string) {
				m := jsonOf(t, out)
				if m["cluster"].(map[string]any)["leaderId"] != "oracle-1" || m["health"].(map[string]any)["status"] != "serving" {
					t.Errorf("got %v", m)
				}
			}},
		{name: "members join", args: []string{"members", "join", "oracle-4", "10.0.0.14:7000"},
			wantOut: []string{"member oracle-4 joined at Raft index 48214"}, afterCheck: []string{"cluster"}, wantAfter: []string{"oracle-4", "10.0.0.14:7000"}},
		{name: "members join existing", args: []string{"members", "join", "oracle-1", "10.0.0.11:7000"}, wantCode: 1, wantErr: []string{"already in the cluster (already exists)"}},
		{name: "members remove", args: []string{"members", "remove", "oracle-3", "-o", "json"},
			check: func(t *testing.T, out string) {
				if jsonOf(t, out)["index"] != "48214" {
					t.Errorf("got %s", out)
				}
			}},
		{name: "members remove unknown", args: []string{"members", "remove", "oracle-9"}, wantCode: 1, wantErr: []string{"not in the cluster (not found)"}},
		{name: "members bad verb", args: []string{"members", "promote", "oracle-2"}, wantCode: 2},
		{name: "help of a verb", args: []string{"nodes", "-h"}, wantErr: []string{"Usage: truegpuctl nodes", "--min-score"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, _ := apitest.Serve(t, apitest.New())
			args := append(append([]string{}, tt.args...), "--server", addr)
			code, out, errOut := runCtl(t, args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if tt.check != nil {
				tt.check(t, out)
			}
			if tt.afterCheck != nil {
				_, out2, _ := runCtl(t, append(tt.afterCheck, "--server", addr)...)
				for _, w := range tt.wantAfter {
					if !strings.Contains(out2, w) {
						t.Errorf("%v output lacks %q:\n%s", tt.afterCheck, w, out2)
					}
				}
			}
		})
	}
}

func TestServerFromEnvironment(t *testing.T) {
	addr, _ := apitest.Serve(t, apitest.New())
	t.Setenv("TRUEGPU_SERVER", addr)
	if code, out, errOut := runCtl(t, "cluster"); code != 0 || !strings.Contains(out, "oracle-1") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
}

func TestUnreachableServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	code, _, errOut := runCtl(t, "nodes", "--server", addr, "--timeout", "5s")
	if code != 1 || !strings.Contains(errOut, "cannot reach the oracle member at "+addr) {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
}

// TestMutualTLS serves the fixture over TLS that requires client
// certificates, and checks the TLS flags.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCert(t, nil, nil, "truegpu test CA", true)
	serverCert, serverKey := newCert(t, ca, caKey, "oracle-1", false)
	clientCert, clientKey := newCert(t, ca, caKey, "operator", false)
	write := func(name string, der []byte, typ string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	caFile := write("ca.pem", ca.Raw, "CERTIFICATE")
	certFile := write("client.pem", clientCert.Raw, "CERTIFICATE")
	keyFile := write("client.key", keyDER(clientKey), "PRIVATE KEY")

	pool := x509.NewCertPool()
	pool.AddCert(ca)
	creds := credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{serverCert.Raw}, PrivateKey: serverKey}},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(creds))
	apitest.New().Register(s)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	addr := lis.Addr().String()

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"mutual TLS", []string{"--tls-ca", caFile, "--tls-cert", certFile, "--tls-key", keyFile}, 0, ""},
		{"no client certificate", []string{"--tls-ca", caFile}, 1, "cannot reach"},
		{"plaintext to a TLS server", nil, 1, "cannot reach"},
		{"missing CA file", []string{"--tls-ca", filepath.Join(dir, "nope.pem")}, 1, "read --tls-ca"},
		{"CA file without certificates", []string{"--tls-ca", keyFile}, 1, "holds no PEM certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"cluster", "--server", addr, "--timeout", "5s"}, tt.args...)
			code, out, errOut := runCtl(t, args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tt.wantCode, out, errOut)
			}
			if tt.wantCode == 0 && !strings.Contains(out, "oracle-1") {
				t.Errorf("output lacks the cluster:\n%s", out)
			}
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr %q lacks %q", errOut, tt.wantErr)
			}
		})
	}
}

// newCert makes a certificate for 127.0.0.1 signed by parent (self-signed
// when parent is nil).
func newCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn string, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  isCA,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}
