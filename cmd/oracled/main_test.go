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

// TestNegativeFlagsRefused: a negative count, rate or duration is an error
// naming the flag, on a member and in dev mode, not a silent default.
func TestNegativeFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		dev  bool
		args []string
		want []string
	}{
		{false, []string{"-challenge-interval", "-5s"}, []string{"-challenge-interval -5s"}},
		{false, []string{"-epoch", "-1h", "-new-node-burst", "-1"}, []string{"-epoch -1h0m0s", "-new-node-burst -1"}},
		{false, []string{"-new-nodes-per-second", "-0.5"}, []string{"-new-nodes-per-second -0.5"}},
		{true, []string{"-challenge-interval", "-1s", "-members", "-3"}, []string{"-challenge-interval -1s", "-members -3"}},
		{true, []string{"-epoch", "-2s", "-honest", "-1", "-time-scale", "-2"}, []string{"-epoch -2s", "-honest -1", "-time-scale -2"}},
	} {
		var err error
		if tc.dev {
			err = runDev(context.Background(), tc.args, io.Discard)
		} else {
			err = runMember(context.Background(), tc.args)
		}
		if err == nil || !strings.Contains(err.Error(), "cannot be negative") {
			t.Errorf("dev=%v %q: got %v, want a refusal of negative values", tc.dev, tc.args, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("dev=%v %q: %q does not name %q", tc.dev, tc.args, err, w)
			}
		}
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
