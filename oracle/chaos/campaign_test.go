package chaos

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
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
	ctx, dir, bin := buildForTest(t, 7*time.Minute)
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

// TestCheckersCatchPlantedStaleReads: the checkers catch a defect planted
// in the real binary, not only in histories handed to them. oracled built
// with the chaosplant tag answers linearizable reads on any member from
// its own state, without the leader, VerifyLeader or Barrier (oracle
// plant_chaosplant.go); a run that cuts a follower off makes that member's
// answers stale while the others acknowledge writes, and the
// linearizability checker must fail the run.
func TestCheckersCatchPlantedStaleReads(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a planted oracled and runs a real cluster for about half a minute; skipped with -short")
	}
	ctx, dir, bin := buildForTest(t, 5*time.Minute, "chaosplant")
	if b := OracledBuild(bin); !strings.HasSuffix(b, "+chaosplant") {
		t.Fatalf("the planted binary names its build %q, without +chaosplant", b)
	}
	var log strings.Builder
	r := Run(ctx, RunConfig{
		Binary: bin, Dir: dir + "/run", Seed: 20261201, Fault: PartitionFollower,
		Warmup: 2 * time.Second, Hold: 3 * time.Second, Log: &log,
	})
	t.Logf("faults: %s; %d operations, %d acknowledged, linearizability %s over %d operations",
		strings.Join(r.Faults, "; "), r.Ops, r.Acked, r.Linearizable.Result, r.Linearizable.Ops)
	if r.Err != nil {
		t.Fatalf("the run did not complete, so nothing was checked: %v\n%s", r.Err, log.String())
	}
	if r.Linearizable.Result != porcupine.Illegal {
		t.Fatalf("linearizability %s with reads served without the leader or a barrier; want a violation found\n%s", r.Linearizable.Result, log.String())
	}
	if r.Passed() {
		t.Fatal("the run passed with a planted stale-read defect")
	}
}

// buildForTest builds oracled with tags into a test directory and returns
// a context that ends after timeout, the directory and the binary.
func buildForTest(t *testing.T, timeout time.Duration, tags ...string) (context.Context, string, string) {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	bin, err := BuildOracled(ctx, root, dir, tags...)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, dir, bin
}
