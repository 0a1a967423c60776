package main

import (
	"bufio"
	"context"
	"flag"
	"io"
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

// TestDevWithoutFleet runs `oracled dev` with an empty fleet (-honest 0
// -adversaries ”) and one-second epochs on free ports: it serves REST,
// prints its first signed report and then the line of the next one (which
// once dereferenced the fleet that such a cluster does not have), and
// returns cleanly when cancelled as Ctrl-C would.
func TestDevWithoutFleet(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan string, 1)
	devReady = func(c *devcluster.Cluster) { ready <- c.Nodes[0].HTTPURL() }
	defer func() { devReady = func(*devcluster.Cluster) {} }()
	pr, pw := io.Pipe()
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // the test has stopped reading
			}
		}
	}()
	done := make(chan error, 1)
	go func() {
		done <- runDev(ctx, []string{"-http", "127.0.0.1:0", "-grpc", "127.0.0.1:0", "-honest", "0", "-adversaries", "", "-epoch", "1s"}, pw)
		pw.Close()
	}()
	limit := time.After(3 * time.Minute)
	select {
	case url := <-ready:
		resp, err := http.Get(url + "/v1/cluster")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /v1/cluster: %v %v", resp, err)
		}
		resp.Body.Close()
	case err := <-done:
		t.Fatalf("dev ended before serving: %v", err)
	case <-limit:
		t.Fatal("dev did not come up")
	}
	var seen []string
	for first, next := false, false; !next; {
		select {
		case l := <-lines:
			seen = append(seen, l)
			switch {
			case strings.HasPrefix(l, "oracled dev: first report signed"):
				first = true
			case first && strings.HasPrefix(l, "oracled dev: epoch ") && strings.Contains(l, " signed; 0 nodes"):
				next = true
			}
		case err := <-done:
			t.Fatalf("dev ended before its second epoch report (%v); it printed:\n%s", err, strings.Join(seen, "\n"))
		case <-limit:
			t.Fatalf("no second epoch report; dev printed:\n%s", strings.Join(seen, "\n"))
		}
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
