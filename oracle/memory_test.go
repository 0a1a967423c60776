package oracle

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/attest/sim"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover/memwalk"
	"github.com/truegpu/truegpu/reputation"
)

// walkDevice is a device that runs the memory phase.
type walkDevice interface {
	attest.Device
	attest.Walker
}

// skipWalk fills and commits its table honestly but commits a made-up
// walk root without walking: what a node must do to be on time without
// the memory the claim needs. Its openings are those of a real walk, which
// cannot match the root.
type skipWalk struct{ walkDevice }

func (d skipWalk) Walk(ctx context.Context, w attest.Workload, seed [memwalk.SeedSize]byte) ([32]byte, error) {
	r, err := d.walkDevice.Walk(ctx, w, seed)
	r[0] ^= 0xff
	return r, err
}

// TestMemoryPhaseThroughThePipeline runs challenges with a memory phase
// through a member: honest devices are accepted with their walk latency
// recorded; hardware with half the claimed memory walks late; a node that
// skips the walk or makes up the states of blocks it dropped fails the
// checks; the audit re-checks every decided challenge.
func TestMemoryPhaseThroughThePipeline(t *testing.T) {
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Pipeline.RatePerNode, cfg.Pipeline.Burst = 100000, 100000
		cfg.Schedule.MemoryTargetMillis, cfg.Schedule.TimedStandIn = 2000, true
	})
	m := c.leader(5 * time.Second)
	key := func(name string) *attest.NodeKey { return attest.NodeKeyFromSeed([]byte("memory " + name)) }
	device := func(profile string) walkDevice {
		d, err := sim.New(profile, sim.Options{Seed: []byte(profile)})
		if err != nil {
			t.Fatal(err)
		}
		return d.(walkDevice)
	}
	outcomes := func(dev attest.Device, name string, n int) []timedOutcome {
		return answerTimed(t, m, dev, key(name), n)
	}

	var decided [][]byte
	for _, o := range outcomes(device("h100"), "honest", 2) {
		if o.err != nil || !o.verdict.GetAccepted() {
			t.Fatalf("honest H100: %v %v", o.verdict, o.err)
		}
		cs, err := m.fsm.Challenge(o.id)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs.TableRoot) != 32 || len(cs.WalkRoot) != 32 || len(cs.Verdict.GetWalkOpenings()) == 0 {
			t.Fatalf("accepted challenge keeps table root %x, walk root %x and %d bytes of walk openings", cs.TableRoot, cs.WalkRoot, len(cs.Verdict.GetWalkOpenings()))
		}
		if err := CheckMemory(cs, cs.Verdict.WalkOpenings); err != nil {
			t.Fatalf("recorded walk openings do not check: %v", err)
		}
		if o.verdict.GetWalkLatencyMs() == 0 || o.verdict.GetWalkExpectedLatencyMs() == 0 {
			t.Fatalf("verdict without the walk's latency: %v", o.verdict)
		}
		t.Logf("honest H100: walk %d ms against %d ms expected", o.verdict.GetWalkLatencyMs(), o.verdict.GetWalkExpectedLatencyMs())
		if r := historyRow(t, m, key("honest").Address(), o.id); r.GetWalkLatencyMs() != o.verdict.GetWalkLatencyMs() || r.GetWalkDeadlineMs() == 0 || r.GetWalkExpectedLatencyMs() == 0 {
			t.Fatalf("the node's history row does not keep the walk's timing: %v", r)
		}
		decided = append(decided, o.id)
	}

	// An A100 with 40 GB claiming the 80 GB card: same throughput, half
	// the memory. Its commitment is on time; its walk is not.
	for _, o := range outcomes(device("a100-40gb-as-a100-80gb"), "short memory", 1) {
		if o.err == nil && o.verdict.GetAccepted() {
			t.Fatal("an A100-40GB was accepted on the A100-80GB's memory phase")
		}
		if !errors.Is(o.err, attest.ErrCommitmentRejected) && !errors.Is(o.err, context.DeadlineExceeded) {
			t.Fatalf("A100-40GB as 80GB: want a late walk, got %v %v", o.verdict, o.err)
		}
		// The attestor gives up on a walk more than one walk window past
		// its deadline: then the challenge expires at the walk deadline
		// as WALK_LATE instead of a late verdict.
		cs, err := m.fsm.Challenge(o.id)
		if err != nil {
			t.Fatal(err)
		}
		if cs.Outcome == "committed" {
			ctx := context.Background()
			if _, err := m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: time.Now().UnixMilli(), Body: &truegpuv1.Command_ExpireChallenges{
				ExpireChallenges: &truegpuv1.ExpireChallengesCommand{ChallengeIds: [][]byte{o.id}}}}); err != nil {
				t.Fatal(err)
			}
			if cs, err = m.fsm.Challenge(o.id); err != nil {
				t.Fatal(err)
			}
		}
		late := cs.Outcome == "rejected" && cs.GetVerdict().GetReason() == string(reputation.ReasonWalkLate) && cs.GetVerdict().GetWalkReceivedAtUnixMs() != 0
		if !late && cs.Outcome != "missed" {
			t.Fatalf("A100-40GB as 80GB: challenge %s with verdict %v; want a WALK_LATE rejection or an expiry at the walk deadline", cs.Outcome, cs.GetVerdict())
		}
		rec, err := m.fsm.Node(attest.NodeKeyFromSeed([]byte("memory short memory")).Address())
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, r := range rec.Reasons {
			found = found || r.Code == string(reputation.ReasonWalkLate)
		}
		if !found {
			t.Fatalf("A100-40GB as 80GB: node reasons %v lack %s", rec.Reasons, reputation.ReasonWalkLate)
		}
		if r := historyRow(t, m, attest.NodeKeyFromSeed([]byte("memory short memory")).Address(), o.id); r.GetReason() != string(reputation.ReasonWalkLate) {
			t.Fatalf("A100-40GB as 80GB: history row %v, want reason %s", r, reputation.ReasonWalkLate)
		}
		t.Logf("A100-40GB as A100-80GB: %s %s %s", cs.Outcome, cs.GetVerdict().GetReason(), cs.GetVerdict().GetDetail())
		decided = append(decided, o.id)
	}

	for name, dev := range map[string]attest.Device{
		"skipper":   skipWalk{device("h100")},
		"forgetful": device("forget-h100"),
	} {
		for _, o := range outcomes(dev, name, 1) {
			if o.err != nil || o.verdict.GetAccepted() || o.verdict.GetReason() != string(reputation.ReasonWalkInvalid) {
				t.Fatalf("%s: verdict %v, err %v; want a %s rejection", name, o.verdict, o.err, reputation.ReasonWalkInvalid)
			}
			t.Logf("%s: %s (%s)", name, o.verdict.GetReason(), o.verdict.GetDetail())
			decided = append(decided, o.id)
		}
	}

	// The audit re-checks the memory phase of every decided challenge.
	auditFirstEpoch(t, m, decided)
}

// historyRow returns the node's history row of challenge id.
func historyRow(t *testing.T, m *Member, addr ethcrypto.Address, id []byte) *truegpuv1.ChallengeRecord {
	t.Helper()
	hist, _, err := m.fsm.ChallengeHistory(addr, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range hist {
		if r.ChallengeId == truegpuv1.FormatChallengeID(id) {
			return r
		}
	}
	t.Fatalf("challenge %s is not in the node's history", truegpuv1.FormatChallengeID(id))
	return nil
}
