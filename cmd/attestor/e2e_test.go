package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/truegpu/truegpu/oracle/devcluster"
)

// syncBuffer is a bytes.Buffer safe for a concurrent writer and reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The attestor against an in-process dev cluster (the one `oracled dev`
// runs): with --device cpu it registers, answers a challenge and the
// oracle accepts its proof; a garbage-committing simulated node's proofs
// are rejected.
func TestEndToEndWithDevCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster and proves with Groth16")
	}
	ctx := context.Background()
	c, err := devcluster.Start(ctx, devcluster.Options{
		Members: 1, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		EpochInterval: 2 * time.Second, ChallengeInterval: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RaftLog: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	// Two nodes on one cluster: an honest CPU node, whose proofs must be
	// accepted, and a simulated garbage-committing H100, whose must not.
	nodes := []struct {
		device string
		want   *regexp.Regexp
	}{
		{"cpu", regexp.MustCompile(`msg=verdict .*accepted=true`)},
		{"sim:garbage-h100", regexp.MustCompile(`msg=verdict .*accepted=false reason=\S+`)},
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logs := make([]*syncBuffer, len(nodes))
	done := make(chan int, len(nodes))
	for i, n := range nodes {
		logs[i] = &syncBuffer{}
		key := filepath.Join(t.TempDir(), "node.key")
		go func() {
			done <- run(rctx, []string{"run", "--oracle", c.Nodes[0].GRPCAddr, "--insecure", "--key", key, "--create-key",
				"--device", n.device, "--dev-keys"}, io.Discard, logs[i])
		}()
	}
	deadline := time.Now().Add(150 * time.Second)
	for i, n := range nodes {
		for !n.want.MatchString(logs[i].String()) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no verdict matching %s within 150s; attestor log:\n%s", n.device, n.want, logs[i].String())
			}
			select {
			case code := <-done:
				t.Fatalf("an attestor exited %d early:\n%s", code, logs[i].String())
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	for _, step := range []string{"msg=registered", "msg=\"running challenge\"", "msg=committed", "msg=proved"} {
		if !strings.Contains(logs[0].String(), step) {
			t.Errorf("attestor log lacks %s", step)
		}
	}
	cancel()
	for range nodes {
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("attestor exited %d after interrupt", code)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("attestor did not shut down within 30s")
		}
	}
}
