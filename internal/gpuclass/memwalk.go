package gpuclass

import (
	"math"
	"math/bits"
)

// The memory phase (package prover/memwalk, "truegpu/memwalk/v1") is
// evidence of a device's memory capacity and bandwidth, which the timed
// phase's GEMM does not measure. The node fills a table of Blocks 1 KB
// blocks sized near the claimed class's memory, each byte the low byte of
// a 2048-deep int8 dot product, and commits to it together with the timed
// phase; the fill's time therefore belongs to that first commitment's
// deadline. After the oracle records the commitment it issues a walk seed;
// Lanes independent lanes then each read one block per step for Steps
// steps at addresses their states decide, and the node commits to the lane
// states. The walk's deadline runs on the oracle's clock from recording
// the first commitment to recording the walk root, with the rule of
// TimedDeadline.
//
// These are the phase's sizing, its honest timing model and the model of
// what other hardware needs for a claimed class's walk. Like the rest of
// the package they use integer arithmetic only, saturating at
// math.MaxUint64.
const (
	// WalkBlockBytes is the size of a table block (memwalk.BlockBytes).
	WalkBlockBytes = 1024
	// WalkFillK is the inner dimension of the GEMM that generates the
	// table (memwalk.FillK).
	WalkFillK = 2048
	// WalkFillOpsPerBlock is the tensor work of one block: 1024 bytes,
	// each a WalkFillK-long dot product of 2·WalkFillK operations.
	WalkFillOpsPerBlock = 2 * WalkFillK * WalkBlockBytes
	// WalkTableCompressionsPerBlock is the table tree's SHA-256 cost per
	// block: 17 compressions for the 1033-byte leaf (a prefix byte, the
	// index and the block) and 2 for its share of the 65-byte inner
	// nodes.
	WalkTableCompressionsPerBlock = 19
	// WalkLanesPerLeaf is how many lane states one walk-tree leaf holds.
	WalkLanesPerLeaf = 8
	// WalkCompressionsPerLeaf is the walk tree's SHA-256 cost per leaf: 2
	// compressions for the 73-byte leaf and 2 for its share of the
	// 65-byte inner nodes.
	WalkCompressionsPerLeaf = 4
	// WalkLanes is the production lane count: enough independent reads
	// in flight to keep a GPU's memory system busy. Classes whose table
	// has fewer than 4·WalkLanes blocks get fewer (see WalkDims).
	WalkLanes = 1 << 20
	// WalkTablePercent is the table's size as a share, in percent, of the
	// claimed class's MemoryBytes.
	WalkTablePercent = 85
	// DefaultWalkTargetMillis is the device time the production walk is
	// sized for on the claimed class.
	DefaultWalkTargetMillis = 4000
	// WalkFillBudgetMillis is the least fill time WalkDims allows before it
	// shrinks a class's table: every GPU class fills 85% of its memory
	// within it (the A100-80GB, the slowest, in about 950 ms), so a
	// shorter walk target never shrinks a GPU's table and weakens the
	// memory evidence; only the "cpu" class's table is shrunk.
	WalkFillBudgetMillis = 1000
	// WalkUsableMemoryPercent is the share of a device's memory, in
	// percent, that the model lets it spend on the table and the walk;
	// the rest goes to the driver and the runtime.
	WalkUsableMemoryPercent = 97
	// WalkReservedBytes is the part of the usable memory the walk's own
	// state takes (lane states, per-step walk-tree roots, working
	// buffers) and the table cannot.
	WalkReservedBytes = 1 << 30

	walkMinBlocks = 4 * walkMinLanes // WalkDims keeps Lanes ≤ Blocks/4
	walkMinLanes  = 8
	walkMaxBlocks = 1 << 32
	walkMaxSteps  = 1 << 24
	walkMaxLeaves = 1 << 40
)

// WalkDims returns the memory phase for the class sized for targetMillis
// of walk time: a table of WalkTablePercent of MemoryBytes in
// WalkBlockBytes blocks, except that a class whose fill would take more
// than WalkFillBudgetMillis or a quarter of the target, whichever is more
// (the "cpu" class), gets the largest table whose FillExpectedMillis fits
// in it; WalkLanes lanes, or
// the largest power of two that is at most a quarter of the blocks, and at
// least 8; and the most steps (at least one) whose WalkExpectedMillis does
// not exceed targetMillis. A zero target gives zeros.
func (c Class) WalkDims(targetMillis uint64) (blocks uint64, lanes, steps uint32) {
	if targetMillis == 0 {
		return 0, 0, 0
	}
	blocks = mulDiv(c.MemoryBytes, WalkTablePercent, 100*WalkBlockBytes)
	blocks = min(max(blocks, walkMinBlocks), walkMaxBlocks)
	if budget := max(targetMillis/4, WalkFillBudgetMillis); c.FillExpectedMillis(blocks) > budget {
		// The fill time grows with the blocks: the largest that fits.
		lo, hi := uint64(walkMinBlocks), blocks
		for lo < hi {
			mid := lo + (hi-lo+1)/2
			if c.FillExpectedMillis(mid) <= budget {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		blocks = lo
	}
	lanes = WalkLanes
	for lanes > walkMinLanes && uint64(lanes) > blocks/4 {
		lanes >>= 1
	}
	maxSteps := uint32(min(walkMaxSteps, walkMaxLeaves*WalkLanesPerLeaf/uint64(lanes)))
	lo, hi := uint32(1), maxSteps
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if c.WalkExpectedMillis(blocks, lanes, mid) <= targetMillis {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return blocks, lanes, lo
}

// FillExpectedMillis estimates, in milliseconds (rounded up), how long an
// honest device of the class takes to fill and commit a memory-phase
// table of blocks blocks: WalkFillOpsPerBlock tensor operations per block
// at GEMMEfficiencyPercent of the class's int8 throughput, plus the table
// tree's WalkTableCompressionsPerBlock SHA-256 compressions per block at
// its SHA256PerSec. Writing the table (once, sequentially) is left out.
// A class with zero throughput yields math.MaxUint64.
func (c Class) FillExpectedMillis(blocks uint64) uint64 {
	if blocks == 0 {
		return 0
	}
	gemmRate := satMul(satMul(c.Int8GOPS, c.GEMMEfficiencyPercent), 10_000) // ops per ms
	if gemmRate == 0 || c.SHA256PerSec == 0 {
		return math.MaxUint64
	}
	gemm := mulDivCeil(blocks, WalkFillOpsPerBlock, gemmRate)
	hash := mulDivCeil(blocks, WalkTableCompressionsPerBlock*1000, c.SHA256PerSec)
	return satAdd(gemm, hash)
}

// FillActualMillis is the fill time of hardware hw on a table of blocks
// blocks, whatever it claims: FillExpectedMillis on hw. A device that
// cannot hold the table still generates and hashes every block of it to
// commit to its root.
func (hw Class) FillActualMillis(blocks uint64) uint64 { return hw.FillExpectedMillis(blocks) }

// WalkExpectedMillis estimates, in milliseconds (rounded up), how long an
// honest device of the class takes for a walk of lanes × steps reads over
// a table of blocks blocks, all of which it holds: lanes·steps reads of
// WalkBlockBytes at WalkBandwidthPercent of MemoryBandwidthGBps plus the
// walk tree's WalkCompressionsPerLeaf compressions per WalkLanesPerLeaf
// lane-steps at SHA256PerSec. The fold (a few hundred integer operations
// per block) is left out as ALU work that hides behind the reads. Zero
// dimensions yield 0; a class with zero bandwidth or hashing rate yields
// math.MaxUint64.
func (c Class) WalkExpectedMillis(blocks uint64, lanes, steps uint32) uint64 {
	return c.walkMillis(blocks, blocks, lanes, steps)
}

// WalkActualMillis estimates, in milliseconds (rounded up), how long
// hardware hw needs for the walk of claimed's memory phase with the given
// dimensions (claimed.WalkDims). The time depends only on the dimensions
// and hw; claimed names the class whose walk it is.
//
// hw holds as much of the table as fits in WalkUsableMemoryPercent of its
// memory less WalkReservedBytes. Reads of held blocks, a share h of all
// reads, go at hw's walk bandwidth. Each block it does not hold it must
// produce again for every read of it: regenerate it (WalkFillOpsPerBlock
// tensor operations at hw's effective int8 rate) or stream it from the
// host over HostLinkGBps, and the model lets it do both at once, so the
// missing blocks come at the sum of the two rates. It also lets it produce
// missing blocks while it reads held ones: the walk takes the longer of
// the held reads (with the walk-tree hashing at hw's SHA256PerSec, summed
// as in the honest model) and the production of the missing blocks. For
// a device that holds the whole table it equals hw.WalkExpectedMillis.
func (hw Class) WalkActualMillis(claimed Class, blocks uint64, lanes, steps uint32) uint64 {
	return hw.walkMillis(hw.WalkHeldBlocks(blocks), blocks, lanes, steps)
}

// WalkHeldBlocks returns how many blocks of a table of blocks blocks the
// device can hold during the walk: WalkUsableMemoryPercent of its memory
// less WalkReservedBytes, in blocks, at most blocks.
func (c Class) WalkHeldBlocks(blocks uint64) uint64 {
	usable := mulDiv(c.MemoryBytes, WalkUsableMemoryPercent, 100)
	if usable <= WalkReservedBytes {
		return 0
	}
	return min((usable-WalkReservedBytes)/WalkBlockBytes, blocks)
}

// walkMillis is the walk time of a device of class c that holds held of
// the table's blocks blocks (see WalkActualMillis).
func (c Class) walkMillis(held, blocks uint64, lanes, steps uint32) uint64 {
	if blocks == 0 || lanes == 0 || steps == 0 {
		return 0
	}
	readRate := satMul(satMul(c.MemoryBandwidthGBps, c.WalkBandwidthPercent), 10_000) // bytes per ms
	if readRate == 0 || c.SHA256PerSec == 0 {
		return math.MaxUint64
	}
	reads := uint64(lanes) * uint64(steps)
	heldReads := mulDiv(reads, min(held, blocks), blocks)
	leaves := ceilDiv(reads, WalkLanesPerLeaf)
	t := satAdd(mulDivCeil(heldReads, WalkBlockBytes, readRate), mulDivCeil(leaves, WalkCompressionsPerLeaf*1000, c.SHA256PerSec))
	if missing := reads - heldReads; missing > 0 {
		// Blocks per second, both ways of producing a missing block,
		// overlapped with the held reads.
		regen := mulDiv(satMul(c.Int8GOPS, c.GEMMEfficiencyPercent), 10_000_000, WalkFillOpsPerBlock)
		stream := satMul(c.HostLinkGBps, 1_000_000_000) / WalkBlockBytes
		rate := satAdd(regen, stream)
		if rate == 0 {
			return math.MaxUint64
		}
		t = max(t, mulDivCeil(missing, 1000, rate))
	}
	return t
}

// mulDiv returns ⌊a·b/c⌋, saturating at math.MaxUint64; c must be
// positive.
func mulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return math.MaxUint64
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}

// mulDivCeil returns ⌈a·b/c⌉, saturating at math.MaxUint64; c must be
// positive.
func mulDivCeil(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return math.MaxUint64
	}
	q, r := bits.Div64(hi, lo, c)
	if r != 0 {
		q = satAdd(q, 1)
	}
	return q
}
