package main

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/truegpu/truegpu/oracle/devcluster"
)

// TestAgainstDevCluster runs the client verbs against a real development
// cluster (three Raft members and a simulated fleet): "nodes" lists the whole
// fleet with statuses, "node" explains one, "cluster" shows the members.
func TestAgainstDevCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a development cluster; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	fleet := devcluster.DefaultFleet()
	c, err := devcluster.Start(ctx, devcluster.Options{
		HTTPAddr:          "127.0.0.1:0",
		GRPCAddr:          "127.0.0.1:0",
		EpochInterval:     5 * time.Second,
		ChallengeInterval: 3 * time.Second,
		Fleet:             fleet,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("start dev cluster: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	server := c.Nodes[1].GRPCAddr // a member that may be a follower: reads are served locally
	want := fleet.Honest + len(fleet.Adversaries)

	// Wait until the fleet has registered and the oracle has rejected a fake.
	var out string
	for {
		code, stdout, stderr := runCtl(t, "nodes", "--server", server)
		rows := dataLines(stdout)
		if code == 0 && len(rows) == want && strings.Contains(stdout, " rejected ") {
			out = stdout
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("nodes never listed %d nodes with a rejected one: exit %d\n%s\n%s", want, code, stdout, stderr)
		case <-time.After(time.Second):
		}
	}
	var rejected string
	for _, row := range dataLines(out) {
		f := strings.Fields(row)
		if len(f) < 11 || !strings.HasPrefix(f[0], "0x") || !strings.HasSuffix(f[2], "%") {
			t.Errorf("malformed row %q", row)
			continue
		}
		switch f[1] {
		case "probation", "trusted", "suspect":
		case "rejected":
			rejected = f[0]
		default:
			t.Errorf("row %q has status %q", row, f[1])
		}
	}

	code, stdout, stderr := runCtl(t, "node", rejected, "--server", server)
	if code != 0 || !regexp.MustCompile(`(?m)^Status:\s+rejected$`).MatchString(stdout) || strings.Contains(stdout, "Reasons:\n  none") {
		t.Errorf("node %s: exit %d\n%s\n%s", rejected, code, stdout, stderr)
	}
	code, stdout, stderr = runCtl(t, "cluster", "--server", server, "-o", "json")
	if code != 0 {
		t.Fatalf("cluster: exit %d\n%s", code, stderr)
	}
	cl := jsonOf(t, stdout)["cluster"].(map[string]any)
	if len(cl["members"].([]any)) != 3 || cl["leaderId"] == "" {
		t.Errorf("cluster %v", cl)
	}
}
