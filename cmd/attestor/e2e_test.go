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

// The attestor with --device cpu against an in-process dev cluster (the
// one `oracled dev` runs): it registers, answers a challenge, and the
// oracle accepts its proof.
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

	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logs := &syncBuffer{}
	key := filepath.Join(t.TempDir(), "node.key")
	done := make(chan int, 1)
	go func() {
		done <- run(rctx, []string{"run", "--oracle", c.Nodes[0].GRPCAddr, "--insecure", "--key", key, "--create-key",
			"--device", "cpu", "--dev-keys"}, io.Discard, logs)
	}()
	deadline := time.Now().Add(150 * time.Second)
	accepted := regexp.MustCompile(`msg=verdict .*accepted=true`)
	for !accepted.MatchString(logs.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no accepted verdict within 150s; attestor log:\n%s", logs.String())
		}
		select {
		case code := <-done:
			t.Fatalf("attestor exited %d early:\n%s", code, logs.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	for _, step := range []string{"msg=registered", "msg=\"running challenge\"", "msg=committed", "msg=proved"} {
		if !strings.Contains(logs.String(), step) {
			t.Errorf("attestor log lacks %s", step)
		}
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("attestor exited %d after interrupt:\n%s", code, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("attestor did not shut down within 30s")
	}
}
