package main

import (
	"context"
	"flag"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/truegpu/truegpu/oracle/devcluster"
)

func TestMemberFlagsRequired(t *testing.T) {
	for _, env := range []string{"TRUEGPU_NODE_ID", "TRUEGPU_DATA_DIR", "TRUEGPU_SIGNER_KEY"} {
		t.Setenv(env, "")
	}
	err := runMember(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "-node-id") || !strings.Contains(err.Error(), "-data-dir") || !strings.Contains(err.Error(), "-signer-key") {
		t.Fatalf("got %v", err)
	}
}

func TestEnvDefaults(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	id := fs.String("node-id", "", "")
	addr := fs.String("grpc-addr", "x", "")
	if err := fs.Parse([]string{"-grpc-addr", "from-flag"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TRUEGPU_NODE_ID", "from-env")
	t.Setenv("TRUEGPU_GRPC_ADDR", "env-loses")
	if err := envDefaults(fs); err != nil {
		t.Fatal(err)
	}
	if *id != "from-env" || *addr != "from-flag" {
		t.Fatalf("node-id %q grpc-addr %q", *id, *addr)
	}
}

// TestDevShutdown starts `oracled dev` without a fleet on free ports and
// cancels it as Ctrl-C would: it must return cleanly.
func TestDevShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	devReady = func(c *devcluster.Cluster) { ready <- c.Nodes[0].HTTPURL() }
	defer func() { devReady = func(*devcluster.Cluster) {} }()
	done := make(chan error, 1)
	go func() {
		done <- runDev(ctx, []string{"-http", "127.0.0.1:0", "-grpc", "127.0.0.1:0", "-honest", "0", "-adversaries", ""})
	}()
	select {
	case url := <-ready:
		resp, err := http.Get(url + "/v1/cluster")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /v1/cluster: %v %v", resp, err)
		}
		resp.Body.Close()
	case err := <-done:
		t.Fatalf("dev ended before serving: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("dev did not come up")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("dev did not shut down")
	}
}
