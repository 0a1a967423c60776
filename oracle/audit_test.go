package oracle

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// TestAuditRechecksEveryRejection plays a leader that records verdicts of
// its own making, each consistent with the state machine's checks (which
// cannot run a pairing), and shows that a member's audit refuses to sign
// the epoch for each one, while it signs an epoch of honest verdicts.
func TestAuditRechecksEveryRejection(t *testing.T) {
	p, pk, _ := testKeys(t)
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Pipeline.RatePerNode, cfg.Pipeline.Burst = 1000, 1000
	})
	m := c.leader(5 * time.Second)
	ctx := context.Background()
	n := newTestNode(7)
	if _, err := m.pipeline.Register(ctx, n.registerReq(time.Now())); err != nil {
		t.Fatal(err)
	}
	// committed issues a challenge, commits its honest root and returns it
	// with a valid proof under the member's recorded seed.
	committed := func() (*truegpuv1.IssuedChallenge, []byte) {
		ch := issue(t, m, n)
		tree := work(t, p, ch)
		if r, err := m.pipeline.Commit(ctx, n.commitReq(ch, tree.Root())); err != nil || !r.Accepted {
			t.Fatalf("commit: %v %v", r, err)
		}
		return ch, prove(t, m, pk, tree, ch)
	}
	epoch := uint64(1)
	// audited records the verdict as the leader's own command, closes the
	// epoch and runs the member's audit on it.
	audited := func(v *truegpuv1.VerdictRecord) error {
		t.Helper()
		now := time.Now().UnixMilli()
		v.DecidedAtUnixMs = now
		if v.SignedRequest == nil {
			v.SignedRequest = n.signedProof(v.ChallengeId, v.Proof)
		}
		if _, err := m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now, Body: &truegpuv1.Command_RecordVerdicts{
			RecordVerdicts: &truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{v}}}}); err != nil {
			t.Fatalf("verdict: %v", err)
		}
		if _, err := m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now, Body: &truegpuv1.Command_CloseEpoch{CloseEpoch: &truegpuv1.CloseEpochCommand{Epoch: epoch}}}); err != nil {
			t.Fatalf("close epoch %d: %v", epoch, err)
		}
		es, err := m.fsm.Epoch(epoch)
		if err != nil {
			t.Fatal(err)
		}
		epoch++
		return m.audit(es)
	}

	honest, good := committed()
	if err := audited(&truegpuv1.VerdictRecord{ChallengeId: honest.Id, Accepted: true, Proof: good}); err != nil {
		t.Fatalf("audit of an honest acceptance: %v", err)
	}
	other, _ := committed()
	_, wrongProof := committed() // a valid proof, but of another challenge
	if err := audited(&truegpuv1.VerdictRecord{ChallengeId: other.Id, Reason: string(reputation.ReasonProofInvalid), Proof: wrongProof}); err != nil {
		t.Fatalf("audit of an honest invalid-proof rejection: %v", err)
	}

	forged := []struct {
		name    string
		verdict func() *truegpuv1.VerdictRecord
	}{
		{"honest proof rejected as invalid", func() *truegpuv1.VerdictRecord {
			ch, proof := committed()
			return &truegpuv1.VerdictRecord{ChallengeId: ch.Id, Reason: string(reputation.ReasonProofInvalid), Proof: proof}
		}},
		{"undecodable proof labelled invalid", func() *truegpuv1.VerdictRecord {
			ch, _ := committed()
			return &truegpuv1.VerdictRecord{ChallengeId: ch.Id, Reason: string(reputation.ReasonProofInvalid), Proof: []byte{1, 2, 3}}
		}},
		{"honest proof rejected as malformed", func() *truegpuv1.VerdictRecord {
			ch, proof := committed()
			return &truegpuv1.VerdictRecord{ChallengeId: ch.Id, Reason: string(reputation.ReasonProofMalformed), Proof: proof}
		}},
		{"the cluster's own profile rejected as a mismatch", func() *truegpuv1.VerdictRecord {
			ch, proof := committed()
			return &truegpuv1.VerdictRecord{ChallengeId: ch.Id, Reason: string(reputation.ReasonInputMismatch), Proof: proof}
		}},
		{"acceptance of a proof that does not verify", func() *truegpuv1.VerdictRecord {
			ch, _ := committed()
			return &truegpuv1.VerdictRecord{ChallengeId: ch.Id, Accepted: true, Proof: wrongProof}
		}},
	}
	for _, tc := range forged {
		t.Run(tc.name, func(t *testing.T) {
			if err := audited(tc.verdict()); !errors.Is(err, ErrAuditFailed) {
				t.Fatalf("audit: %v, want ErrAuditFailed", err)
			}
		})
	}
	// A reason no verdict may carry never reaches an epoch: the state
	// machine refuses it.
	ch, proof := committed()
	_, err := m.Propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: time.Now().UnixMilli(), Body: &truegpuv1.Command_RecordVerdicts{
		RecordVerdicts: &truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{{ChallengeId: ch.Id, Reason: "LIVENESS_MISSED", Proof: proof}}}}})
	if !errors.Is(err, fsm.ErrInvalidCommand) {
		t.Fatalf("verdict with a reason no verdict may carry: %v, want ErrInvalidCommand", err)
	}
}
