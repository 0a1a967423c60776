package gpuclass

import (
	"fmt"
	"math"
	"math/bits"
	"testing"
)

// allHardware is every piece of hardware a node may really run: the
// claimable classes and the unclaimable hardware models.
func allHardware() []Class { return append(Classes(), HardwareModels()...) }

// atMostTwoThirds reports whether x ≤ ⅔·y.
func atMostTwoThirds(x, y uint64) bool {
	hi1, lo1 := bits.Mul64(3, x)
	hi2, lo2 := bits.Mul64(2, y)
	return hi1 < hi2 || hi1 == hi2 && lo1 <= lo2
}

func effectiveInt8(c Class) uint64 { return c.Int8GOPS * c.GEMMEfficiencyPercent }
func walkBandwidth(c Class) uint64 { return c.MemoryBandwidthGBps * c.WalkBandwidthPercent }

func TestWalkDims(t *testing.T) {
	for _, c := range Classes() {
		blocks, lanes, steps := c.WalkDims(DefaultWalkTargetMillis)
		leaves := uint64(lanes) * uint64(steps) / WalkLanesPerLeaf
		// The spec's validity rules (package prover/memwalk) and this
		// package's: Lanes at most a quarter of the blocks.
		if blocks < 16 || blocks > 1<<32 || lanes < 8 || lanes > 1<<24 || lanes&(lanes-1) != 0 ||
			uint64(lanes) > blocks/4 || steps < 1 || steps > 1<<24 || leaves > 1<<40 {
			t.Fatalf("%s: dims %d blocks, %d lanes, %d steps break the shape rules", c.Name, blocks, lanes, steps)
		}
		fill, walk := c.FillExpectedMillis(blocks), c.WalkExpectedMillis(blocks, lanes, steps)
		if walk > DefaultWalkTargetMillis || walk < DefaultWalkTargetMillis*9/10 {
			t.Errorf("%s: walk expected %d ms, want within 10%% below %d", c.Name, walk, DefaultWalkTargetMillis)
		}
		if fill > DefaultWalkTargetMillis/4 && blocks != c.MemoryBytes*WalkTablePercent/100/WalkBlockBytes {
			t.Errorf("%s: capped table of %d blocks takes %d ms to fill, more than a quarter of the target", c.Name, blocks, fill)
		}
		if c.Name == CPU {
			if fill > DefaultWalkTargetMillis/4 || c.FillExpectedMillis(blocks+1) <= DefaultWalkTargetMillis/4 {
				t.Errorf("cpu: %d blocks fill in %d ms; want the largest table that fills within %d ms", blocks, fill, DefaultWalkTargetMillis/4)
			}
		} else {
			if want := c.MemoryBytes * WalkTablePercent / 100 / WalkBlockBytes; blocks != want || lanes != WalkLanes {
				t.Errorf("%s: %d blocks and %d lanes, want %d (%d%% of memory) and %d", c.Name, blocks, lanes, want, WalkTablePercent, WalkLanes)
			}
			// The fill is part of the first commitment's work: it must
			// stay small against the timed phase it rides with (at most
			// a quarter: the A100's, 68 GB at 4,096 tensor operations
			// per byte, is the largest, about 24%).
			m, n, k := c.TimedDims(DefaultTimedTargetMillis)
			if gemm := c.TimedExpectedMillis(m, n, k); fill*4 > gemm {
				t.Errorf("%s: fill %d ms is more than a quarter of the timed phase's %d ms", c.Name, fill, gemm)
			}
		}
		if got := c.WalkActualMillis(c, blocks, lanes, steps); got != walk {
			t.Errorf("%s on its own walk: actual %d ms, expected %d ms", c.Name, got, walk)
		}
		if c.WalkHeldBlocks(blocks) != blocks {
			t.Errorf("honest %s holds %d of its %d blocks", c.Name, c.WalkHeldBlocks(blocks), blocks)
		}
		m, n, k := c.TimedDims(DefaultTimedTargetMillis)
		gemm := c.TimedExpectedMillis(m, n, k)
		t.Logf("%-10s %11d blocks (%6.1f GiB) %8d lanes %7d steps: fill %5d ms (timed GEMM %d ms, %4.1f%%), walk %d ms, walk deadline %d ms",
			c.Name, blocks, float64(blocks)*WalkBlockBytes/(1<<30), lanes, steps, fill, gemm, 100*float64(fill)/float64(gemm), walk, TimedDeadline(walk))
	}
	if b, l, s := (Class{}).WalkDims(0); b != 0 || l != 0 || s != 0 {
		t.Fatalf("zero target gives %d, %d, %d", b, l, s)
	}
	// A tiny target: the table the fill budget allows, one step, still
	// valid.
	cpu, _ := Lookup(CPU)
	if b, l, s := cpu.WalkDims(1); b < 32 || l < 8 || l&(l-1) != 0 || uint64(l) > b/4 || s != 1 || cpu.FillExpectedMillis(b) > WalkFillBudgetMillis {
		t.Fatalf("cpu, 1 ms target: %d blocks, %d lanes, %d steps", b, l, s)
	}
	// A short target never shrinks a GPU's table.
	for _, c := range Classes() {
		if c.Name == CPU {
			continue
		}
		full, _, _ := c.WalkDims(DefaultWalkTargetMillis)
		if b, _, _ := c.WalkDims(500); b != full {
			t.Errorf("%s: a 500 ms walk target shrinks the table to %d blocks of %d", c.Name, b, full)
		}
	}
}

func TestWalkArithmeticSaturates(t *testing.T) {
	h100, _ := Lookup(H100SXM)
	if got := h100.WalkExpectedMillis(1<<32, 1<<24, 1<<24); got == 0 || got == math.MaxUint64 {
		t.Fatalf("largest valid walk: %d ms", got)
	}
	cpu, _ := Lookup(CPU)
	// The cpu class regenerating nearly all of an H200 table: large, not
	// wrapped.
	h200, _ := Lookup(H200)
	b, l, s := h200.WalkDims(DefaultWalkTargetMillis)
	if got := cpu.WalkActualMillis(h200, b, l, s); got < 1_000_000_000 {
		t.Fatalf("cpu on the H200 walk: %d ms", got)
	}
	if got := (Class{}).WalkExpectedMillis(100, 8, 1); got != math.MaxUint64 {
		t.Fatalf("zero class: %d, want MaxUint64", got)
	}
	if got := (Class{}).FillExpectedMillis(100); got != math.MaxUint64 {
		t.Fatalf("zero class fill: %d, want MaxUint64", got)
	}
	if h100.FillExpectedMillis(0) != 0 || h100.WalkExpectedMillis(0, 8, 1) != 0 || h100.WalkExpectedMillis(100, 8, 0) != 0 {
		t.Fatal("zero dimensions must cost nothing")
	}
	if got := mulDivCeil(math.MaxUint64, math.MaxUint64, 3); got != math.MaxUint64 {
		t.Fatalf("mulDivCeil overflow: %d", got)
	}
	if got := mulDivCeil(10, 10, 3); got != 34 {
		t.Fatalf("mulDivCeil(10, 10, 3) = %d", got)
	}
	if got := mulDiv(1<<40, 1<<40, 1<<30); got != 1<<50 {
		t.Fatalf("mulDiv(2^40, 2^40, 2^30) = %d", got)
	}
	// A device holding no table and with no way to produce a block.
	nothing := Class{MemoryBandwidthGBps: 1, WalkBandwidthPercent: 100, SHA256PerSec: 1}
	if got := nothing.WalkActualMillis(h100, 100, 8, 1); got != math.MaxUint64 {
		t.Fatalf("device without memory, tensor units or host link: %d ms", got)
	}
}

// walkModel is a model of hardware's walk time on a claimed class's walk;
// the tests run the separation checks against WalkActualMillis and against
// broken models.
type walkModel func(hw, claimed Class, blocks uint64, lanes, steps uint32) uint64

func realWalk(hw, claimed Class, blocks uint64, lanes, steps uint32) uint64 {
	return hw.WalkActualMillis(claimed, blocks, lanes, steps)
}

// walkSeparationFailures returns, under the model, every (hardware,
// claimed) pair whose hardware has at most two thirds of the claimed
// class's walk bandwidth or memory but whose walk work meets the claimed
// class's walk deadline. logf, when not nil, gets the margin of every pair
// caught.
func walkSeparationFailures(model walkModel, logf func(string, ...any)) []string {
	var fails []string
	for _, claimed := range Classes() {
		blocks, lanes, steps := claimed.WalkDims(DefaultWalkTargetMillis)
		dl := TimedDeadline(claimed.WalkExpectedMillis(blocks, lanes, steps))
		for _, hw := range allHardware() {
			if hw.Name == claimed.Name {
				continue
			}
			weakBW := atMostTwoThirds(walkBandwidth(hw), walkBandwidth(claimed))
			weakMem := atMostTwoThirds(hw.MemoryBytes, claimed.MemoryBytes)
			if !weakBW && !weakMem {
				continue
			}
			// The device work alone must overrun the deadline: a node
			// can make its own link look as slow as the whole allowance.
			got := model(hw, claimed, blocks, lanes, steps)
			if got <= dl {
				fails = append(fails, fmt.Sprintf("%s claiming %s: walk %d ms meets the %d ms deadline", hw.Name, claimed.Name, got, dl))
			} else if logf != nil {
				logf("%-11s as %-9s: walk %8.1f s against %.2f s (%.2f×; bandwidth %s, memory %s)", hw.Name, claimed.Name,
					float64(got)/1000, float64(dl)/1000, float64(got)/float64(dl),
					ratio(walkBandwidth(hw), walkBandwidth(claimed)), ratio(hw.MemoryBytes, claimed.MemoryBytes))
			}
		}
	}
	return fails
}

func ratio(a, b uint64) string { return fmt.Sprintf("%.2f", float64(a)/float64(b)) }

// TestWalkSeparatesMemory checks the claim the memory phase is built on:
// on the production walk, hardware with at most two thirds of the claimed
// class's walk bandwidth or memory misses the claimed class's walk
// deadline on the device work alone.
func TestWalkSeparatesMemory(t *testing.T) {
	for _, f := range walkSeparationFailures(realWalk, t.Logf) {
		t.Error(f)
	}
}

// TestWalkSeparationCatchesPlantedBug shows that the separation check can
// fail: with a model that ignores how much of the table the hardware holds
// (every card reads the whole table at its own bandwidth) or one that lets
// missing blocks come at memory speed, cards with too little memory pass.
func TestWalkSeparationCatchesPlantedBug(t *testing.T) {
	holdsAll := func(hw, claimed Class, blocks uint64, lanes, steps uint32) uint64 {
		return hw.walkMillis(blocks, blocks, lanes, steps) // held share ignored
	}
	freeMisses := func(hw, claimed Class, blocks uint64, lanes, steps uint32) uint64 {
		hw.HostLinkGBps = hw.MemoryBandwidthGBps * hw.WalkBandwidthPercent / 100 // missing blocks as cheap as held ones
		return hw.WalkActualMillis(claimed, blocks, lanes, steps)
	}
	for name, bug := range map[string]walkModel{"held share ignored": holdsAll, "missing blocks at memory speed": freeMisses} {
		fails := walkSeparationFailures(bug, nil)
		found := false
		for _, f := range fails {
			found = found || f[:len("H100-SXM claiming H200")] == "H100-SXM claiming H200"
		}
		if !found {
			t.Errorf("%s: the separation check does not notice H100-SXM passing as H200 (%d failures: %q)", name, len(fails), fails)
		}
		t.Logf("%s: %d pairs would pass", name, len(fails))
	}
}

// verdict is the combined two-phase rule for one (hardware, claimed) pair.
type verdict struct {
	gemm, gemmDeadline, walk, walkDeadline uint64
}

func (v verdict) gemmCaught() bool { return v.gemm > v.gemmDeadline }
func (v verdict) walkCaught() bool { return v.walk > v.walkDeadline }
func (v verdict) caught() bool     { return v.gemmCaught() || v.walkCaught() }

// twoPhase models hardware hw answering claimed's production challenge:
// the first commitment holds the timed GEMM and the table fill, the walk
// has its own deadline.
func twoPhase(hw, claimed Class) verdict {
	m, n, k := claimed.TimedDims(DefaultTimedTargetMillis)
	blocks, lanes, steps := claimed.WalkDims(DefaultWalkTargetMillis)
	return verdict{
		gemm:         satAdd(hw.TimedExpectedMillis(m, n, k), hw.FillActualMillis(blocks)),
		gemmDeadline: TimedDeadline(satAdd(claimed.TimedExpectedMillis(m, n, k), claimed.FillExpectedMillis(blocks))),
		walk:         hw.WalkActualMillis(claimed, blocks, lanes, steps),
		walkDeadline: TimedDeadline(claimed.WalkExpectedMillis(blocks, lanes, steps)),
	}
}

// TestTwoPhaseSeparation checks the combined rule over every (hardware,
// claimed) pair: hardware with at most two thirds of the claimed class's
// effective int8 throughput, walk bandwidth or memory overruns a phase's
// deadline, and hardware at least as good in all three overruns neither.
func TestTwoPhaseSeparation(t *testing.T) {
	for _, claimed := range Classes() {
		for _, hw := range allHardware() {
			v := twoPhase(hw, claimed)
			weakT := atMostTwoThirds(effectiveInt8(hw), effectiveInt8(claimed))
			weakB := atMostTwoThirds(walkBandwidth(hw), walkBandwidth(claimed))
			weakM := atMostTwoThirds(hw.MemoryBytes, claimed.MemoryBytes)
			atLeast := effectiveInt8(hw) >= effectiveInt8(claimed) && walkBandwidth(hw) >= walkBandwidth(claimed) && hw.MemoryBytes >= claimed.MemoryBytes
			pair := fmt.Sprintf("%s claiming %s (GEMM+fill %d / %d ms, walk %d / %d ms)", hw.Name, claimed.Name, v.gemm, v.gemmDeadline, v.walk, v.walkDeadline)
			switch {
			case (weakT || weakB || weakM) && !v.caught():
				t.Errorf("%s: not caught with throughput %s, walk bandwidth %s, memory %s", pair,
					ratio(effectiveInt8(hw), effectiveInt8(claimed)), ratio(walkBandwidth(hw), walkBandwidth(claimed)), ratio(hw.MemoryBytes, claimed.MemoryBytes))
			case atLeast && v.caught():
				t.Errorf("%s: caught, but the hardware is at least as good in every respect", pair)
			case weakT && !v.gemmCaught():
				t.Errorf("%s: two thirds of the throughput, but the GEMM phase does not catch it", pair)
			case !weakT && !weakB && !weakM && v.caught():
				t.Logf("%s: caught inside the tolerance", pair)
			}
			if hw.Name == claimed.Name && (v.gemm+NetworkAllowanceMillis+OracleAllowanceMillis > v.gemmDeadline || v.walk+NetworkAllowanceMillis+OracleAllowanceMillis > v.walkDeadline) {
				t.Errorf("honest %s cannot meet its deadlines: %s", claimed.Name, pair)
			}
		}
	}
}
