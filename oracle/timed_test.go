package oracle

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/attest/cpu"
	"github.com/truegpu/truegpu/attest/sim"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/gpuclass"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/prover/timed"
	"github.com/truegpu/truegpu/reputation"
)

// timedOutcome is what happened to one challenge with a timed phase.
type timedOutcome struct {
	id       []byte
	verdict  *truegpuv1.Verdict
	err      error
	issuedAt time.Time
}

// answerTimed registers a node backed by dev and has the production
// attestor answer n challenges issued to it one after another, each sized
// by the member's scheduler (timed phase included).
func answerTimed(t *testing.T, m *Member, dev attest.Device, key *attest.NodeKey, n int) []timedOutcome {
	t.Helper()
	ctx := context.Background()
	a, rec := registeredAgent(t, m, dialMember(t, m), dev, key)
	s := newScheduler(m)
	var out []timedOutcome
	for range n {
		now := m.cfg.Now()
		ch, err := s.challenge(key.Address(), rec.Devices[0], now, "")
		if err != nil {
			t.Fatal(err)
		}
		if ch.Timed == nil && ch.Memory == nil {
			t.Fatal("the scheduler issued a challenge without a timed or memory phase")
		}
		if _, err := m.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_IssueChallenges{
			IssueChallenges: &truegpuv1.IssueChallengesCommand{Challenges: []*truegpuv1.IssuedChallenge{ch}}}}); err != nil {
			t.Fatal(err)
		}
		res, err := a.Handle(ctx, m.challengeView(ch, rec))
		out = append(out, timedOutcome{id: ch.Id, verdict: res.Verdict, err: err, issuedAt: now})
	}
	return out
}

// skipTimed computes the profile workload honestly but commits a made-up
// timed root: what a node that skips the expensive phase must do to be on
// time. Its openings are those of a real run, which cannot match the root.
type skipTimed struct{ attest.Device }

func (d skipTimed) Run(ctx context.Context, w attest.Workload) (attest.Commitment, error) {
	c, err := d.Device.Run(ctx, w)
	c.TimedRoot[0] ^= 0xff
	return c, err
}

// wrongCells commits honestly but opens leaves with one byte changed in
// every opened leaf: results that do not match what the root binds.
type wrongCells struct{ attest.Device }

func (d wrongCells) OpenTimed(nonce prover.Nonce, seed [timed.SeedSize]byte) ([]byte, error) {
	b, err := d.Device.OpenTimed(nonce, seed)
	if err != nil {
		return nil, err
	}
	o, err := timed.DecodeOpenings(b)
	if err != nil {
		return nil, err
	}
	for i := range o.Leaves {
		for j := range o.Leaves[i].Bytes {
			o.Leaves[i].Bytes[j] ^= 1
		}
	}
	return o.Encode(), nil
}

// TestTimedPhaseThroughThePipeline drives devices through a member's real
// pipeline with the timed phase on (a small target, computed as a
// stand-in, as on a development cluster): an honest H100 is accepted with
// its openings on record; an RTX 3090 and a CPU claiming H100 cannot finish
// the H100's phase in time; a node that skips the phase or opens results
// other than those it committed is rejected as TIMED_CHECK_FAILED, and the
// audit agrees with every verdict.
func TestTimedPhaseThroughThePipeline(t *testing.T) {
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Pipeline.RatePerNode, cfg.Pipeline.Burst = 100000, 100000
		cfg.Schedule.TimedTargetMillis, cfg.Schedule.TimedStandIn = 300, true
	})
	m := c.leader(5 * time.Second)
	key := func(name string) *attest.NodeKey { return attest.NodeKeyFromSeed([]byte("timed " + name)) }
	device := func(profile string) attest.Device {
		d, err := sim.New(profile, sim.Options{Seed: []byte(profile)})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	var decided [][]byte
	for _, o := range answerTimed(t, m, device("h100"), key("honest"), 2) {
		if o.err != nil || !o.verdict.GetAccepted() {
			t.Fatalf("honest H100: %v %v", o.verdict, o.err)
		}
		cs, err := m.fsm.Challenge(o.id)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs.TimedRoot) != 32 || len(cs.Verdict.GetTimedOpenings()) == 0 {
			t.Fatalf("accepted challenge keeps timed root %x and %d bytes of openings", cs.TimedRoot, len(cs.Verdict.GetTimedOpenings()))
		}
		if err := CheckTimed(cs, cs.Verdict.TimedOpenings); err != nil {
			t.Fatalf("recorded openings do not check: %v", err)
		}
		decided = append(decided, o.id)
	}

	for _, liar := range []string{"rtx3090-as-h100", "spoof-h100"} {
		for _, o := range answerTimed(t, m, device(liar), key(liar), 1) {
			if o.err == nil && o.verdict.GetAccepted() {
				t.Fatalf("%s was accepted on the H100's timed phase", liar)
			}
			// Either the commitment arrives late (the attestor still
			// sends it within one more window) or the run gives up.
			if !errors.Is(o.err, attest.ErrCommitmentRejected) && !errors.Is(o.err, context.DeadlineExceeded) {
				t.Fatalf("%s: want a late commitment or an overrun, got %v %v", liar, o.verdict, o.err)
			}
			t.Logf("%s: %v", liar, o.err)
		}
	}

	for name, dev := range map[string]attest.Device{
		"skipper":     skipTimed{device("h100")},
		"wrong cells": wrongCells{device("h100")},
	} {
		for _, o := range answerTimed(t, m, dev, key(name), 1) {
			if o.err != nil || o.verdict.GetAccepted() || o.verdict.GetReason() != string(reputation.ReasonTimedInvalid) {
				t.Fatalf("%s: verdict %v, err %v; want a %s rejection", name, o.verdict, o.err, reputation.ReasonTimedInvalid)
			}
			t.Logf("%s: %s (%s)", name, o.verdict.GetReason(), o.verdict.GetDetail())
			decided = append(decided, o.id)
		}
	}

	// The audit re-checks the timed phase of every decided challenge.
	auditFirstEpoch(t, m, decided)
}

// auditFirstEpoch closes epoch 1 and runs the member's audit of it (what a
// member does before it signs the report); decided are the challenges that
// must still be in the state.
func auditFirstEpoch(t *testing.T, m *Member, decided [][]byte) {
	t.Helper()
	ctx := context.Background()
	if _, err := m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: time.Now().UnixMilli(), Body: &truegpuv1.Command_CloseEpoch{CloseEpoch: &truegpuv1.CloseEpochCommand{Epoch: 1}}}); err != nil {
		t.Fatal(err)
	}
	es, err := m.fsm.Epoch(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.audit(es); err != nil {
		t.Fatalf("audit of the epoch: %v", err)
	}
	for _, id := range decided {
		if _, err := m.fsm.Challenge(id); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRealCPUMissesTheH100TimedPhase has the CPU backend compute, for
// real, the production-sized timed phase of a challenge that claims an
// H100: it cannot finish before the H100's deadline by a wide margin. The
// run is cut off at the deadline; the test then extrapolates the CPU's
// measured progress rate, which is what the margin claim is about.
func TestRealCPUMissesTheH100TimedPhase(t *testing.T) {
	h100, _ := gpuclass.Lookup(gpuclass.H100SXM)
	m, n, k := h100.TimedDims(gpuclass.DefaultTimedTargetMillis)
	spec := timed.Spec{M: m, N: n, K: k}
	deadline := time.Duration(gpuclass.TimedDeadline(h100.TimedExpectedMillis(m, n, k))) * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	p, _, _ := testKeys(t)
	dev := cpu.New(cpu.Options{Seed: []byte("real cpu")})
	start := time.Now()
	_, err := dev.Run(ctx, attest.Workload{Profile: p, Nonce: prover.Nonce{1}, Timed: spec, TimedModel: spec})
	if err == nil {
		t.Fatalf("a CPU finished the H100's %d×%d×%d timed phase within its %v deadline", m, n, k, deadline)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run: %v", err)
	}
	// Measure this CPU on two rows of the same phase (all cores, the
	// same N and K) and extrapolate to its M rows.
	slice := timed.Spec{M: 2, N: n, K: k}
	t0 := time.Now()
	if _, err := timed.Compute(context.Background(), slice, [32]byte{2}, 0); err != nil {
		t.Fatal(err)
	}
	perRow := time.Since(t0) / 2
	need := perRow * time.Duration(m)
	t.Logf("CPU on the H100 phase (%d×%d×%d, %.2g ops): cut off after %v at the %v deadline; at %v per row it needs %v (%.0fx the deadline)",
		m, n, k, float64(spec.Ops()), time.Since(start).Round(time.Millisecond), deadline, perRow.Round(time.Millisecond), need.Round(time.Second), float64(need)/float64(deadline))
	if need < 100*deadline {
		t.Fatalf("the CPU would need only %v, less than 100x the %v deadline", need, deadline)
	}
}

// TestOneDeviceBehindManyIdentities registers four identities with unrelated
// fingerprints that are all answered by one H100 (sim.RelayGroup) and
// storms them: every challenge of a storm is issued at the same instant, so
// the device runs the four timed phases one after another and at most one
// identity per storm meets its deadline. Honest devices in the same storms
// answer on time.
func TestOneDeviceBehindManyIdentities(t *testing.T) {
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Pipeline.RatePerNode, cfg.Pipeline.Burst = 100000, 100000
		cfg.Schedule.TimedTargetMillis, cfg.Schedule.TimedStandIn = 2000, true
	})
	m := c.leader(5 * time.Second)
	ctx := context.Background()
	cc := dialMember(t, m)
	group, err := sim.NewRelayGroup("h100", sim.Options{Seed: []byte("relay farm")})
	if err != nil {
		t.Fatal(err)
	}
	type node struct {
		name  string
		agent *attest.Agent
		rec   *truegpuv1.NodeRecord
		relay bool
	}
	var nodes []*node
	add := func(name string, dev attest.Device, relay bool) {
		a, rec := registeredAgent(t, m, cc, dev, attest.NodeKeyFromSeed([]byte("relay test "+name)))
		nodes = append(nodes, &node{name, a, rec, relay})
	}
	for i := range 4 {
		d, err := group.Device("h100")
		if err != nil {
			t.Fatal(err)
		}
		add(fmt.Sprintf("relay %d", i), d, true)
	}
	for i := range 2 {
		d, err := sim.NewHonest(gpuclass.H100SXM, sim.Options{Seed: []byte(fmt.Sprintf("honest %d", i))})
		if err != nil {
			t.Fatal(err)
		}
		add(fmt.Sprintf("honest %d", i), d, false)
	}
	fps := map[string]bool{}
	for _, n := range nodes {
		fp := n.rec.Devices[0].GetFingerprint().GetUuid()
		if fps[fp] {
			t.Fatalf("two identities share device %s: the relays are meant to look unrelated", fp)
		}
		fps[fp] = true
	}

	s := newScheduler(m)
	for storm := range 2 {
		now := m.cfg.Now()
		var chs []*truegpuv1.IssuedChallenge
		for _, n := range nodes {
			ch, err := s.challenge(ethcrypto.Address(n.rec.Address), n.rec.Devices[0], now, fmt.Sprintf("storm-%d", storm))
			if err != nil {
				t.Fatal(err)
			}
			chs = append(chs, ch)
		}
		if _, err := m.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_IssueChallenges{
			IssueChallenges: &truegpuv1.IssueChallengesCommand{Challenges: chs}}}); err != nil {
			t.Fatal(err)
		}
		type result struct {
			n  *node
			ok bool
		}
		results := make(chan result, len(nodes))
		for i, n := range nodes {
			go func() {
				out, err := n.agent.Handle(ctx, m.challengeView(chs[i], n.rec))
				results <- result{n, err == nil && out.Verdict.GetAccepted()}
			}()
		}
		onTime := 0
		for range nodes {
			r := <-results
			switch {
			case r.n.relay && r.ok:
				onTime++
			case !r.n.relay && !r.ok:
				t.Fatalf("storm %d: honest node %s failed", storm, r.n.name)
			}
		}
		t.Logf("storm %d: %d of 4 relay identities on time", storm, onTime)
		if onTime > 1 {
			t.Fatalf("storm %d: %d identities behind one device met their deadlines; at most one can", storm, onTime)
		}
	}
}
