package oracle

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
	"github.com/truegpu/truegpu/verifier"
	"google.golang.org/protobuf/proto"
)

// signedChallenge runs the first checks of a submission about a
// challenge: the signature, the node's registration and rate limit, and
// that the challenge it names is the node's. It returns the challenge.
func (p *pipeline) signedChallenge(req interface {
	proto.Message
	GetAddress() string
	GetSignature() []byte
	GetChallengeId() string
}) (*truegpuv1.ChallengeState, error) {
	addr, err := checkSigned(p.m.recovered.Recover, req, req)
	if err != nil {
		return nil, err
	}
	if err := p.admit(addr); err != nil {
		return nil, err
	}
	return p.openChallenge(req.GetChallengeId(), addr)
}

// openChallenge loads the challenge a submission names and checks that it
// belongs to the node.
func (p *pipeline) openChallenge(idStr string, addr ethcrypto.Address) (*truegpuv1.ChallengeState, error) {
	id, err := truegpuv1.ParseChallengeID(idStr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	cs, err := p.state.Challenge(id)
	if errors.Is(err, fsm.ErrNotFound) || (err == nil && string(cs.Challenge.Address) != string(addr[:])) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownNonce, idStr)
	}
	return cs, err
}

// Commit records a commitment, stamped with the leader's clock at arrival,
// together with a sample seed the leader draws only now: the cells the
// proof must open derive from (root, seed, nonce, node), so the node learns
// them only after its root is on record and cannot grind roots for samples
// that fall on cells it computed. Sending the same root again (a retry
// after a lost answer) returns the recorded seed; another root is refused.
func (p *pipeline) Commit(ctx context.Context, req *truegpuv1.SubmitCommitmentRequest) (*truegpuv1.SubmitCommitmentResponse, error) {
	arrival := p.m.cfg.Now().UnixMilli()
	if len(req.Root) != 32 {
		return nil, fmt.Errorf("%w: root must be 32 bytes, got %d", ErrInvalidRequest, len(req.Root))
	}
	if len(req.ChallengeId) > 66 {
		return nil, fmt.Errorf("%w: challenge id", ErrTooLarge)
	}
	cs, err := p.signedChallenge(req)
	if err != nil {
		return nil, err
	}
	ch := cs.Challenge
	switch {
	case ch.Timed != nil && len(req.TimedRoot) != 32:
		return nil, fmt.Errorf("%w: the challenge has a timed phase: timed_root must be 32 bytes, got %d", ErrInvalidRequest, len(req.TimedRoot))
	case ch.Timed == nil && len(req.TimedRoot) != 0:
		return nil, fmt.Errorf("%w: the challenge has no timed phase: timed_root must be empty", ErrInvalidRequest)
	case ch.Memory != nil && len(req.TableRoot) != 32:
		return nil, fmt.Errorf("%w: the challenge has a memory phase: table_root must be 32 bytes, got %d", ErrInvalidRequest, len(req.TableRoot))
	case ch.Memory == nil && len(req.TableRoot) != 0:
		return nil, fmt.Errorf("%w: the challenge has no memory phase: table_root must be empty", ErrInvalidRequest)
	}
	signed, err := signedBytes(req)
	if err != nil {
		return nil, err
	}
	resp := &truegpuv1.SubmitCommitmentResponse{ReceivedAtUnixMs: arrival, ProofDeadlineUnixMs: ch.ProofDeadlineUnixMs}
	if cs.Outcome == fsm.OutcomeMissed {
		// Expired before the commitment arrived: late, already counted.
		resp.Reason = string(reputation.ReasonCommitmentLate)
		return resp, nil
	}
	if cs.Outcome != fsm.OutcomePending {
		return p.recommitted(cs, req)
	}
	if arrival > ch.CommitDeadlineUnixMs {
		late := &truegpuv1.VerdictRecord{ChallengeId: ch.Id, Reason: string(reputation.ReasonCommitmentLate), CommitReceivedAtUnixMs: arrival,
			Detail: fmt.Sprintf("arrived %d ms after the deadline", arrival-ch.CommitDeadlineUnixMs), SignedRequest: signed}
		if _, err := p.decideRecord(ctx, late); err != nil && !errors.Is(err, fsm.ErrConflict) {
			return nil, err
		}
		resp.Reason = string(reputation.ReasonCommitmentLate)
		return resp, nil
	}
	seed := p.drawSeed()
	_, err = p.proposer.propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: arrival, Body: &truegpuv1.Command_RecordCommitment{
		RecordCommitment: &truegpuv1.RecordCommitmentCommand{ChallengeId: ch.Id, Root: req.Root, ReceivedAtUnixMs: arrival, SampleSeed: seed[:],
			TimedRoot: req.TimedRoot, TableRoot: req.TableRoot, SignedRequest: signed}}})
	switch {
	case errors.Is(err, fsm.ErrConflict):
		// Another copy of the request won the race: answer as it was.
		if cs, rerr := p.state.Challenge(ch.Id); rerr == nil {
			return p.recommitted(cs, req)
		}
		return nil, fmt.Errorf("%w: challenge %s", ErrNonceReused, req.ChallengeId)
	case errors.Is(err, fsm.ErrLate):
		resp.Reason = string(reputation.ReasonCommitmentLate)
		return resp, nil
	case err != nil:
		return nil, err
	}
	resp.Accepted, resp.SampleSeed = true, seed[:]
	if ch.Memory != nil {
		resp.WalkDeadlineUnixMs = arrival + int64(ch.Memory.WalkDeadlineMs)
	}
	return resp, nil
}

// recommitted answers a commitment for a challenge that already has one:
// the same root gets the recorded answer and seed again, anything else is
// refused.
func (p *pipeline) recommitted(cs *truegpuv1.ChallengeState, req *truegpuv1.SubmitCommitmentRequest) (*truegpuv1.SubmitCommitmentResponse, error) {
	if cs.Outcome == fsm.OutcomeCommitted && bytes.Equal(cs.Root, req.Root) && bytes.Equal(cs.TimedRoot, req.TimedRoot) && bytes.Equal(cs.TableRoot, req.TableRoot) {
		return &truegpuv1.SubmitCommitmentResponse{Accepted: true, ReceivedAtUnixMs: cs.ReceivedAtUnixMs,
			ProofDeadlineUnixMs: cs.Challenge.ProofDeadlineUnixMs, SampleSeed: cs.SampleSeed, WalkDeadlineUnixMs: fsm.WalkDeadline(cs)}, nil
	}
	return nil, fmt.Errorf("%w: challenge %s is %s", ErrNonceReused, req.ChallengeId, cs.Outcome)
}

// Walk records the walk root of a committed challenge's memory phase,
// stamped with the leader's clock at arrival, together with a check seed
// the leader draws only now: the walk transitions the proof must open
// derive from (walk root, check seed), so the node learns them only after
// its walk is on record. A walk root after the walk deadline (the
// commitment's recorded arrival plus the phase's walk deadline) is a
// WALK_LATE rejection. Sending the same walk root again returns the
// recorded seed; another root is refused.
func (p *pipeline) Walk(ctx context.Context, req *truegpuv1.SubmitWalkRequest) (*truegpuv1.SubmitWalkResponse, error) {
	arrival := p.m.cfg.Now().UnixMilli()
	if len(req.WalkRoot) != 32 {
		return nil, fmt.Errorf("%w: walk_root must be 32 bytes, got %d", ErrInvalidRequest, len(req.WalkRoot))
	}
	if len(req.ChallengeId) > 66 {
		return nil, fmt.Errorf("%w: challenge id", ErrTooLarge)
	}
	cs, err := p.signedChallenge(req)
	if err != nil {
		return nil, err
	}
	ch := cs.Challenge
	if ch.Memory == nil {
		return nil, fmt.Errorf("%w: challenge %s has no memory phase", ErrInvalidRequest, req.ChallengeId)
	}
	signed, err := signedBytes(req)
	if err != nil {
		return nil, err
	}
	resp := &truegpuv1.SubmitWalkResponse{ReceivedAtUnixMs: arrival, ProofDeadlineUnixMs: ch.ProofDeadlineUnixMs}
	switch {
	case cs.Outcome == fsm.OutcomePending:
		return nil, fmt.Errorf("%w: %s: commit before the walk", ErrNotCommitted, req.ChallengeId)
	case cs.Outcome == fsm.OutcomeCommitted && len(cs.WalkRoot) != 0:
		if bytes.Equal(cs.WalkRoot, req.WalkRoot) {
			resp.Accepted, resp.ReceivedAtUnixMs, resp.CheckSeed = true, cs.WalkReceivedAtUnixMs, cs.CheckSeed
			return resp, nil
		}
		return nil, fmt.Errorf("%w: challenge %s already has another walk root", ErrNonceReused, req.ChallengeId)
	case cs.Outcome == fsm.OutcomeRejected && cs.GetVerdict().GetReason() == string(reputation.ReasonWalkLate), cs.Outcome == fsm.OutcomeMissed:
		resp.Reason = string(reputation.ReasonWalkLate)
		return resp, nil
	case cs.Outcome != fsm.OutcomeCommitted:
		return nil, fmt.Errorf("%w: challenge %s is %s", ErrNonceReused, req.ChallengeId, cs.Outcome)
	}
	if dl := fsm.WalkDeadline(cs); arrival > dl {
		late := &truegpuv1.VerdictRecord{ChallengeId: ch.Id, Reason: string(reputation.ReasonWalkLate), WalkReceivedAtUnixMs: arrival,
			Detail: fmt.Sprintf("walk root arrived %d ms after the deadline (%d ms after the commitment; allowed %d ms)", arrival-dl, arrival-cs.ReceivedAtUnixMs, ch.Memory.WalkDeadlineMs), SignedRequest: signed}
		if _, err := p.decideRecord(ctx, late); err != nil && !errors.Is(err, fsm.ErrConflict) {
			return nil, err
		}
		resp.Reason = string(reputation.ReasonWalkLate)
		return resp, nil
	}
	seed := p.drawSeed()
	_, err = p.proposer.propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: arrival, Body: &truegpuv1.Command_RecordWalk{
		RecordWalk: &truegpuv1.RecordWalkCommand{ChallengeId: ch.Id, WalkRoot: req.WalkRoot, ReceivedAtUnixMs: arrival, CheckSeed: seed[:], SignedRequest: signed}}})
	switch {
	case errors.Is(err, fsm.ErrConflict):
		if cs, rerr := p.state.Challenge(ch.Id); rerr == nil && bytes.Equal(cs.WalkRoot, req.WalkRoot) {
			resp.Accepted, resp.ReceivedAtUnixMs, resp.CheckSeed = true, cs.WalkReceivedAtUnixMs, cs.CheckSeed
			return resp, nil
		}
		return nil, fmt.Errorf("%w: challenge %s", ErrNonceReused, req.ChallengeId)
	case errors.Is(err, fsm.ErrLate):
		resp.Reason = string(reputation.ReasonWalkLate)
		return resp, nil
	case err != nil:
		return nil, err
	}
	resp.Accepted, resp.CheckSeed = true, seed[:]
	return resp, nil
}

// drawSeed returns a fresh sample seed from the leader's operating-system
// random source. Like nonces, it reaches the state only inside a command.
func drawSeed() [fsm.SampleSeedSize]byte {
	var s [fsm.SampleSeedSize]byte
	rand.Read(s[:])
	return s
}

// decideRecord stamps a verdict with the leader's clock and proposes it.
func (p *pipeline) decideRecord(ctx context.Context, v *truegpuv1.VerdictRecord) (*truegpuv1.Verdict, error) {
	now := p.m.cfg.Now().UnixMilli()
	v.DecidedAtUnixMs = now
	idx, err := p.proposer.propose(ctx, &truegpuv1.Command{LeaderTimeUnixMs: now, Body: &truegpuv1.Command_RecordVerdicts{
		RecordVerdicts: &truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{v}}}})
	if err != nil {
		return nil, err
	}
	return p.verdictView(v.ChallengeId, idx)
}

// Proof checks a proof submission and returns the verdict.
func (p *pipeline) Proof(ctx context.Context, req *truegpuv1.SubmitProofRequest) (*truegpuv1.SubmitProofResponse, error) {
	now := p.m.cfg.Now().UnixMilli()
	if len(req.Proof) > maxProofBytes*2 || len(req.ChallengeId) > 66 {
		return nil, fmt.Errorf("%w: proof of %d bytes (a proof is %d)", ErrTooLarge, len(req.Proof), maxProofBytes)
	}
	if len(req.TimedOpenings) > maxTimedOpeningsBytes {
		return nil, fmt.Errorf("%w: timed openings of %d bytes (at most %d)", ErrTooLarge, len(req.TimedOpenings), maxTimedOpeningsBytes)
	}
	if len(req.WalkOpenings) > maxWalkOpeningsBytes {
		return nil, fmt.Errorf("%w: walk openings of %d bytes (at most %d)", ErrTooLarge, len(req.WalkOpenings), maxWalkOpeningsBytes)
	}
	cs, err := p.signedChallenge(req)
	if err != nil {
		return nil, err
	}
	switch cs.Outcome {
	case fsm.OutcomePending:
		return nil, fmt.Errorf("%w: %s", ErrNotCommitted, req.ChallengeId)
	case fsm.OutcomeCommitted:
	case fsm.OutcomeMissed:
		return nil, fmt.Errorf("%w: challenge %s expired without a proof", ErrProofLate, req.ChallengeId)
	default:
		return nil, fmt.Errorf("%w: challenge %s is already %s", ErrNonceReused, req.ChallengeId, cs.Outcome)
	}
	ch := cs.Challenge
	if now > ch.ProofDeadlineUnixMs {
		return nil, fmt.Errorf("%w: %d ms late", ErrProofLate, now-ch.ProofDeadlineUnixMs)
	}
	if ch.Memory != nil && len(cs.WalkRoot) == 0 {
		return nil, fmt.Errorf("%w: %s: the memory phase's walk root is not recorded; submit the walk first", ErrNotCommitted, req.ChallengeId)
	}
	if ch.Memory == nil && len(req.WalkOpenings) != 0 {
		return nil, fmt.Errorf("%w: the challenge has no memory phase: walk_openings must be empty", ErrInvalidRequest)
	}
	key := string(ch.Id)
	p.mu.Lock()
	if p.inflight[key] {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: a proof for %s is being verified", ErrNonceReused, req.ChallengeId)
	}
	p.inflight[key] = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.inflight, key)
		p.mu.Unlock()
	}()
	var v *truegpuv1.Verdict
	proof, derr := verifier.DecodeProof(req.Proof)
	signed, err := signedBytes(req)
	if err != nil {
		return nil, err
	}
	reject := func(reason, detail string) (*truegpuv1.Verdict, error) {
		// The proof and openings travel inside the signed request only;
		// Apply copies them out after checking the signature.
		return p.decideRecord(ctx, &truegpuv1.VerdictRecord{ChallengeId: ch.Id, Reason: reason, Detail: detail, SignedRequest: signed})
	}
	if ch.Timed == nil && len(req.TimedOpenings) != 0 {
		return nil, fmt.Errorf("%w: the challenge has no timed phase: timed_openings must be empty", ErrInvalidRequest)
	}
	if reason, detail := nativeChecks(cs, req); reason != "" {
		v, err = reject(reason, detail)
	} else {
		v, err = p.checkProof(ctx, cs, proof, derr, req, signed)
	}
	if errors.Is(err, fsm.ErrConflict) {
		return nil, fmt.Errorf("%w: %s", ErrNonceReused, req.ChallengeId)
	}
	if err != nil {
		return nil, err
	}
	return &truegpuv1.SubmitProofResponse{Verdict: v}, nil
}

// checkProof verifies the SNARK proof of a committed challenge and
// records the verdict.
func (p *pipeline) checkProof(ctx context.Context, cs *truegpuv1.ChallengeState, proof *verifier.Proof, derr error, req *truegpuv1.SubmitProofRequest, signed []byte) (*truegpuv1.Verdict, error) {
	ch := cs.Challenge
	decide := func(accepted bool, reason, detail string) (*truegpuv1.Verdict, error) {
		return p.decideRecord(ctx, &truegpuv1.VerdictRecord{ChallengeId: ch.Id, Accepted: accepted, Reason: reason, Detail: detail, SignedRequest: signed})
	}
	var v *truegpuv1.Verdict
	var err error
	switch {
	case derr != nil:
		v, err = decide(false, string(reputation.ReasonProofMalformed), "proof does not decode")
	case ch.Profile != p.m.cfg.Profile.ID():
		v, err = decide(false, string(reputation.ReasonInputMismatch), "challenge profile has no verifying key here")
	default:
		pub, perr := p.m.publicInputs(cs)
		if perr != nil {
			v, err = decide(false, string(reputation.ReasonProofInvalid), "committed root is not a field element")
			break
		}
		job := verifyJob{proof: proof, pub: pub, ok: make(chan bool, 1)}
		select {
		case p.jobs <- job:
		default:
			return nil, fmt.Errorf("%w: %d proofs waiting for verification", ErrOverloaded, len(p.jobs))
		}
		var ok bool
		select {
		case ok = <-job.ok:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if ok {
			v, err = decide(true, "", "")
		} else {
			v, err = decide(false, string(reputation.ReasonProofInvalid), "proof does not verify")
		}
	}
	return v, err
}

// signedBytes is the node's signed request as the replicated commands
// carry it (fsm checks the signature again in Apply).
func signedBytes(req proto.Message) ([]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: the request cannot be encoded", ErrInvalidRequest)
	}
	return b, nil
}
