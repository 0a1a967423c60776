// Package gpuclass owns the GPU class profile table: for each class of
// accelerator a node may claim (H100-SXM, A100-80GB, RTX-4090, ... and the
// "cpu" pseudo-class for honest CPU-only reference nodes), the NVML product
// names it matches, its memory, its dense int8 tensor throughput, its memory
// bandwidth and its Poseidon2 hashing rate, and from those the expected time
// and the deadline of a challenge.
//
// The oracle sizes workloads and sets deadlines from the claimed class, never
// from a node's self-reported numbers; simulated devices use the same table
// to model their timing. Everything here is pure data and integer
// arithmetic: no clock, no randomness and no floating point, so the oracle's
// deterministic state machine may call it. Arithmetic saturates at
// math.MaxUint64 instead of wrapping, so absurd dimensions give an absurdly
// long (not a short) expected time.
//
// The throughput figures are the vendors' published dense (no sparsity)
// int8 tensor numbers; the hashing rates are estimates for a straightforward
// Poseidon2 kernel and should be recalibrated against measured honest
// devices. Measured timings feed per-device profiles in the oracle; this
// table only bounds what an honest device of a class can achieve.
package gpuclass

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
)

// ErrUnknownClass is returned by Lookup for a name that is not in the table.
var ErrUnknownClass = errors.New("gpuclass: unknown class")

// Class names. These are the canonical spellings used in registrations,
// challenges and reports.
const (
	H100SXM  = "H100-SXM"
	H100PCIe = "H100-PCIe"
	H200     = "H200"
	A100_80  = "A100-80GB"
	A100_40  = "A100-40GB"
	L40S     = "L40S"
	RTX4090  = "RTX-4090"
	RTX3090  = "RTX-3090"
	CPU      = "cpu"
)

// Timing model constants shared by every class.
const (
	// MarginPercent is the deadline margin over the expected time, in
	// percent: a deadline is ExpectedMillis × MarginPercent / 100 +
	// SlackMillis. 150 gives an honest device 50% headroom for clock
	// throttling and contention, while a card with less than two thirds of
	// the claimed throughput misses it on a workload that dominates the
	// slack.
	MarginPercent = 150
	// SlackMillis is the fixed allowance added to every deadline for
	// network latency, kernel launch, driver and host overheads.
	SlackMillis = 1000
	// LatencyAllowanceMillis is the part of a commitment's latency, as the
	// leader measures it, that is not device work: the Raft commit that
	// issues the challenge, its delivery to the node, and the commitment's
	// trip back. Capacity is judged against ExpectedLatencyMillis =
	// ExpectedMillis + LatencyAllowanceMillis. It is below SlackMillis, so
	// an honest device within its expected latency always meets the
	// deadline.
	LatencyAllowanceMillis = 500
	// PRGBytesPerHash is how many int8 matrix entries one Poseidon2
	// compression of the workload PRG yields (the low 31 bytes of a BN254
	// field element, as in package prover).
	PRGBytesPerHash = 31
	// CellsPerLeaf is how many int32 result cells are packed into one
	// Merkle leaf field element (prover.CellsPerWord: 4 × 32 = 128 bits).
	CellsPerLeaf = 4
)

// NamePattern matches an NVML product name (nvmlDeviceGetName). A name
// matches when it contains every substring in All and none in None; the
// comparison ignores case.
type NamePattern struct {
	All  []string
	None []string
}

// Matches reports whether name matches the pattern.
func (p NamePattern) Matches(name string) bool {
	n := strings.ToLower(name)
	if len(p.All) == 0 {
		return false
	}
	for _, s := range p.All {
		if !strings.Contains(n, strings.ToLower(s)) {
			return false
		}
	}
	for _, s := range p.None {
		if strings.Contains(n, strings.ToLower(s)) {
			return false
		}
	}
	return true
}

// Class is the profile of one class of device. All figures are integers.
type Class struct {
	// Name is the canonical class name, e.g. "H100-SXM".
	Name string
	// NVMLNames are the product-name patterns of devices in this class. A
	// MIG slice never matches a whole-GPU class. Empty for "cpu".
	NVMLNames []NamePattern
	// MemoryBytes is the device memory. For "cpu" it is the memory a
	// reference node is assumed to dedicate to challenges.
	MemoryBytes uint64
	// Int8GOPS is the dense int8 tensor throughput in giga-operations per
	// second (one multiply-add counts as two operations).
	Int8GOPS uint64
	// GEMMEfficiencyPercent is the fraction of Int8GOPS, in percent, that
	// an honest implementation of the challenge GEMM reaches (exact int32
	// accumulation, challenge-sized matrices).
	GEMMEfficiencyPercent uint64
	// MemoryBandwidthGBps is the peak device memory bandwidth in GB/s.
	MemoryBandwidthGBps uint64
	// Poseidon2PerSec is the rate of BN254 Poseidon2 2-to-1 compressions
	// per second an honest device sustains (PRG expansion and the Merkle
	// commitment).
	Poseidon2PerSec uint64
	// SHA256PerSec is the rate of SHA-256 block compressions per second
	// an honest device sustains (the timed phase's leaf and tree hashing).
	// Estimates from public single-block SHA-256 benchmarks of each card,
	// rounded down.
	SHA256PerSec uint64
	// HostLinkGBps is the one-direction bandwidth in GB/s of the link
	// over which the device could stream memory-phase table blocks it
	// does not hold from its host (PCIe, as the vendors' datasheets give
	// it for both directions together, halved). Zero means the device
	// computes from the host's own memory (CPUs): there is no link, the
	// table is in MemoryBytes or nowhere.
	HostLinkGBps uint64
	// WalkBandwidthPercent is the fraction of MemoryBandwidthGBps, in
	// percent, that the memory phase's walk reaches: random reads of one
	// 1 KB block per lane and step, each folded into the lane's state.
	WalkBandwidthPercent uint64
}

var table = []Class{
	{
		Name:                  H100SXM,
		NVMLNames:             []NamePattern{{All: []string{"H100", "HBM3"}, None: []string{"MIG", "NVL"}}, {All: []string{"H100", "SXM"}, None: []string{"MIG"}}},
		MemoryBytes:           80 << 30,
		Int8GOPS:              1979000,
		GEMMEfficiencyPercent: 60,
		MemoryBandwidthGBps:   3350,
		Poseidon2PerSec:       400_000_000,
		SHA256PerSec:          18_000_000_000,
		HostLinkGBps:          64, // PCIe Gen5 x16; H100 datasheet: "PCIe Gen5: 128GB/s" (both ways)
		WalkBandwidthPercent:  70, // estimate until measured on the card
	},
	{
		Name:                  H100PCIe,
		NVMLNames:             []NamePattern{{All: []string{"H100", "PCIe"}, None: []string{"MIG"}}},
		MemoryBytes:           80 << 30,
		Int8GOPS:              1513000,
		GEMMEfficiencyPercent: 60,
		MemoryBandwidthGBps:   2000,
		Poseidon2PerSec:       300_000_000,
		SHA256PerSec:          14_000_000_000,
		HostLinkGBps:          64, // PCIe Gen5 x16; H100 datasheet: "PCIe Gen5: 128GB/s" (both ways)
		WalkBandwidthPercent:  70, // estimate until measured on the card
	},
	{
		Name:                  H200,
		NVMLNames:             []NamePattern{{All: []string{"H200"}, None: []string{"GH200", "MIG", "NVL"}}},
		MemoryBytes:           141 << 30,
		Int8GOPS:              1979000,
		GEMMEfficiencyPercent: 60,
		MemoryBandwidthGBps:   4800,
		Poseidon2PerSec:       400_000_000,
		SHA256PerSec:          18_000_000_000,
		HostLinkGBps:          64, // PCIe Gen5 x16; H200 datasheet: "PCIe Gen5: 128GB/s" (both ways)
		WalkBandwidthPercent:  70, // estimate until measured on the card
	},
	{
		Name:                  A100_80,
		NVMLNames:             []NamePattern{{All: []string{"A100", "80GB"}, None: []string{"MIG"}}},
		MemoryBytes:           80 << 30,
		Int8GOPS:              624000,
		GEMMEfficiencyPercent: 60,
		MemoryBandwidthGBps:   2039,
		Poseidon2PerSec:       150_000_000,
		SHA256PerSec:          9_000_000_000,
		HostLinkGBps:          32, // PCIe Gen4 x16; A100 datasheet: "PCIe Gen4: 64 GB/s" (both ways)
		WalkBandwidthPercent:  70, // estimate until measured on the card
	},
	{
		Name:                  A100_40,
		NVMLNames:             []NamePattern{{All: []string{"A100", "40GB"}, None: []string{"MIG"}}},
		MemoryBytes:           40 << 30,
		Int8GOPS:              624000,
		GEMMEfficiencyPercent: 60,
		MemoryBandwidthGBps:   1555,
		Poseidon2PerSec:       150_000_000,
		SHA256PerSec:          9_000_000_000,
		HostLinkGBps:          32, // PCIe Gen4 x16; A100 datasheet: "PCIe Gen4: 64 GB/s" (both ways)
		WalkBandwidthPercent:  70, // estimate until measured on the card
	},
	{
		Name:                  L40S,
		NVMLNames:             []NamePattern{{All: []string{"L40S"}, None: []string{"MIG"}}},
		MemoryBytes:           48 << 30,
		Int8GOPS:              733000,
		GEMMEfficiencyPercent: 55,
		MemoryBandwidthGBps:   864,
		Poseidon2PerSec:       160_000_000,
		SHA256PerSec:          15_000_000_000,
		HostLinkGBps:          32, // L40S datasheet: "PCIe Gen4 x16: 64GB/s bidirectional"
		WalkBandwidthPercent:  70, // estimate until measured on the card
	},
	{
		Name:                  RTX4090,
		NVMLNames:             []NamePattern{{All: []string{"RTX 4090"}, None: []string{"4090 D", "Laptop"}}},
		MemoryBytes:           24 << 30,
		Int8GOPS:              660000,
		GEMMEfficiencyPercent: 55,
		MemoryBandwidthGBps:   1008,
		Poseidon2PerSec:       150_000_000,
		SHA256PerSec:          20_000_000_000,
		HostLinkGBps:          32, // PCIe Gen4 x16 (GeForce RTX 4090 specifications), 64 GB/s both ways
		WalkBandwidthPercent:  70, // estimate until measured on the card
	},
	{
		Name:                  RTX3090,
		NVMLNames:             []NamePattern{{All: []string{"RTX 3090"}, None: []string{"Ti", "Laptop"}}},
		MemoryBytes:           24 << 30,
		Int8GOPS:              284000,
		GEMMEfficiencyPercent: 55,
		MemoryBandwidthGBps:   936,
		Poseidon2PerSec:       60_000_000,
		SHA256PerSec:          9_000_000_000,
		HostLinkGBps:          32, // PCIe Gen4 x16 (GeForce RTX 3090 specifications), 64 GB/s both ways
		WalkBandwidthPercent:  70, // estimate until measured on the card
	},
	{
		// The reference implementations on one core of a commodity CPU,
		// measured on one core of a 2-core x86-64 VM: the standard
		// profile's GEMM at about 2.8 GOPS and Poseidon2 at 155k-175k
		// compressions/s; the timed phase's GEMM (package prover/timed)
		// at 8.4-9.4 GOPS; SHA-256 with SHA-NI at about 30 M
		// compressions/s. The figures below are conservative so that an
		// honest reference node on a loaded machine still meets its
		// deadline.
		Name:                  CPU,
		MemoryBytes:           4 << 30,
		Int8GOPS:              4,
		GEMMEfficiencyPercent: 100,
		MemoryBandwidthGBps:   20,
		Poseidon2PerSec:       100_000,
		SHA256PerSec:          25_000_000,
		// The memory phase on one core of the same VM (package
		// prover/memwalk's benchmarks, one worker): the walk with its
		// tree hashing at 8.7 GB/s of blocks from a 1 MB table, the
		// fold alone at 15 GB/s, a plain-Go fold without the reference's
		// tuning at 4.2-5.4 GB/s; the fill at 3.3 G multiply-adds/s
		// (6.6 GOPS). The walk is bound by the fold's ALU work, not by
		// memory; 15% of 20 GB/s is 3 GB/s, conservative like the
		// figures above.
		HostLinkGBps:         0,
		WalkBandwidthPercent: 15,
	},
}

// Classes returns a copy of the class table, ordered from the strongest
// class to the "cpu" pseudo-class.
func Classes() []Class {
	out := make([]Class, len(table))
	for i, c := range table {
		c.NVMLNames = clonePatterns(c.NVMLNames)
		out[i] = c
	}
	return out
}

// Names returns the canonical names of all classes, in table order.
func Names() []string {
	out := make([]string, len(table))
	for i, c := range table {
		out[i] = c.Name
	}
	return out
}

// Lookup returns the class with the given canonical name. The comparison
// ignores case. An unknown name yields an error wrapping ErrUnknownClass
// that lists the known classes.
func Lookup(name string) (Class, error) {
	for _, c := range table {
		if strings.EqualFold(c.Name, name) {
			c.NVMLNames = clonePatterns(c.NVMLNames)
			return c, nil
		}
	}
	return Class{}, fmt.Errorf("%w %q: known classes are %s", ErrUnknownClass, name, strings.Join(Names(), ", "))
}

// MatchNVMLName returns the class whose product-name patterns match an
// NVML product name such as "NVIDIA H100 80GB HBM3". It reports false for
// devices outside the table and for MIG slices.
func MatchNVMLName(productName string) (Class, bool) {
	for _, c := range table {
		for _, p := range c.NVMLNames {
			if p.Matches(productName) {
				c.NVMLNames = clonePatterns(c.NVMLNames)
				return c, true
			}
		}
	}
	return Class{}, false
}

// Ops returns the operation count of an m×k by k×n GEMM, 2·m·n·k,
// saturating at math.MaxUint64. Negative dimensions count as zero.
func Ops(m, n, k int) uint64 {
	return satMul(2, satMul(dim(m), satMul(dim(n), dim(k))))
}

// Hashes returns the number of Poseidon2 compressions the challenge needs:
// the PRG expansion of the m rows of A and the n columns of B at
// PRGBytesPerHash entries per compression, plus the inner nodes of a binary
// Merkle tree over ceil(m·n / CellsPerLeaf) leaf words (leaves are packed,
// not hashed), counted as one per leaf.
func Hashes(m, n, k int) uint64 {
	prg := satMul(satAdd(dim(m), dim(n)), ceilDiv(dim(k), PRGBytesPerHash))
	leaves := ceilDiv(satMul(dim(m), dim(n)), CellsPerLeaf)
	return satAdd(prg, leaves)
}

// MemoryNeeded returns the device memory in bytes an honest run of an
// m×k by k×n challenge holds at once: the int8 inputs, the int32 results
// and the Merkle tree (32 bytes per node).
func MemoryNeeded(m, n, k int) uint64 {
	in := satAdd(satMul(dim(m), dim(k)), satMul(dim(k), dim(n)))
	out := satMul(4, satMul(dim(m), dim(n)))
	leaves := ceilDiv(satMul(dim(m), dim(n)), CellsPerLeaf)
	tree := satMul(64, leaves)
	return satAdd(in, satAdd(out, tree))
}

// Fits reports whether an m×k by k×n challenge fits in the class's memory.
func (c Class) Fits(m, n, k int) bool {
	return MemoryNeeded(m, n, k) <= c.MemoryBytes
}

// LargestSquareDim returns the largest power of two d such that a d×d by
// d×d challenge fits the class's memory (see Fits), or 0 when none does.
// The oracle sizes challenges toward it so that a card with less memory
// than it claims cannot hold the workload.
func (c Class) LargestSquareDim() int {
	d := 0
	for x := 1; x <= 1<<24; x <<= 1 {
		if !c.Fits(x, x, x) {
			break
		}
		d = x
	}
	return d
}

// ExpectedMillis estimates, in milliseconds (rounded up), how long an
// honest device of the class takes from receiving an m×k by k×n challenge
// to holding its commitment: the GEMM at GEMMEfficiencyPercent of the
// class's int8 throughput plus the PRG and Merkle hashing at the class's
// Poseidon2 rate. A class with zero throughput yields math.MaxUint64.
func (c Class) ExpectedMillis(m, n, k int) uint64 {
	// ops / (GOPS·1e9 · eff/100) seconds = ops·100 / (GOPS·eff·1e6) ms.
	gemmRate := satMul(satMul(c.Int8GOPS, c.GEMMEfficiencyPercent), 10_000) // ops per ms
	if gemmRate == 0 || c.Poseidon2PerSec == 0 {
		return math.MaxUint64
	}
	ops, hashes := Ops(m, n, k), satMul(Hashes(m, n, k), 1000)
	if ops == math.MaxUint64 || hashes == math.MaxUint64 {
		return math.MaxUint64
	}
	return satAdd(ceilDiv(ops, gemmRate), ceilDiv(hashes, c.Poseidon2PerSec))
}

// ExpectedMicros is ExpectedMillis at microsecond resolution (rounded
// up), for small workloads whose expected time is a few milliseconds, such
// as the timing of simulated devices.
func (c Class) ExpectedMicros(m, n, k int) uint64 {
	gemmRate := satMul(satMul(c.Int8GOPS, c.GEMMEfficiencyPercent), 10) // ops per µs
	if gemmRate == 0 || c.Poseidon2PerSec == 0 {
		return math.MaxUint64
	}
	ops, hashes := Ops(m, n, k), satMul(Hashes(m, n, k), 1_000_000)
	if ops == math.MaxUint64 || hashes == math.MaxUint64 {
		return math.MaxUint64
	}
	return satAdd(ceilDiv(ops, gemmRate), ceilDiv(hashes, c.Poseidon2PerSec))
}

// Deadline returns the commitment deadline in milliseconds after the
// challenge is issued: ExpectedMillis × MarginPercent / 100 + SlackMillis.
func (c Class) Deadline(m, n, k int) uint64 {
	e := c.ExpectedMillis(m, n, k)
	if e == math.MaxUint64 {
		return math.MaxUint64
	}
	return satAdd(satMul(e, MarginPercent)/100, SlackMillis)
}

// ExpectedLatencyMillis returns the commitment latency an honest device of
// the class should show as measured on the leader's clock: the expected
// device time plus LatencyAllowanceMillis. Capacity scoring compares
// measured latencies with it.
func (c Class) ExpectedLatencyMillis(m, n, k int) uint64 {
	return satAdd(c.ExpectedMillis(m, n, k), LatencyAllowanceMillis)
}

// ExpectedMillis is c.ExpectedMillis(m, n, k).
func ExpectedMillis(c Class, m, n, k int) uint64 { return c.ExpectedMillis(m, n, k) }

// Deadline is c.Deadline(m, n, k).
func Deadline(c Class, m, n, k int) uint64 { return c.Deadline(m, n, k) }

func clonePatterns(ps []NamePattern) []NamePattern {
	if ps == nil {
		return nil
	}
	out := make([]NamePattern, len(ps))
	for i, p := range ps {
		out[i] = NamePattern{All: append([]string(nil), p.All...), None: append([]string(nil), p.None...)}
	}
	return out
}

func dim(x int) uint64 {
	if x < 0 {
		return 0
	}
	return uint64(x)
}

func satMul(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return math.MaxUint64
	}
	return lo
}

func satAdd(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return s
}

func ceilDiv(a, b uint64) uint64 {
	if a == 0 {
		return 0
	}
	return (a-1)/b + 1
}
