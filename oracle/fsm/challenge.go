package fsm

import (
	"bytes"
	"fmt"

	"github.com/truegpu/truegpu/internal/gpuclass"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover/timed"
)

// Challenges from issue to their last deadline: issue, commitment, walk.

// Outcomes of a challenge, as stored and served.
const (
	OutcomePending   = "pending"
	OutcomeCommitted = "committed"
	OutcomeAccepted  = "accepted"
	OutcomeRejected  = "rejected"
	OutcomeMissed    = "missed"
)

func (t *txn) issueChallenges(c *truegpuv1.IssueChallengesCommand) error {
	if len(c.Challenges) == 0 {
		return invalid("issue: no challenges")
	}
	ids := map[string]bool{}
	for i, ch := range c.Challenges {
		if len(ch.Nonce) != 32 || len(ch.Address) != 20 {
			return invalid("issue: challenge %d: nonce must be 32 bytes and address 20", i)
		}
		want := truegpuv1.ChallengeID(ch.Nonce, ch.Address, ch.DeviceIndex, ch.IssuedAtUnixMs)
		if !bytes.Equal(ch.Id, want[:]) {
			return invalid("issue: challenge %d: id does not match (nonce, address, device, issue time)", i)
		}
		if ch.CommitDeadlineUnixMs <= ch.IssuedAtUnixMs || ch.ProofDeadlineUnixMs < ch.CommitDeadlineUnixMs {
			return invalid("issue: challenge %d: deadlines must follow issue", i)
		}
		if tp := ch.Timed; tp != nil {
			if err := (timed.Spec{M: tp.M, N: tp.N, K: tp.K}).Validate(); err != nil {
				return invalid("issue: challenge %d: timed phase: %v", i, err)
			}
		}
		if ch.CommitDeadlineUnixMs <= t.at {
			// Also what keeps a replayed issue of a challenge that
			// retention has deleted from coming back.
			return invalid("issue: challenge %d: commitment deadline passed before the issue was applied", i)
		}
		if ids[string(ch.Id)] {
			return invalid("issue: challenge %s listed twice", truegpuv1.FormatChallengeID(ch.Id))
		}
		ids[string(ch.Id)] = true
		// A nonce seeds the workload; a repeat would let a node answer
		// from a cached result. Nonces are unique among the challenges
		// the state holds (retention prunes both together).
		if ids["nonce:"+string(ch.Nonce)] {
			return invalid("issue: nonce of challenge %s listed twice", truegpuv1.FormatChallengeID(ch.Id))
		}
		ids["nonce:"+string(ch.Nonce)] = true
		if t.f.cache.nonces.mayContain(ch.Nonce) {
			if v, ok, err := t.get(key(prefixNonce, ch.Nonce)); err != nil {
				return err
			} else if ok {
				return fmt.Errorf("%w: challenge %s reuses the nonce of challenge %s", ErrConflict, truegpuv1.FormatChallengeID(ch.Id), truegpuv1.FormatChallengeID(v))
			}
		}
		if t.f.cache.ids.mayContain(ch.Id) {
			if _, ok, err := t.get(key(prefixChallenge, ch.Id)); err != nil {
				return err
			} else if ok {
				return fmt.Errorf("%w: challenge %s already issued", ErrConflict, truegpuv1.FormatChallengeID(ch.Id))
			}
		}
		devs, ok := t.f.cache.devices[[20]byte(ch.Address)]
		if !ok {
			return fmt.Errorf("%w: node %s", ErrNotFound, addrString(ch.Address))
		}
		if ch.DeviceIndex >= devs {
			return invalid("issue: node %s has no device %d", addrString(ch.Address), ch.DeviceIndex)
		}
	}
	for _, ch := range c.Challenges {
		t.putMsg(key(prefixChallenge, ch.Id), &truegpuv1.ChallengeState{Challenge: ch, Outcome: OutcomePending})
		t.pendingOpen = append(t.pendingOpen, openOp{[20]byte(ch.Address), [32]byte(ch.Id), true})
		t.set(key(prefixDeadline, be64(uint64(ch.CommitDeadlineUnixMs)), ch.Id), nil)
		t.set(key(prefixHistory, ch.Address, be64(uint64(max(ch.IssuedAtUnixMs, 0))), ch.Id), nil)
		t.set(key(prefixNonce, ch.Nonce), ch.Id)
		t.pending.Issued = append(t.pending.Issued, ch)
	}
	return nil
}

func (t *txn) recordCommitment(c *truegpuv1.RecordCommitmentCommand) error {
	if len(c.Root) != 32 {
		return invalid("commitment: root must be 32 bytes, got %d", len(c.Root))
	}
	if len(c.SampleSeed) != SampleSeedSize {
		return invalid("commitment: sample seed must be %d bytes, got %d", SampleSeedSize, len(c.SampleSeed))
	}
	cs, err := t.challenge(c.ChallengeId)
	if err != nil {
		return err
	}
	if cs.Outcome != OutcomePending {
		return fmt.Errorf("%w: challenge %s is %s", ErrConflict, truegpuv1.FormatChallengeID(c.ChallengeId), cs.Outcome)
	}
	ch := cs.Challenge
	switch {
	case ch.Timed != nil && len(c.TimedRoot) != 32:
		return invalid("commitment: %s has a timed phase: its root must be 32 bytes, got %d", truegpuv1.FormatChallengeID(c.ChallengeId), len(c.TimedRoot))
	case ch.Timed == nil && len(c.TimedRoot) != 0:
		return invalid("commitment: %s has no timed phase but carries a timed root", truegpuv1.FormatChallengeID(c.ChallengeId))
	case ch.Memory != nil && len(c.TableRoot) != 32:
		return invalid("commitment: %s has a memory phase: its table root must be 32 bytes, got %d", truegpuv1.FormatChallengeID(c.ChallengeId), len(c.TableRoot))
	case ch.Memory == nil && len(c.TableRoot) != 0:
		return invalid("commitment: %s has no memory phase but carries a table root", truegpuv1.FormatChallengeID(c.ChallengeId))
	}
	if c.ReceivedAtUnixMs > ch.CommitDeadlineUnixMs {
		return fmt.Errorf("%w: commitment for %s arrived %d ms after its deadline", ErrLate, truegpuv1.FormatChallengeID(c.ChallengeId), c.ReceivedAtUnixMs-ch.CommitDeadlineUnixMs)
	}
	if err := checkSignedCommitment(t.f.cfg.Recover, c, ch); err != nil {
		return err
	}
	cs.Outcome, cs.Root, cs.ReceivedAtUnixMs, cs.SampleSeed, cs.TimedRoot = OutcomeCommitted, c.Root, c.ReceivedAtUnixMs, c.SampleSeed, c.TimedRoot
	cs.TableRoot = c.TableRoot
	t.putMsg(key(prefixChallenge, c.ChallengeId), cs)
	t.del(key(prefixDeadline, be64(uint64(ch.CommitDeadlineUnixMs)), ch.Id))
	t.set(key(prefixDeadline, be64(uint64(openDeadline(cs))), ch.Id), nil)
	return nil
}

// openDeadline is the deadline an open challenge is waiting for: the
// commitment's while pending; once committed, the walk's while a memory
// phase has no walk root yet, else the proof's.
func openDeadline(cs *truegpuv1.ChallengeState) int64 {
	ch := cs.Challenge
	switch {
	case cs.Outcome == OutcomePending:
		return ch.CommitDeadlineUnixMs
	case ch.Memory != nil && len(cs.WalkRoot) == 0:
		return WalkDeadline(cs)
	default:
		return ch.ProofDeadlineUnixMs
	}
}

// WalkDeadline returns when the walk root of a committed challenge with a
// memory phase must arrive on the leader's clock, unix milliseconds: the
// commitment's recorded arrival plus the phase's walk deadline. Zero when
// the challenge has no memory phase or is not committed.
func WalkDeadline(cs *truegpuv1.ChallengeState) int64 {
	mp := cs.GetChallenge().GetMemory()
	if mp == nil || cs.ReceivedAtUnixMs == 0 || len(cs.Root) == 0 {
		return 0
	}
	return cs.ReceivedAtUnixMs + int64(min(mp.WalkDeadlineMs, 1<<40))
}

// WalkLatency returns a challenge's measured walk latency (commitment
// recorded to walk root recorded) and the claimed class's expected walk
// latency, milliseconds; zeros without a recorded walk.
func WalkLatency(cs *truegpuv1.ChallengeState) (elapsed, expected uint64) {
	mp := cs.GetChallenge().GetMemory()
	if mp == nil || len(cs.WalkRoot) == 0 {
		return 0, 0
	}
	return latency(cs.ReceivedAtUnixMs, cs.WalkReceivedAtUnixMs), gpuclass.TimedExpectedLatency(mp.WalkExpectedMs)
}

func (t *txn) recordWalk(c *truegpuv1.RecordWalkCommand) error {
	if len(c.WalkRoot) != 32 {
		return invalid("walk: root must be 32 bytes, got %d", len(c.WalkRoot))
	}
	if len(c.CheckSeed) != SampleSeedSize {
		return invalid("walk: check seed must be %d bytes, got %d", SampleSeedSize, len(c.CheckSeed))
	}
	cs, err := t.challenge(c.ChallengeId)
	if err != nil {
		return err
	}
	id := truegpuv1.FormatChallengeID(c.ChallengeId)
	switch {
	case cs.Challenge.Memory == nil:
		return invalid("walk: %s has no memory phase", id)
	case cs.Outcome != OutcomeCommitted:
		return fmt.Errorf("%w: challenge %s is %s", ErrConflict, id, cs.Outcome)
	case len(cs.WalkRoot) != 0:
		return fmt.Errorf("%w: challenge %s already has a walk root", ErrConflict, id)
	case c.ReceivedAtUnixMs > WalkDeadline(cs):
		return fmt.Errorf("%w: walk root for %s arrived %d ms after its deadline", ErrLate, id, c.ReceivedAtUnixMs-WalkDeadline(cs))
	}
	if err := checkSignedWalk(t.f.cfg.Recover, c, cs.Challenge); err != nil {
		return err
	}
	t.del(key(prefixDeadline, be64(uint64(openDeadline(cs))), cs.Challenge.Id))
	cs.WalkRoot, cs.WalkReceivedAtUnixMs, cs.CheckSeed = c.WalkRoot, c.ReceivedAtUnixMs, c.CheckSeed
	t.putMsg(key(prefixChallenge, c.ChallengeId), cs)
	t.set(key(prefixDeadline, be64(uint64(openDeadline(cs))), cs.Challenge.Id), nil)
	return nil
}

func latency(from, to int64) uint64 {
	if to <= from {
		return 0
	}
	return uint64(to - from)
}

func (t *txn) closeChallenge(cs *truegpuv1.ChallengeState) {
	ch := cs.Challenge
	t.pendingOpen = append(t.pendingOpen, openOp{[20]byte(ch.Address), [32]byte(ch.Id), false})
	t.del(key(prefixDeadline, be64(uint64(openDeadline(cs))), ch.Id))
}
