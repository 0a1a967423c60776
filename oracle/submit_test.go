package oracle

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// bareLine is a pipeline over a fake state and a fake proposer: no Raft,
// no state machine.
type bareLine struct {
	p     *pipeline
	st    *fakeState
	prop  *fakeProposer
	clock *fakeClock
}

func newBareLine(t *testing.T, tune func(*Config)) *bareLine {
	clock := &fakeClock{t: time.Now()}
	st, prop := newFakeState(), &fakeProposer{}
	return &bareLine{p: newPipeline(bareMember(t, clock.Now, tune), st, prop), st: st, prop: prop, clock: clock}
}

// pending records a pending challenge of n's device issued now.
func (b *bareLine) pending(t *testing.T, n *testNode) *truegpuv1.IssuedChallenge {
	t.Helper()
	ch, err := newScheduler(b.p.m).challenge(n.key.Address(), n.dev, b.clock.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	b.st.addChallenge(&truegpuv1.ChallengeState{Challenge: ch, Outcome: fsm.OutcomePending})
	return ch
}

// refused checks that err is want with its reason code and that nothing
// was proposed since before.
func (b *bareLine) refused(t *testing.T, err, want error, reason string, before int) {
	t.Helper()
	if !errors.Is(err, want) || Reason(err) != reason {
		t.Fatalf("got %v (reason %q), want %v (%s)", err, Reason(err), want, reason)
	}
	if n := len(b.prop.proposed()); n != before {
		t.Fatalf("a refused request proposed %d commands", n-before)
	}
}

// TestPipelineWithoutRaft drives the pipeline through its seams: what each
// accepted request proposes, what a refused one answers (and that it
// proposes nothing), and how the proposer's answer becomes the reply.
func TestPipelineWithoutRaft(t *testing.T) {
	ctx := context.Background()
	node, other := newTestNode(1), newTestNode(2)

	t.Run("registration proposes the signed request", func(t *testing.T) {
		b := newBareLine(t, nil)
		req := node.registerReq(b.clock.Now())
		resp, err := b.p.Register(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		cmds := b.prop.proposed()
		if len(cmds) != 1 || resp.AppliedIndex != 1 || resp.Address != node.addr() {
			t.Fatalf("%d commands, reply %v", len(cmds), resp)
		}
		reg, addr := cmds[0].GetRegisterNode(), node.key.Address()
		signed := &truegpuv1.RegisterNodeRequest{}
		if reg == nil || string(reg.Address) != string(addr[:]) || len(reg.Devices) != 1 ||
			cmds[0].LeaderTimeUnixMs != b.clock.Now().UnixMilli() || proto.Unmarshal(reg.SignedRequest, signed) != nil || !proto.Equal(signed, req) {
			t.Fatalf("proposed %v", cmds[0])
		}
	})

	t.Run("registration budget", func(t *testing.T) {
		b := newBareLine(t, func(c *Config) { c.Admission = &RegistrationBudget{PerSecond: 0, Burst: 1} })
		if _, err := b.p.Register(ctx, node.registerReq(b.clock.Now())); err != nil {
			t.Fatal(err)
		}
		_, err := b.p.Register(ctx, other.registerReq(b.clock.Now()))
		b.refused(t, err, ErrRegistrationBudget, ReasonRateLimited, 1)
		// A registered node is not counted against the budget.
		b.st.addNode(node)
		if _, err := b.p.Register(ctx, node.registerReq(b.clock.Now().Add(time.Millisecond))); err != nil {
			t.Fatalf("re-registration with the budget spent: %v", err)
		}
		if n := len(b.prop.proposed()); n != 2 {
			t.Fatalf("%d registrations proposed, want 2", n)
		}
	})

	t.Run("unknown node", func(t *testing.T) {
		b := newBareLine(t, nil)
		ch := b.pending(t, node)
		_, err := b.p.Commit(ctx, node.commitReq(ch, [32]byte{1}))
		b.refused(t, err, ErrUnknownNode, ReasonUnknownNode, 0)
	})

	t.Run("another node's challenge", func(t *testing.T) {
		b := newBareLine(t, nil)
		b.st.addNode(node)
		b.st.addNode(other)
		ch := b.pending(t, other)
		_, err := b.p.Commit(ctx, node.commitReq(ch, [32]byte{1}))
		b.refused(t, err, ErrUnknownNonce, ReasonUnknownNonce, 0)
	})

	t.Run("commitment records arrival and a fresh seed", func(t *testing.T) {
		b := newBareLine(t, nil)
		b.st.addNode(node)
		ch := b.pending(t, node)
		seed := [fsm.SampleSeedSize]byte{7, 7, 7}
		b.p.drawSeed = func() [fsm.SampleSeedSize]byte { return seed }
		b.clock.Advance(40 * time.Millisecond)
		root := [32]byte{0xaa}
		resp, err := b.p.Commit(ctx, node.commitReq(ch, root))
		if err != nil || !resp.Accepted || !bytes.Equal(resp.SampleSeed, seed[:]) || resp.ReceivedAtUnixMs != b.clock.Now().UnixMilli() {
			t.Fatalf("reply %v, %v", resp, err)
		}
		cmds := b.prop.proposed()
		rc := cmds[len(cmds)-1].GetRecordCommitment()
		if len(cmds) != 1 || rc == nil || !bytes.Equal(rc.ChallengeId, ch.Id) || !bytes.Equal(rc.Root, root[:]) ||
			!bytes.Equal(rc.SampleSeed, seed[:]) || rc.ReceivedAtUnixMs != b.clock.Now().UnixMilli() || len(rc.SignedRequest) == 0 {
			t.Fatalf("proposed %v", cmds)
		}
	})

	t.Run("late commitment becomes a rejected verdict", func(t *testing.T) {
		b := newBareLine(t, nil)
		b.st.addNode(node)
		ch := b.pending(t, node)
		b.clock.Advance(time.Duration(ch.CommitDeadlineUnixMs-ch.IssuedAtUnixMs+5) * time.Millisecond)
		resp, err := b.p.Commit(ctx, node.commitReq(ch, [32]byte{1}))
		if err != nil || resp.Accepted || resp.Reason != string(reputation.ReasonCommitmentLate) {
			t.Fatalf("reply %v, %v", resp, err)
		}
		cmds := b.prop.proposed()
		if len(cmds) != 1 || len(cmds[0].GetRecordVerdicts().GetVerdicts()) != 1 {
			t.Fatalf("proposed %v, want one verdict", cmds)
		}
		v := cmds[0].GetRecordVerdicts().Verdicts[0]
		if v.Accepted || v.Reason != string(reputation.ReasonCommitmentLate) || v.CommitReceivedAtUnixMs != ch.CommitDeadlineUnixMs+5 || v.DecidedAtUnixMs != b.clock.Now().UnixMilli() {
			t.Fatalf("verdict %v", v)
		}
	})

	t.Run("a lost race answers as recorded", func(t *testing.T) {
		b := newBareLine(t, nil)
		b.st.addNode(node)
		ch := b.pending(t, node)
		root, recorded := [32]byte{0xbb}, []byte("recorded seed 16")
		// Another copy of the request was applied first.
		b.prop.fail = func(c *truegpuv1.Command) error {
			b.st.addChallenge(&truegpuv1.ChallengeState{Challenge: ch, Outcome: fsm.OutcomeCommitted, Root: root[:], SampleSeed: recorded, ReceivedAtUnixMs: 5})
			return fsm.ErrConflict
		}
		resp, err := b.p.Commit(ctx, node.commitReq(ch, root))
		if err != nil || !resp.Accepted || !bytes.Equal(resp.SampleSeed, recorded) || resp.ReceivedAtUnixMs != 5 {
			t.Fatalf("reply %v, %v; want the recorded answer", resp, err)
		}
		// Another root for the same challenge is refused.
		_, err = b.p.Commit(ctx, node.commitReq(ch, [32]byte{0xcc}))
		b.refused(t, err, ErrNonceReused, ReasonNonceReused, 1)
	})

	t.Run("proof before commitment", func(t *testing.T) {
		b := newBareLine(t, nil)
		b.st.addNode(node)
		ch := b.pending(t, node)
		_, err := b.p.Proof(ctx, node.proofReq(ch, make([]byte, 256)))
		b.refused(t, err, ErrNotCommitted, ReasonNotCommitted, 0)
	})

	t.Run("proof after its deadline", func(t *testing.T) {
		b := newBareLine(t, nil)
		b.st.addNode(node)
		ch := b.pending(t, node)
		b.st.addChallenge(&truegpuv1.ChallengeState{Challenge: ch, Outcome: fsm.OutcomeCommitted, Root: make([]byte, 32), SampleSeed: make([]byte, 16)})
		b.clock.Advance(time.Duration(ch.ProofDeadlineUnixMs-ch.IssuedAtUnixMs+1) * time.Millisecond)
		_, err := b.p.Proof(ctx, node.proofReq(ch, make([]byte, 256)))
		b.refused(t, err, ErrProofLate, ReasonProofLate, 0)
	})
}
