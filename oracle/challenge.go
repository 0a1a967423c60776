package oracle

import (
	"crypto/rand"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/gpuclass"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover/memwalk"
	"github.com/truegpu/truegpu/prover/timed"
)

// StandInTimed is the timed phase nodes compute on a TimedStandIn cluster.
var StandInTimed = timed.Spec{M: 32, N: 256, K: 2048}

// StandInMemory is the memory phase nodes compute on a TimedStandIn
// cluster: a 64 KB table and 32 lanes of 32 steps.
var StandInMemory = memwalk.Spec{Blocks: 64, Lanes: 32, Steps: 32}

// challenge builds one challenge sized for the device's claimed class.
func (s *scheduler) challenge(addr ethcrypto.Address, d *truegpuv1.Device, now time.Time, storm string) (*truegpuv1.IssuedChallenge, error) {
	p := s.profile
	class, err := gpuclass.Lookup(d.ClaimedClass)
	if err != nil {
		return nil, err
	}
	var nonce [32]byte
	rand.Read(nonce[:])
	issued := now.UnixMilli()
	id := truegpuv1.ChallengeID(nonce[:], addr[:], d.Index, issued)
	deadline, expected := class.Deadline(p.M, p.N, p.K), class.ExpectedLatencyMillis(p.M, p.N, p.K)
	tp, mp := s.timedParams(class), s.memoryParams(class)
	if tp != nil || mp != nil {
		// The commitment binds the profile workload, the timed GEMM and
		// the memory phase's table: their device times add up.
		work := class.ExpectedMillis(p.M, p.N, p.K) + tp.GetExpectedMs() + mp.GetFillExpectedMs()
		deadline, expected = gpuclass.TimedDeadline(work), gpuclass.TimedExpectedLatency(work)
	}
	commit := issued + int64(deadline)
	proof := commit + s.cfg.ProofWindow.Milliseconds()
	if mp != nil {
		// The walk may start as late as the commitment deadline.
		proof += int64(mp.WalkDeadlineMs)
	}
	return &truegpuv1.IssuedChallenge{
		Id: id[:], Address: addr[:], DeviceIndex: d.Index, Nonce: nonce[:], Profile: p.ID(), ClaimedClass: class.Name,
		IssuedAtUnixMs: issued, CommitDeadlineUnixMs: commit, ProofDeadlineUnixMs: proof,
		ExpectedLatencyMs: expected, StormId: storm, Timed: tp, Memory: mp,
	}, nil
}

// timedParams sizes the timed phase for a claimed class, or returns nil
// when the cluster runs none.
func (s *scheduler) timedParams(class gpuclass.Class) *truegpuv1.TimedParams {
	if s.cfg.TimedTargetMillis == 0 {
		return nil
	}
	m, n, k := class.TimedDims(s.cfg.TimedTargetMillis)
	tp := &truegpuv1.TimedParams{M: m, N: n, K: k, ModelM: m, ModelN: n, ModelK: k, ExpectedMs: class.TimedExpectedMillis(m, n, k)}
	if s.cfg.TimedStandIn {
		tp.M, tp.N, tp.K = StandInTimed.M, StandInTimed.N, StandInTimed.K
	}
	return tp
}

// memoryParams sizes the memory phase for a claimed class, or returns nil
// when the cluster runs none. The walk deadline is the timed phase's rule
// (gpuclass.TimedDeadline) applied to the walk's expected device time; it
// runs from the leader recording the commitment, so the walk's start is
// on the oracle's clock.
func (s *scheduler) memoryParams(class gpuclass.Class) *truegpuv1.MemoryParams {
	if s.cfg.MemoryTargetMillis == 0 {
		return nil
	}
	blocks, lanes, steps := class.WalkDims(s.cfg.MemoryTargetMillis)
	walk := class.WalkExpectedMillis(blocks, lanes, steps)
	mp := &truegpuv1.MemoryParams{Blocks: blocks, Lanes: lanes, Steps: steps, ModelBlocks: blocks, ModelLanes: lanes, ModelSteps: steps,
		FillExpectedMs: class.FillExpectedMillis(blocks), WalkExpectedMs: walk, WalkDeadlineMs: gpuclass.TimedDeadline(walk)}
	if s.cfg.TimedStandIn {
		mp.Blocks, mp.Lanes, mp.Steps = StandInMemory.Blocks, StandInMemory.Lanes, StandInMemory.Steps
	}
	return mp
}
