package gpuclass

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// The timed phase (package prover/timed, docs/PROTOCOL.md "The timed
// phase") is an int8 GEMM sized per claimed class so that an honest device
// of the class spends seconds of device time on it: long against network
// jitter, and bound by the class's tensor-core throughput. These are its
// timing model and its deadline rule.
const (
	// TimedK is the inner dimension of every timed phase. The oracle's
	// cost to check one sampled cell grows with it (a K-long int8 dot
	// product and 2K generated entries, about 20 µs at 16384), while the
	// node's hashing per multiply-add shrinks with it (one low byte per
	// 2K operations).
	TimedK = 16384
	// TimedLeafCells is the number of result cells per Merkle leaf
	// (prover/timed.LeafCells).
	TimedLeafCells = 256
	// TimedCompressionsPerLeaf is how many SHA-256 compressions a leaf
	// costs: 5 for the 265-byte leaf, 2 for its share of the 65-byte inner
	// nodes.
	TimedCompressionsPerLeaf = 7
	// DefaultTimedTargetMillis is the device time the production timed
	// phase is sized for on the claimed class.
	DefaultTimedTargetMillis = 4000
	// TimedMarginPercent is the deadline's margin on the expected device
	// time of a challenge with a timed phase. A device with at most two
	// thirds of the claimed throughput needs at least 150% of the
	// expectation; 125% leaves honest devices a quarter for throttling and
	// load, and the gap between 125% and 150% of a 4 s expectation (1 s)
	// exceeds the whole network allowance a node can claim.
	TimedMarginPercent = 125
	// NetworkAllowanceMillis is the most network time a deadline grants:
	// the challenge's delivery and the commitment's return. It is a fixed
	// cap rather than a per-node estimate because a node controls how slow
	// its own link looks; a cheater would always claim the cap.
	NetworkAllowanceMillis = 500
	// OracleAllowanceMillis covers the oracle's own share of a commitment's
	// measured latency: the Raft commit that issues the challenge and the
	// forwarding of the commitment to the leader.
	OracleAllowanceMillis = 250
)

// TimedDims returns the timed phase for the class sized so that its
// expected device time (TimedExpectedMillis) is as close to targetMillis
// as the shape rules allow without exceeding it: K = TimedK, N a multiple
// of TimedLeafCells near the square root of the cell count, M the rest.
// The smallest phase is 1 × 256 × TimedK; a zero target gives zeros.
func (c Class) TimedDims(targetMillis uint64) (m, n, k uint32) {
	if targetMillis == 0 {
		return 0, 0, 0
	}
	// Per cell: 2K operations at the GEMM rate and 7/256 compressions at
	// the hashing rate. Work in micro-units to stay in integers.
	perCellFs := c.timedCellFemtos()
	if perCellFs == 0 || perCellFs == math.MaxUint64 {
		return 1, TimedLeafCells, TimedK
	}
	cells := satMul(targetMillis, 1_000_000_000_000) / perCellFs
	if cells < TimedLeafCells {
		return 1, TimedLeafCells, TimedK
	}
	side := isqrt(cells)
	nn := side / TimedLeafCells * TimedLeafCells
	if nn < TimedLeafCells {
		nn = TimedLeafCells
	}
	if nn > 1<<24 {
		nn = 1 << 24
	}
	mm := cells / nn
	if mm > 1<<24 {
		mm = 1 << 24
	}
	if mm == 0 {
		mm = 1
	}
	// Rounding can overshoot by a fraction of a row: trim.
	for mm > 1 && c.TimedExpectedMillis(uint32(mm), uint32(nn), TimedK) > targetMillis {
		mm--
	}
	return uint32(mm), uint32(nn), TimedK
}

// timedCellFemtos is the modelled device time of one result cell at
// K = TimedK, in femtoseconds (integer precision for fast classes).
func (c Class) timedCellFemtos() uint64 {
	gemm := satMul(c.Int8GOPS, c.GEMMEfficiencyPercent) // GOPS × 100
	if gemm == 0 || c.SHA256PerSec == 0 {
		return math.MaxUint64
	}
	// fs per cell = 2K ops / (GOPS·eff/100 · 1e9 ops/s) · 1e15
	//             = 2K · 1e8 / (GOPS·eff)
	gemmFs := ceilDiv(satMul(2*TimedK, 100_000_000), gemm)
	// hashing: 7/256 compressions per cell at SHA256PerSec.
	hashFs := ceilDiv(satMul(TimedCompressionsPerLeaf, 1_000_000_000_000_000), satMul(TimedLeafCells, c.SHA256PerSec))
	return satAdd(gemmFs, hashFs)
}

// TimedExpectedMillis estimates, in milliseconds (rounded up), how long an
// honest device of the class takes for an m × k by k × n timed phase: the
// GEMM at GEMMEfficiencyPercent of the class's dense int8 throughput plus
// the SHA-256 leaf and tree hashing at the class's SHA256PerSec. Input
// generation (one cheap 64-bit mix per 8 entries of A and B) is left out:
// it is (m + n)·k/8 words against 2·m·n·k tensor operations.
func (c Class) TimedExpectedMillis(m, n, k uint32) uint64 {
	if m == 0 || n == 0 || k == 0 {
		return 0
	}
	gemmRate := satMul(satMul(c.Int8GOPS, c.GEMMEfficiencyPercent), 10_000) // ops per ms
	if gemmRate == 0 || c.SHA256PerSec == 0 {
		return math.MaxUint64
	}
	ops := Ops(int(m), int(n), int(k))
	leaves := ceilDiv(satMul(uint64(m), uint64(n)), TimedLeafCells)
	comp := satMul(satMul(leaves, TimedCompressionsPerLeaf), 1000)
	if ops == math.MaxUint64 || comp == math.MaxUint64 {
		return math.MaxUint64
	}
	return satAdd(ceilDiv(ops, gemmRate), ceilDiv(comp, c.SHA256PerSec))
}

// TimedDeadline returns the commitment deadline, in milliseconds after
// issue, of a challenge whose device work is expected to take
// expectedMillis (the profile workload and the timed phase together):
// expectedMillis × TimedMarginPercent / 100 + NetworkAllowanceMillis +
// OracleAllowanceMillis.
func TimedDeadline(expectedMillis uint64) uint64 {
	if expectedMillis == math.MaxUint64 {
		return math.MaxUint64
	}
	return satAdd(satMul(expectedMillis, TimedMarginPercent)/100, NetworkAllowanceMillis+OracleAllowanceMillis)
}

// TimedExpectedLatency returns the commitment latency, as the leader
// measures it, of an honest device whose work takes expectedMillis: the
// work plus the network and oracle allowances.
func TimedExpectedLatency(expectedMillis uint64) uint64 {
	return satAdd(expectedMillis, NetworkAllowanceMillis+OracleAllowanceMillis)
}

func isqrt(x uint64) uint64 {
	if x == 0 {
		return 0
	}
	// Integer Newton iteration: no floating point in this package.
	r := x
	for y := (r + 1) / 2; y < r; y = (y + x/y) / 2 {
		r = y
	}
	return r
}

// Hardware models that no node may claim: what a spoofer might really run
// (the separation table in docs/PROTOCOL.md and the simulated spoofers).
const (
	// CPU128 is a 128-core x86-64 server computing int8 GEMMs with
	// AVX-512 VNNI, the instruction set of the reference VM's cores.
	CPU128 = "cpu-128"
	// CPU128AMX is a 128-core server with Intel AMX tile units.
	CPU128AMX = "cpu-128-amx"
)

var hardware = []Class{
	{
		// 128 cores × 2 GHz × 64 int8 multiply-adds per cycle (one
		// 512-bit VPDPBUSD per cycle) × 2 = 32.8 TOPS peak; 70% in a
		// blocked GEMM. SHA-256 with SHA-NI at about 2 GB/s per core.
		// Memory: 12 channels of DDR5-4800.
		Name:                  CPU128,
		MemoryBytes:           1 << 40,
		Int8GOPS:              32_800,
		GEMMEfficiencyPercent: 70,
		MemoryBandwidthGBps:   460,
		Poseidon2PerSec:       128 * 170_000,
		SHA256PerSec:          128 * 30_000_000,
		HostLinkGBps:          0,  // the table is in its own memory
		WalkBandwidthPercent:  70, // estimate: random 1 KB reads, 16 cache lines each
	},
	{
		// 128 cores × 2 GHz × 2048 int8 multiply-adds per cycle (AMX
		// TMUL) × 2 = 1,049 TOPS peak; 45% in a GEMM that streams its
		// operands from DDR5. Memory: 12 channels of DDR5-6400 (614 GB/s).
		Name:                  CPU128AMX,
		MemoryBytes:           1 << 40,
		Int8GOPS:              1_048_576,
		GEMMEfficiencyPercent: 45,
		MemoryBandwidthGBps:   614,
		Poseidon2PerSec:       128 * 170_000,
		SHA256PerSec:          128 * 30_000_000,
		HostLinkGBps:          0,  // the table is in its own memory
		WalkBandwidthPercent:  70, // estimate: random 1 KB reads, 16 cache lines each
	},
}

// LookupHardware returns a claimable class (Lookup) or one of the
// unclaimable hardware models (CPU128, CPU128AMX) by name.
func LookupHardware(name string) (Class, error) {
	if c, err := Lookup(name); err == nil {
		return c, nil
	}
	for _, c := range hardware {
		if strings.EqualFold(c.Name, name) {
			return c, nil
		}
	}
	return Class{}, fmt.Errorf("%w %q: known classes are %s; hardware models %s, %s", ErrUnknownClass, name, strings.Join(Names(), ", "), CPU128, CPU128AMX)
}

// HardwareModels returns the unclaimable hardware models.
func HardwareModels() []Class { return slices.Clone(hardware) }
