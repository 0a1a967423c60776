package oracle

import (
	"errors"
	"fmt"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
	"github.com/truegpu/truegpu/verifier"
)

// ErrAuditFailed reports an epoch whose verdicts this member does not
// reproduce; it refuses to sign the report.
var ErrAuditFailed = errors.New("oracle: audit disagrees with the epoch's verdicts")

// audit re-derives what the report commits to and re-checks every proof
// behind the epoch's verdicts.
func (m *Member) audit(es *truegpuv1.EpochState) error {
	r := es.Report
	if err := m.auditMode(es); err != nil {
		return err
	}
	var entries []reputation.Entry
	for _, l := range es.Leaves {
		entries = append(entries, reputation.Entry{Address: ethcrypto.Address(l.Address), Score: l.ScoreBp, Status: reputation.Status(l.Status)})
	}
	tree, err := reputation.BuildTree(entries)
	if err != nil {
		return fmt.Errorf("%w: epoch %d leaves: %w", ErrAuditFailed, r.Epoch, err)
	}
	if root := tree.Root(); string(root[:]) != string(r.Root) {
		return fmt.Errorf("%w: epoch %d root does not match its leaves", ErrAuditFailed, r.Epoch)
	}
	digest := reputation.ReportDigest(m.fsm.Domain(), reportOf(r))
	if string(digest[:]) != string(r.Digest) {
		return fmt.Errorf("%w: epoch %d digest does not match the report", ErrAuditFailed, r.Epoch)
	}
	var proofs []*verifier.Proof
	var pubs []verifier.PublicInputs
	for _, id := range es.VerdictChallengeIds {
		cs, err := m.fsm.Challenge(id)
		if err != nil {
			return fmt.Errorf("%w: epoch %d: %w", ErrAuditFailed, r.Epoch, err)
		}
		v := cs.Verdict
		switch {
		case v == nil:
			// Expired without a proof: nothing to re-verify.
		case v.Accepted:
			if cs.Challenge.Timed != nil {
				if err := CheckTimed(cs, v.TimedOpenings); err != nil {
					return fmt.Errorf("%w: accepted verdict for %s: its timed phase does not check: %w", ErrAuditFailed, truegpuv1.FormatChallengeID(id), err)
				}
			}
			if cs.Challenge.Memory != nil {
				if err := CheckMemory(cs, v.WalkOpenings); err != nil {
					return fmt.Errorf("%w: accepted verdict for %s: its memory phase does not check: %w", ErrAuditFailed, truegpuv1.FormatChallengeID(id), err)
				}
			}
			p, err := verifier.DecodeProof(v.Proof)
			if err != nil {
				return fmt.Errorf("%w: accepted verdict for %s has a malformed proof", ErrAuditFailed, truegpuv1.FormatChallengeID(id))
			}
			pub, err := m.publicInputs(cs)
			if err != nil {
				return fmt.Errorf("%w: accepted verdict for %s: %w", ErrAuditFailed, truegpuv1.FormatChallengeID(id), err)
			}
			proofs, pubs = append(proofs, p), append(pubs, pub)
		case v.Reason == string(reputation.ReasonProofMalformed):
			if _, err := verifier.DecodeProof(v.Proof); err == nil {
				return fmt.Errorf("%w: %s was rejected as malformed but decodes", ErrAuditFailed, truegpuv1.FormatChallengeID(id))
			}
		case v.Reason == string(reputation.ReasonProofInvalid):
			p, err := verifier.DecodeProof(v.Proof)
			if err != nil {
				return fmt.Errorf("%w: %s was rejected as invalid but its proof does not decode (malformed)", ErrAuditFailed, truegpuv1.FormatChallengeID(id))
			}
			pub, err := m.publicInputs(cs)
			if err == nil && verifier.Verify(m.cfg.VerifyingKey, p, pub) == nil {
				return fmt.Errorf("%w: %s was rejected but its proof verifies", ErrAuditFailed, truegpuv1.FormatChallengeID(id))
			}
		case v.Reason == string(reputation.ReasonTimedInvalid):
			if cs.Challenge.Timed != nil && CheckTimed(cs, v.TimedOpenings) == nil {
				return fmt.Errorf("%w: %s was rejected for its timed phase, but its openings check", ErrAuditFailed, truegpuv1.FormatChallengeID(id))
			}
		case v.Reason == string(reputation.ReasonWalkInvalid):
			if cs.Challenge.Memory != nil && CheckMemory(cs, v.WalkOpenings) == nil {
				return fmt.Errorf("%w: %s was rejected for its memory phase, but its walk openings check", ErrAuditFailed, truegpuv1.FormatChallengeID(id))
			}
		case v.Reason == string(reputation.ReasonWalkLate):
			if v.WalkReceivedAtUnixMs <= fsm.WalkDeadline(cs) {
				return fmt.Errorf("%w: %s was rejected as a late walk without an arrival after its deadline", ErrAuditFailed, truegpuv1.FormatChallengeID(id))
			}
		case v.Reason == string(reputation.ReasonInputMismatch):
			if cs.Challenge.Profile == m.cfg.Profile.ID() {
				return fmt.Errorf("%w: %s was rejected for its profile, but %s is the profile this cluster verifies", ErrAuditFailed, truegpuv1.FormatChallengeID(id), cs.Challenge.Profile)
			}
		case v.Reason == string(reputation.ReasonCommitmentLate):
			if v.CommitReceivedAtUnixMs <= cs.Challenge.CommitDeadlineUnixMs {
				return fmt.Errorf("%w: %s was rejected as late without an arrival after its deadline", ErrAuditFailed, truegpuv1.FormatChallengeID(id))
			}
		default:
			return fmt.Errorf("%w: %s was rejected for %q, which no verdict may carry", ErrAuditFailed, truegpuv1.FormatChallengeID(id), v.Reason)
		}
	}
	m.metrics.auditBatch.Observe(float64(len(proofs)))
	if len(proofs) > 0 {
		bad, err := verifier.VerifyBatch(m.cfg.VerifyingKey, proofs, pubs)
		if err != nil {
			return fmt.Errorf("%w: batch verification: %w", ErrAuditFailed, err)
		}
		if len(bad) > 0 {
			return fmt.Errorf("%w: %d accepted proofs of epoch %d do not verify", ErrAuditFailed, len(bad), r.Epoch)
		}
	}
	return nil
}

// auditMode checks the report's mode against this member's (Config.Shadow):
// a member signs only reports closed in the mode it is configured for, so a
// report completes only in a mode a majority of members stand for. A
// shadow report must publish every node with the neutral leaf.
func (m *Member) auditMode(es *truegpuv1.EpochState) error {
	r := es.Report
	mode := func(shadow bool) string {
		if shadow {
			return "shadow"
		}
		return "enforcing"
	}
	if r.Shadow != m.cfg.Shadow {
		return fmt.Errorf("%w: epoch %d was closed in %s mode; this member is configured for %s mode", ErrAuditFailed, r.Epoch, mode(r.Shadow), mode(m.cfg.Shadow))
	}
	if !r.Shadow {
		return nil
	}
	for _, l := range es.Leaves {
		if reputation.Status(l.Status) != fsm.ShadowStatus || l.ScoreBp != fsm.ShadowScoreBP {
			return fmt.Errorf("%w: epoch %d was closed in shadow mode but publishes %s with status %s and score %d", ErrAuditFailed, r.Epoch,
				ethcrypto.Address(l.Address), reputation.Status(l.Status), l.ScoreBp)
		}
	}
	return nil
}

// publicInputs are the Groth16 public inputs of a committed challenge, as
// both the pipeline and the auditor verify them: built from the replicated
// record alone (the issued nonce and address, the recorded root and the
// leader's sample seed), never from what a node sends with its proof.
func (m *Member) publicInputs(cs *truegpuv1.ChallengeState) (verifier.PublicInputs, error) {
	ch := cs.Challenge
	if ch.Profile != m.cfg.Profile.ID() || len(cs.Root) != 32 || len(cs.SampleSeed) != verifier.SampleSeedSize {
		return verifier.PublicInputs{}, fmt.Errorf("profile %s, root or sample seed not checkable here", ch.Profile)
	}
	return verifier.NewPublicInputs(m.cfg.VerifyingKey.Digest, [32]byte(ch.Nonce), [20]byte(ch.Address), [32]byte(cs.Root), [verifier.SampleSeedSize]byte(cs.SampleSeed))
}

func reportOf(r *truegpuv1.EpochReport) reputation.Report {
	return reputation.Report{ConfigDigest: [32]byte(r.ConfigDigest), Epoch: r.Epoch, Round: r.Round, Timestamp: r.Timestamp, Root: [32]byte(r.Root), Count: r.Count,
		ValidFrom: r.ValidFrom, ExpiresAt: r.ExpiresAt}
}
