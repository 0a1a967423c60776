package oracle

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/attest/sim"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/gpuclass"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/reputation"
)

// samplingRun is what happened to one adversary's challenges.
type samplingRun struct {
	accepted, rejected, unproven int
	ids                          [][]byte
}

// runSampling registers a node backed by dev with the member over gRPC,
// then issues n challenges to it one after another and lets the
// production attestor (attest.Agent) answer each: run, commit, receive the
// sample seed, prove if it can, submit.
func runSampling(t *testing.T, m *Member, dev attest.Device, key *attest.NodeKey, n int) samplingRun {
	t.Helper()
	ctx := context.Background()
	a, rec := registeredAgent(t, m, dialMember(t, m), dev, key)
	addr := key.Address()
	s := newScheduler(m)
	var r samplingRun
	for range n {
		ch, err := s.challenge(addr, rec.Devices[0], m.cfg.Now(), "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_IssueChallenges{
			IssueChallenges: &truegpuv1.IssueChallengesCommand{Challenges: []*truegpuv1.IssuedChallenge{ch}}}}); err != nil {
			t.Fatal(err)
		}
		r.ids = append(r.ids, ch.Id)
		out, err := a.Handle(ctx, m.challengeView(ch, rec))
		switch {
		case err == nil && out.Verdict.GetAccepted():
			r.accepted++
		case err == nil:
			r.rejected++
		case errors.Is(err, prover.ErrWrongResult), errors.Is(err, sim.ErrAbandoned):
			// The samples fell on cells the node did not compute: no proof.
			r.unproven++
		default:
			t.Fatalf("challenge %s: %v", truegpuv1.FormatChallengeID(ch.Id), err)
		}
	}
	return r
}

// dialMember opens a plaintext gRPC connection to the member, closed
// when the test ends.
func dialMember(t testing.TB, m *Member) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(m.cfg.GRPCAdvertise, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// registeredAgent makes the production attestor for a node backed by dev
// (proving with the test keys), registers the node over cc and returns
// the agent and the node's record.
func registeredAgent(t testing.TB, m *Member, cc *grpc.ClientConn, dev attest.Device, key *attest.NodeKey) (*attest.Agent, *truegpuv1.NodeRecord) {
	t.Helper()
	ctx := context.Background()
	_, pk, _ := testKeys(t)
	a, err := attest.NewAgent(ctx, attest.AgentConfig{
		Client: truegpuv1.NewNodeServiceClient(cc), Key: key, Devices: []attest.AgentDevice{sim.AgentDevice(dev)},
		Keys: func(*prover.Profile) (*prover.ProvingKey, error) { return pk, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Register(ctx); err != nil {
		t.Fatal(err)
	}
	rec, err := m.fsm.Node(key.Address())
	if err != nil {
		t.Fatal(err)
	}
	return a, rec
}

// binomialBound is the pass count a node computing fraction f of the cells
// stays under, at profile p, in n challenges: mean + 5 standard deviations
// of Binomial(n, f^Q), rounded up.
func binomialBound(p *prover.Profile, f float64, n int) int {
	q := math.Pow(f, float64(p.Q))
	return int(math.Ceil(float64(n)*q + 5*math.Sqrt(float64(n)*q*(1-q))))
}

// TestSamplingAdversariesThroughThePipeline drives the two adversaries
// that compute half of the cells through a member's real pipeline (gRPC,
// signatures, Raft, batch verification): one grinds roots against its
// best guess of the sample seed before committing, one abandons challenges
// whose samples miss. Each passes at the rate f^Q of an honest-looking
// partial node and no more; the challenges they do not prove expire as
// correctness failures (PROOF_MISSING), not liveness misses. Against a
// member whose sample seed is predictable (the planted bug) the grinder
// passes nearly always, so the test tells a sound oracle from an unsound
// one.
func TestSamplingAdversariesThroughThePipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("answers about a hundred challenges through a cluster")
	}
	p, _, _ := testKeys(t)
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Pipeline.RatePerNode, cfg.Pipeline.Burst = 100000, 100000
	})
	m := c.leader(5 * time.Second)
	const n, f = 40, 0.5
	bound := binomialBound(p, f, n)

	newKey := func(name string) *attest.NodeKey { return attest.NodeKeyFromSeed([]byte("sampling " + name)) }
	grinderKey := newKey("grinder")
	grinder, err := sim.NewGrinder(gpuclass.H100SXM, sim.Options{Seed: []byte("grinder"), Node: grinderKey.ProverAddress()})
	if err != nil {
		t.Fatal(err)
	}
	g := runSampling(t, m, grinder, grinderKey, n)
	t.Logf("grinder (f = %.2f, 64 roots per challenge): %d accepted, %d rejected, %d unproven of %d; f^Q·n = %.1f, bound %d",
		f, g.accepted, g.rejected, g.unproven, n, math.Pow(f, float64(p.Q))*n, bound)
	if g.accepted > bound {
		t.Fatalf("grinder passed %d of %d challenges, more than f^Q allows (%d)", g.accepted, n, bound)
	}

	abandonerKey := newKey("abandoner")
	abandoner, err := sim.NewAbandoner(gpuclass.H100SXM, sim.Options{Seed: []byte("abandoner")})
	if err != nil {
		t.Fatal(err)
	}
	ab := runSampling(t, m, abandoner, abandonerKey, n)
	t.Logf("abandoner (f = %.2f): %d accepted, %d rejected, %d abandoned of %d", f, ab.accepted, ab.rejected, ab.unproven, n)
	if ab.accepted > bound {
		t.Fatalf("abandoner passed %d of %d challenges, more than f^Q allows (%d)", ab.accepted, n, bound)
	}
	if ab.unproven == 0 || g.unproven == 0 {
		t.Fatal("no challenge went unproven: the adversaries did not model partial work")
	}

	// Abandoned challenges expire as correctness failures.
	ctx := context.Background()
	var latest int64
	for _, id := range append(g.ids, ab.ids...) {
		cs, err := m.fsm.Challenge(id)
		if err != nil {
			t.Fatal(err)
		}
		latest = max(latest, cs.Challenge.ProofDeadlineUnixMs)
	}
	if _, err := m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: latest + 1, Body: &truegpuv1.Command_ExpireChallenges{
		ExpireChallenges: &truegpuv1.ExpireChallengesCommand{ChallengeIds: append(g.ids, ab.ids...)}}}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []*attest.NodeKey{grinderKey, abandonerKey} {
		missing := 0
		for _, pen := range nodePenalties(t, m, key.Address()) {
			if pen.Reason == reputation.ReasonProofMissing {
				missing++
				if pen.Dimension != reputation.Correctness {
					t.Fatalf("node %s: PROOF_MISSING counted against %s, want correctness", key.Address(), pen.Dimension)
				}
			}
		}
		if missing == 0 {
			t.Fatalf("node %s: no PROOF_MISSING correctness failure recorded", key.Address())
		}
	}

	// The planted bug: a member whose sample seed the node can predict.
	// The same grinder now passes nearly every challenge.
	t.Run("predictable seed is caught", func(t *testing.T) {
		m.pipeline.drawSeed = func() [fsm.SampleSeedSize]byte { return [fsm.SampleSeedSize]byte{} }
		defer func() { m.pipeline.drawSeed = drawSeed }()
		key := newKey("grinder vs predictable seed")
		dev, err := sim.NewGrinder(gpuclass.H100SXM, sim.Options{Seed: []byte("grinder 2"), Node: key.ProverAddress()})
		if err != nil {
			t.Fatal(err)
		}
		const planted = 12
		r := runSampling(t, m, dev, key, planted)
		t.Logf("grinder against a predictable seed: %d accepted of %d", r.accepted, planted)
		if r.accepted <= binomialBound(p, f, planted) {
			t.Fatalf("with a predictable seed the grinder passed only %d of %d: the check could not catch a predictable seed", r.accepted, planted)
		}
	})
}

// nodePenalties returns the penalty log of a node's reputation.
func nodePenalties(t *testing.T, m *Member, addr ethcrypto.Address) []reputation.Penalty {
	t.Helper()
	rec, err := m.fsm.Node(addr)
	if err != nil {
		t.Fatal(err)
	}
	var st reputation.NodeState
	if err := st.UnmarshalBinary(rec.Reputation); err != nil {
		t.Fatal(fmt.Errorf("reputation of %s: %w", addr, err))
	}
	return st.Penalties
}
