package oracle

import (
	"errors"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover/memwalk"
	"github.com/truegpu/truegpu/prover/timed"
	"github.com/truegpu/truegpu/reputation"
)

// maxTimedOpeningsBytes bounds a timed openings blob: the header and
// Samples openings at the deepest tree (prover/timed's encoding).
const maxTimedOpeningsBytes = 4 + 1 + 32 + 2 + timed.Samples*(8+timed.LeafCells+1+timed.MaxDepth*32)

// maxWalkOpeningsBytes bounds a walk openings blob: the header and Checks
// checks, each a block with its path, a presence flag and two state
// leaves with theirs, at the deepest trees (prover/memwalk's encoding).
const maxWalkOpeningsBytes = 4 + 1 + 32 + 32 + 2 + memwalk.Checks*(memwalk.BlockBytes+1+memwalk.MaxDepth*32+1+2*(64+1+memwalk.MaxDepth*32))

// nativeChecks checks a proof submission's openings natively, each once
// and in order: the timed phase's, then the memory phase's walk. It
// returns the rejection of the first that fails, or "" when all pass.
func nativeChecks(cs *truegpuv1.ChallengeState, req *truegpuv1.SubmitProofRequest) (reason, detail string) {
	ch := cs.Challenge
	if ch.Timed != nil {
		if len(req.TimedOpenings) == 0 {
			return string(reputation.ReasonTimedInvalid), "the challenge has a timed phase and the proof carries no openings of it"
		}
		if err := CheckTimed(cs, req.TimedOpenings); err != nil {
			return string(reputation.ReasonTimedInvalid), err.Error()
		}
	}
	if ch.Memory != nil {
		if len(req.WalkOpenings) == 0 {
			return string(reputation.ReasonWalkInvalid), "the challenge has a memory phase and the proof carries no openings of its walk"
		}
		if err := CheckMemory(cs, req.WalkOpenings); err != nil {
			return string(reputation.ReasonWalkInvalid), err.Error()
		}
	}
	return "", ""
}

// CheckTimed checks the openings of a committed challenge's timed phase
// against its recorded timed root and sample seed (prover/timed.Verify).
// The error says what failed, in words a node operator can act on.
func CheckTimed(cs *truegpuv1.ChallengeState, openings []byte) error {
	tp := cs.Challenge.Timed
	if tp == nil {
		return errors.New("the challenge has no timed phase")
	}
	if len(cs.TimedRoot) != 32 || len(cs.SampleSeed) != timed.SeedSize || len(cs.Challenge.Nonce) != 32 {
		return errors.New("the challenge has no recorded timed commitment")
	}
	return timed.Verify(timed.Spec{M: tp.M, N: tp.N, K: tp.K}, [32]byte(cs.Challenge.Nonce), [32]byte(cs.TimedRoot), [timed.SeedSize]byte(cs.SampleSeed), openings)
}

// CheckMemory checks the walk openings of a challenge's memory phase
// against its recorded table root, walk seed (the sample seed), walk root
// and check seed (prover/memwalk.Verify). The error says what failed, in
// words a node operator can act on.
func CheckMemory(cs *truegpuv1.ChallengeState, openings []byte) error {
	mp := cs.Challenge.Memory
	if mp == nil {
		return errors.New("the challenge has no memory phase")
	}
	if len(cs.TableRoot) != 32 || len(cs.WalkRoot) != 32 || len(cs.SampleSeed) != memwalk.SeedSize ||
		len(cs.CheckSeed) != memwalk.SeedSize || len(cs.Challenge.Nonce) != 32 {
		return errors.New("the challenge has no recorded walk")
	}
	return memwalk.Verify(memwalk.Spec{Blocks: mp.Blocks, Lanes: mp.Lanes, Steps: mp.Steps}, [32]byte(cs.Challenge.Nonce), [32]byte(cs.TableRoot),
		[memwalk.SeedSize]byte(cs.SampleSeed), [32]byte(cs.WalkRoot), [memwalk.SeedSize]byte(cs.CheckSeed), openings)
}
