package fsm

import (
	"fmt"
	"slices"

	"github.com/truegpu/truegpu/internal/gpuclass"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// Deciding challenges: verdicts (acceptances and rejections) and expiries.

// VerdictReasons are the rejection reasons a verdict may carry, each with
// the state it needs (docs/ORACLE.md). Expiries record PROOF_MISSING and
// LIVENESS_MISSED themselves; no verdict carries those.
var VerdictReasons = []reputation.Reason{
	reputation.ReasonCommitmentLate, reputation.ReasonProofMalformed, reputation.ReasonProofInvalid, reputation.ReasonInputMismatch,
	reputation.ReasonTimedInvalid, reputation.ReasonWalkLate, reputation.ReasonWalkInvalid,
}

// checkVerdict checks one verdict against its challenge's state: an
// acceptance needs a commitment and proof bytes; a rejection names one of
// VerdictReasons and is consistent with it. A late commitment's rejection
// applies to a pending challenge and carries an arrival after the
// deadline; a proof's rejection applies to a committed challenge and
// carries the proof it rejects (which may be empty only when malformed).
func checkVerdict(recover recoverFunc, v *truegpuv1.VerdictRecord, cs *truegpuv1.ChallengeState) error {
	id := truegpuv1.FormatChallengeID(v.ChallengeId)
	if cs.Outcome != OutcomePending && cs.Outcome != OutcomeCommitted {
		return fmt.Errorf("%w: challenge %s already %s", ErrConflict, id, cs.Outcome)
	}
	if v.Accepted {
		switch {
		case cs.Outcome != OutcomeCommitted:
			return fmt.Errorf("%w: challenge %s accepted without a commitment", ErrConflict, id)
		case v.Reason != "" || v.CommitReceivedAtUnixMs != 0:
			return invalid("verdicts: acceptance of %s carries a reason or an arrival", id)
		case len(v.Proof) == 0:
			return invalid("verdicts: acceptance of %s carries no proof", id)
		case cs.Challenge.Timed != nil && len(v.TimedOpenings) == 0:
			return invalid("verdicts: acceptance of %s carries no openings of its timed phase", id)
		case cs.Challenge.Memory != nil && (len(cs.WalkRoot) == 0 || len(v.WalkOpenings) == 0):
			return invalid("verdicts: acceptance of %s without a recorded walk and its openings", id)
		case v.WalkReceivedAtUnixMs != 0:
			return invalid("verdicts: acceptance of %s carries a walk arrival", id)
		}
		return checkSignedVerdict(recover, v, cs.Challenge, false)
	}
	late := v.Reason == string(reputation.ReasonCommitmentLate)
	walkLate := v.Reason == string(reputation.ReasonWalkLate)
	switch {
	case !slices.Contains(VerdictReasons, reputation.Reason(v.Reason)):
		return invalid("verdicts: %q is not a verdict's rejection reason (%s)", v.Reason, id)
	case walkLate && (cs.Outcome != OutcomeCommitted || cs.Challenge.Memory == nil || len(cs.WalkRoot) != 0):
		return fmt.Errorf("%w: challenge %s rejected as a late walk but is %s without an open memory phase", ErrConflict, id, cs.Outcome)
	case walkLate && v.WalkReceivedAtUnixMs <= WalkDeadline(cs):
		return invalid("verdicts: %s rejected as a late walk without an arrival after its deadline", id)
	case walkLate && (len(v.Proof) != 0 || len(v.TimedOpenings) != 0 || len(v.WalkOpenings) != 0 || v.CommitReceivedAtUnixMs != 0):
		return invalid("verdicts: late walk of %s rejected with proof bytes", id)
	case walkLate:
		return checkSignedWalkLate(recover, v, cs.Challenge)
	case v.WalkReceivedAtUnixMs != 0:
		return invalid("verdicts: only a late walk's rejection carries its arrival (%s)", id)
	case late && cs.Outcome != OutcomePending:
		return fmt.Errorf("%w: challenge %s rejected as late but already committed", ErrConflict, id)
	case late && v.CommitReceivedAtUnixMs <= cs.Challenge.CommitDeadlineUnixMs:
		return invalid("verdicts: %s rejected as late without an arrival after its deadline", id)
	case late && (len(v.Proof) != 0 || len(v.TimedOpenings) != 0 || len(v.WalkOpenings) != 0):
		return invalid("verdicts: late commitment of %s rejected with proof bytes", id)
	case late:
		return checkSignedVerdict(recover, v, cs.Challenge, true)
	case v.CommitReceivedAtUnixMs != 0:
		return invalid("verdicts: only a late commitment's rejection carries its arrival (%s)", id)
	case cs.Outcome != OutcomeCommitted:
		return fmt.Errorf("%w: challenge %s rejected as %s without a commitment", ErrConflict, id, v.Reason)
	case len(v.Proof) == 0 && v.Reason != string(reputation.ReasonProofMalformed) && v.Reason != string(reputation.ReasonTimedInvalid) &&
		v.Reason != string(reputation.ReasonWalkInvalid):
		return invalid("verdicts: %s rejected as %s without the proof it rejects", id, v.Reason)
	case v.Reason == string(reputation.ReasonTimedInvalid) && cs.Challenge.Timed == nil:
		return invalid("verdicts: %s rejected as %s but has no timed phase", id, v.Reason)
	case v.Reason == string(reputation.ReasonWalkInvalid) && (cs.Challenge.Memory == nil || len(cs.WalkRoot) == 0):
		return invalid("verdicts: %s rejected as %s but has no recorded walk", id, v.Reason)
	}
	return checkSignedVerdict(recover, v, cs.Challenge, false)
}

func (t *txn) recordVerdicts(c *truegpuv1.RecordVerdictsCommand) error {
	if len(c.Verdicts) == 0 {
		return invalid("verdicts: none")
	}
	meta, err := t.meta()
	if err != nil {
		return err
	}
	type item struct {
		v  *truegpuv1.VerdictRecord
		cs *truegpuv1.ChallengeState
	}
	items := make([]item, 0, len(c.Verdicts))
	seen := map[string]bool{}
	for _, v := range c.Verdicts {
		if seen[string(v.ChallengeId)] {
			return invalid("verdicts: challenge %s listed twice", truegpuv1.FormatChallengeID(v.ChallengeId))
		}
		seen[string(v.ChallengeId)] = true
		cs, err := t.challenge(v.ChallengeId)
		if err != nil {
			return err
		}
		fillVerdictFromSigned(v)
		if err := checkVerdict(t.f.cfg.Recover, v, cs); err != nil {
			return err
		}
		items = append(items, item{v, cs})
	}
	nodes := map[string]*truegpuv1.NodeRecord{}
	var order []string
	for i, it := range items {
		ch := it.cs.Challenge
		rec, ok := nodes[string(ch.Address)]
		if !ok {
			if rec, err = t.node(ch.Address); err != nil {
				return err
			}
			nodes[string(ch.Address)] = rec
			order = append(order, string(ch.Address))
		}
		t.closeChallenge(it.cs)
		lat := latency(ch.IssuedAtUnixMs, it.cs.ReceivedAtUnixMs)
		dev := ""
		if int(ch.DeviceIndex) < len(rec.Devices) {
			dev = rec.Devices[ch.DeviceIndex].GetFingerprint().GetUuid()
		}
		ev := reputation.Event{Challenge: truegpuv1.FormatChallengeID(ch.Id), Verdict: fmt.Sprintf("%d/%d", t.index, i), Device: dev}
		if it.v.Accepted {
			it.cs.Outcome = OutcomeAccepted
			rec.Counters.Accepted++
			ev.Kind, ev.ElapsedMs, ev.ExpectedMs = reputation.EventVerdictAccepted, lat, max(ch.ExpectedLatencyMs, 1)
			if wl, we := WalkLatency(it.cs); we > 0 && wl*ev.ExpectedMs > ev.ElapsedMs*we {
				// The timing evidence is the slower phase relative to
				// its expectation.
				ev.ElapsedMs, ev.ExpectedMs = wl, we
			}
		} else {
			it.cs.Outcome = OutcomeRejected
			rec.Counters.Rejected++
			if it.v.CommitReceivedAtUnixMs != 0 {
				it.cs.ReceivedAtUnixMs = it.v.CommitReceivedAtUnixMs
			}
			ev.Kind, ev.Reason = reputation.EventVerdictRejected, reputation.Reason(it.v.Reason)
			switch {
			case it.v.CommitReceivedAtUnixMs != 0:
				// How late, for the reputation model (absorbLate).
				ev.ElapsedMs, ev.ExpectedMs = latency(ch.IssuedAtUnixMs, it.v.CommitReceivedAtUnixMs), ch.ExpectedLatencyMs
				ev.DeadlineMs = latency(ch.IssuedAtUnixMs, ch.CommitDeadlineUnixMs)
			case it.v.WalkReceivedAtUnixMs != 0 && ch.Memory != nil:
				ev.ElapsedMs = latency(it.cs.ReceivedAtUnixMs, it.v.WalkReceivedAtUnixMs)
				ev.ExpectedMs, ev.DeadlineMs = gpuclass.TimedExpectedLatency(ch.Memory.WalkExpectedMs), ch.Memory.WalkDeadlineMs
			}
		}
		if err := t.event(rec, ev); err != nil {
			return err
		}
		// The node's signed request has been checked; the state keeps
		// what it established (the proof and openings), not the request.
		it.v.SignedRequest = nil
		it.cs.Verdict, it.cs.VerdictIndex = it.v, t.index
		t.recordDecided(it.cs, meta.CurrentEpoch)
		meta.TotalVerdicts++
	}
	for _, a := range order {
		t.putMsg(key(prefixNode, []byte(a)), nodes[a])
	}
	t.putMsg(keyMeta, meta)
	return nil
}

// recordDecided stores a challenge decided (accepted, rejected or missed)
// in the open epoch and lists it with the epoch's verdicts: the list the
// auditors re-check and retention later prunes.
func (t *txn) recordDecided(cs *truegpuv1.ChallengeState, epoch uint64) {
	cs.Epoch = epoch
	t.putMsg(key(prefixChallenge, cs.Challenge.Id), cs)
	t.set(key(prefixEpochVerd, be64(epoch), be64(t.index), be32(t.seq)), cs.Challenge.Id)
	t.seq++
}

func (t *txn) expireChallenges(c *truegpuv1.ExpireChallengesCommand) error {
	meta, err := t.meta()
	if err != nil {
		return err
	}
	nodes := map[string]*truegpuv1.NodeRecord{}
	var order []string
	for _, id := range c.ChallengeIds {
		cs, err := t.challenge(id)
		if err != nil {
			return err
		}
		ch := cs.Challenge
		due := (cs.Outcome == OutcomePending || cs.Outcome == OutcomeCommitted) && t.at > openDeadline(cs)
		if !due {
			continue // decided meanwhile, or not yet due: nothing to do
		}
		rec, ok := nodes[string(ch.Address)]
		if !ok {
			if rec, err = t.node(ch.Address); err != nil {
				return err
			}
			nodes[string(ch.Address)] = rec
			order = append(order, string(ch.Address))
		}
		committed := cs.Outcome == OutcomeCommitted
		t.closeChallenge(cs)
		cs.Outcome = OutcomeMissed
		rec.Counters.Missed++
		dev := ""
		if int(ch.DeviceIndex) < len(rec.Devices) {
			dev = rec.Devices[ch.DeviceIndex].GetFingerprint().GetUuid()
		}
		ev := reputation.Event{Kind: reputation.EventChallengeMissed, Challenge: truegpuv1.FormatChallengeID(ch.Id), Device: dev}
		switch {
		case committed && ch.Memory != nil && len(cs.WalkRoot) == 0:
			// Committed but never walked: the walk deadline is sized from
			// the claimed class's memory, so this is what a device with
			// less memory or bandwidth than claimed looks like when it
			// gives up (a capacity failure, like a late walk).
			ev.Kind, ev.Reason = reputation.EventVerdictRejected, reputation.ReasonWalkLate
		case committed:
			// Committed but never proven: the node could not open its own
			// commitment. That is a correctness failure, not a liveness one
			// (see reputation.ReasonProofMissing).
			ev.Kind, ev.Reason = reputation.EventVerdictRejected, reputation.ReasonProofMissing
		}
		if err := t.event(rec, ev); err != nil {
			return err
		}
		t.recordDecided(cs, meta.CurrentEpoch)
	}
	for _, a := range order {
		t.putMsg(key(prefixNode, []byte(a)), nodes[a])
	}
	return nil
}
