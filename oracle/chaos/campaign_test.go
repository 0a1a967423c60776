package chaos

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestShortCampaign is the campaign CI runs: one seeded run over a fresh
// 3-member cluster of real oracled processes with mutual TLS, through
// nine faults in a row (the leader killed and restarted from disk, a
// follower paused past the election timeout, the leader partitioned away
// alone, latency and connection resets on every link, the leader's clock
// skewed, a member's Raft log failing its writes, a member's file writes
// failing as on a full disk, a follower killed in the middle of a snapshot
// restore, a member added and one removed), then every checker.
func TestShortCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real oracled processes for about two and a half minutes; skipped with -short")
	}
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Minute)
	t.Cleanup(cancel)
	bin, err := BuildOracled(ctx, root, dir)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	r := Run(ctx, RunConfig{
		Binary: bin, Dir: dir + "/run", Seed: 20261130,
		Sequence: []Fault{KillLeader, PauseFollower, PartitionLeader, SlowNetwork, ClockSkew, DiskErrors, DiskFull, CrashRestore, Membership},
		Warmup:   2 * time.Second, Hold: 2 * time.Second,
		Log: &log,
	})
	t.Log("\n" + log.String())
	t.Logf("faults: %s", strings.Join(r.Faults, "; "))
	t.Logf("%d operations, %d acknowledged, %d verdicts, linearizability %s over %d operations, applied index %d, %v",
		r.Ops, r.Acked, r.Verdicts, r.Linearizable.Result, r.Linearizable.Ops, r.AppliedIndex, r.Duration.Round(time.Second))
	for _, p := range r.Problems() {
		t.Error(p)
	}
	if r.Err == nil && (r.Ops == 0 || r.Acked == 0) {
		t.Errorf("the workload did nothing: %d operations, %d acknowledged", r.Ops, r.Acked)
	}
}
