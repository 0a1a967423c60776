package oracle

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// TestPipelineRejections submits each kind of bad input to a one-member
// cluster and checks the specific reason it is refused with.
func TestPipelineRejections(t *testing.T) {
	p, pk, _ := testKeys(t)
	clock := &fakeClock{t: time.Now()}
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Now = clock.Now
		cfg.Pipeline.RatePerNode, cfg.Pipeline.Burst = 1000, 1000
	})
	m := c.leader(5 * time.Second)
	ctx := context.Background()
	node, stranger := newTestNode(1), newTestNode(2)
	if _, err := m.pipeline.Register(ctx, node.registerReq(clock.Now())); err != nil {
		t.Fatal(err)
	}

	// A challenge answered honestly: commitment, then a valid proof.
	good := issue(t, m, node)
	goodTree := work(t, p, good)
	if r, err := m.pipeline.Commit(ctx, node.commitReq(good, goodTree.Root())); err != nil || !r.Accepted {
		t.Fatalf("honest commitment: %v %v", r, err)
	}
	goodProof := prove(t, m, pk, goodTree, good)
	v, err := m.pipeline.Proof(ctx, node.proofReq(good, goodProof))
	if err != nil || !v.Verdict.Accepted {
		t.Fatalf("honest proof: %v %v", v, err)
	}

	// Challenges for the bad cases.
	committed := func() *truegpuv1.IssuedChallenge {
		ch := issue(t, m, node)
		if r, err := m.pipeline.Commit(ctx, node.commitReq(ch, work(t, p, ch).Root())); err != nil || !r.Accepted {
			t.Fatalf("commitment: %v %v", r, err)
		}
		return ch
	}
	badSig := node.commitReq(issue(t, m, node), goodTree.Root())
	badSig.Signature[10] ^= 1
	forged := node.commitReq(issue(t, m, node), goodTree.Root())
	if err := stranger.key.Sign(forged); err != nil { // signed by another key
		t.Fatal(err)
	}
	unknown := stranger.commitReq(good, goodTree.Root())
	stale := node.commitReq(&truegpuv1.IssuedChallenge{Id: bytes.Repeat([]byte{9}, 32)}, goodTree.Root())
	reusedCommit := node.commitReq(good, goodTree.Root())
	reusedProof := node.proofReq(good, goodProof) // same (node, nonce) again
	oversized := node.proofReq(committed(), make([]byte, 4096))
	otherProof := node.proofReq(committed(), goodProof) // valid proof of another nonce
	malformed := node.proofReq(committed(), bytes.Repeat([]byte{0xff}, len(goodProof)))
	uncommitted := node.proofReq(issue(t, m, node), goodProof)

	tests := []struct {
		name   string
		submit func() error
		want   error
		reason string
	}{
		{"bad signature", func() error { _, err := m.pipeline.Commit(ctx, badSig); return err }, ErrBadSignature, ReasonBadSignature},
		{"signed by another key", func() error { _, err := m.pipeline.Commit(ctx, forged); return err }, ErrBadSignature, ReasonBadSignature},
		{"unknown node", func() error { _, err := m.pipeline.Commit(ctx, unknown); return err }, ErrUnknownNode, ReasonUnknownNode},
		{"stale nonce", func() error { _, err := m.pipeline.Commit(ctx, stale); return err }, ErrUnknownNonce, ReasonUnknownNonce},
		{"reused nonce: commitment", func() error { _, err := m.pipeline.Commit(ctx, reusedCommit); return err }, ErrNonceReused, ReasonNonceReused},
		{"reused nonce: proof resubmitted", func() error { _, err := m.pipeline.Proof(ctx, reusedProof); return err }, ErrNonceReused, ReasonNonceReused},
		{"oversized proof", func() error { _, err := m.pipeline.Proof(ctx, oversized); return err }, ErrTooLarge, ReasonTooLarge},
		{"proof before commitment", func() error { _, err := m.pipeline.Proof(ctx, uncommitted); return err }, ErrNotCommitted, ReasonNotCommitted},
		{"malformed proof", verdictErr(ctx, m, malformed, string(reputation.ReasonProofMalformed)), nil, ""},
		{"proof of another challenge", verdictErr(ctx, m, otherProof, string(reputation.ReasonProofInvalid)), nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.submit()
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if got := Reason(err); got != tc.reason {
				t.Fatalf("reason %q, want %q", got, tc.reason)
			}
		})
	}

	t.Run("late commitment", func(t *testing.T) {
		ch := issue(t, m, node)
		clock.Advance(time.Duration(ch.CommitDeadlineUnixMs-ch.IssuedAtUnixMs+1) * time.Millisecond)
		r, err := m.pipeline.Commit(ctx, node.commitReq(ch, work(t, p, ch).Root()))
		if err != nil || r.Accepted || r.Reason != string(reputation.ReasonCommitmentLate) {
			t.Fatalf("late commitment: %v %v", r, err)
		}
		cs, err := m.fsm.Challenge(ch.Id)
		if err != nil || cs.Outcome != fsm.OutcomeRejected || cs.Verdict.Reason != string(reputation.ReasonCommitmentLate) {
			t.Fatalf("late challenge state: %v %v", cs, err)
		}
		// The record keeps how late it was, not a latency of zero.
		if got, want := cs.ReceivedAtUnixMs, ch.CommitDeadlineUnixMs+1; got != want {
			t.Fatalf("late commitment recorded as arriving at %d, want %d", got, want)
		}
		v, err := m.pipeline.verdictView(ch.Id, 0)
		if err != nil || v.CommitLatencyMs <= v.ExpectedLatencyMs || v.CommitLatencyMs != uint64(ch.CommitDeadlineUnixMs+1-ch.IssuedAtUnixMs) {
			t.Fatalf("late verdict view: latency %d ms (expected %d ms), %v", v.GetCommitLatencyMs(), v.GetExpectedLatencyMs(), err)
		}
	})
	t.Run("late proof", func(t *testing.T) {
		ch := committed()
		clock.Advance(time.Duration(ch.ProofDeadlineUnixMs-ch.IssuedAtUnixMs+1) * time.Millisecond)
		if _, err := m.pipeline.Proof(ctx, node.proofReq(ch, goodProof)); !errors.Is(err, ErrProofLate) || Reason(err) != ReasonProofLate {
			t.Fatalf("got %v", err)
		}
		// Once the scheduler expires it, the answer stays "late".
		if _, err := m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: clock.Now().UnixMilli(), Body: &truegpuv1.Command_ExpireChallenges{
			ExpireChallenges: &truegpuv1.ExpireChallengesCommand{ChallengeIds: [][]byte{ch.Id}}}}); err != nil {
			t.Fatal(err)
		}
		if cs, _ := m.fsm.Challenge(ch.Id); cs.Outcome != fsm.OutcomeMissed {
			t.Fatalf("outcome %s after expiry", cs.Outcome)
		}
		if _, err := m.pipeline.Proof(ctx, node.proofReq(ch, goodProof)); !errors.Is(err, ErrProofLate) {
			t.Fatalf("after expiry: %v", err)
		}
	})
	t.Run("commitment after expiry", func(t *testing.T) {
		ch := issue(t, m, node)
		clock.Advance(time.Duration(ch.CommitDeadlineUnixMs-ch.IssuedAtUnixMs+1) * time.Millisecond)
		if _, err := m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: clock.Now().UnixMilli(), Body: &truegpuv1.Command_ExpireChallenges{
			ExpireChallenges: &truegpuv1.ExpireChallengesCommand{ChallengeIds: [][]byte{ch.Id}}}}); err != nil {
			t.Fatal(err)
		}
		r, err := m.pipeline.Commit(ctx, node.commitReq(ch, work(t, p, ch).Root()))
		if err != nil || r.Accepted || r.Reason != string(reputation.ReasonCommitmentLate) {
			t.Fatalf("got %v %v", r, err)
		}
	})
	t.Run("registration clock skew", func(t *testing.T) {
		_, err := m.pipeline.Register(ctx, node.registerReq(clock.Now().Add(-time.Hour)))
		if !errors.Is(err, ErrClockSkew) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unknown class", func(t *testing.T) {
		n := newTestNode(3)
		n.dev.ClaimedClass = "B200-imaginary"
		if _, err := m.pipeline.Register(ctx, n.registerReq(clock.Now())); !errors.Is(err, ErrUnknownClass) {
			t.Fatalf("got %v", err)
		}
	})
	rec, err := m.fsm.Node(node.key.Address())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Counters.Accepted != 1 || rec.Counters.Rejected != 3 || rec.Counters.Missed != 2 {
		t.Fatalf("counters %v, want 1 accepted, 3 rejected (malformed, invalid, late), 2 missed", rec.Counters)
	}
}

func verdictErr(ctx context.Context, m *Member, req *truegpuv1.SubmitProofRequest, reason string) func() error {
	return func() error {
		r, err := m.pipeline.Proof(ctx, req)
		if err != nil {
			return err
		}
		if r.Verdict.Accepted || r.Verdict.Reason != reason {
			return errors.New("verdict " + r.Verdict.Reason + ", want " + reason)
		}
		return nil
	}
}

func TestRateLimit(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Now = clock.Now
		cfg.Pipeline.RatePerNode, cfg.Pipeline.Burst = 1, 2
	})
	m := c.leader(5 * time.Second)
	node := newTestNode(1)
	var err error
	for i := range 3 {
		// Each request signed anew: a repeated one is a replay.
		_, err = m.pipeline.Register(context.Background(), node.registerReq(clock.Now().Add(time.Duration(i)*time.Millisecond)))
	}
	if !errors.Is(err, ErrRateLimited) || Reason(err) != ReasonRateLimited {
		t.Fatalf("third request in a burst of 2: %v", err)
	}
	clock.Advance(2 * time.Second)
	if _, err := m.pipeline.Register(context.Background(), node.registerReq(clock.Now())); err != nil {
		t.Fatalf("after refill: %v", err)
	}
}
