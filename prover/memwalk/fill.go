package memwalk

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"

	"github.com/truegpu/truegpu/internal/int8gemm"
	"github.com/truegpu/truegpu/internal/parallel"
	"github.com/truegpu/truegpu/internal/sha256tree"
	"github.com/truegpu/truegpu/prover/timed"
)

const (
	// tileBlocks is the number of blocks (rows of A) per fill work item
	// (an even number: rows are processed in packed pairs).
	tileBlocks = 16
	// colChunk is the number of columns of B processed together, so that
	// their 256 KiB stay in cache across the tile's rows.
	colChunk = 256
)

// maxTableBytes is the largest table the reference Fill holds in memory.
var maxTableBytes uint64 = 4 << 30

// Table is a committed table: every level of the table tree and, for a
// table filled here, every block in memory. A table filled elsewhere
// (NewTable) reads its blocks through the function it was given.
type Table struct {
	spec      Spec
	nonce     [32]byte
	data      []byte
	readBlock func(i uint64) ([]byte, error)
	tree      *sha256tree.Tree
	treeRoot  [32]byte
	root      [32]byte
}

// Spec returns the table's spec.
func (t *Table) Spec() Spec { return t.spec }

// TreeRoot returns the table tree's root.
func (t *Table) TreeRoot() [32]byte { return t.treeRoot }

// Root returns the table commitment TableCommit(Spec(), nonce, TreeRoot()).
func (t *Table) Root() [32]byte { return t.root }

// block returns block i of a table held in memory (not a copy).
func (t *Table) block(i uint64) []byte {
	return t.data[i*BlockBytes : (i+1)*BlockBytes : (i+1)*BlockBytes]
}

// blockCopy returns a copy of block i, read from memory or through the
// table's block reader.
func (t *Table) blockCopy(i uint64) ([]byte, error) {
	if t.data != nil {
		return slices.Clone(t.block(i)), nil
	}
	b, err := t.readBlock(i)
	if err != nil {
		return nil, fmt.Errorf("memwalk: read block %d: %w", i, err)
	}
	if len(b) != BlockBytes {
		return nil, fmt.Errorf("memwalk: block %d has %d bytes, want %d", i, len(b), BlockBytes)
	}
	return slices.Clone(b), nil
}

// Fill generates the table for s and nonce on workers goroutines
// (runtime.GOMAXPROCS when workers ≤ 0) and commits to it. It works in
// tiles of 16 blocks and stops between tiles when ctx is done. It refuses
// tables larger than the reference implementation holds in memory (4 GiB).
func Fill(ctx context.Context, s Spec, nonce [32]byte, workers int) (*Table, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.TableBytes() > maxTableBytes {
		return nil, fmt.Errorf("memwalk: a table of %d bytes exceeds the %d bytes the reference fill holds in memory", s.TableBytes(), maxTableBytes)
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	items := (s.Blocks + tileBlocks - 1) / tileBlocks
	if uint64(workers) > items {
		workers = int(items)
	}
	keys := tableKeys(nonce)
	// B is shared by every block: column j of B, K-contiguous.
	bPanel := make([]int8, BlockBytes*FillK)
	parallel.Range(BlockBytes, workers, 64, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			timed.ColB(fillSpec, keys, uint32(j), bPanel[j*FillK:(j+1)*FillK])
		}
	})
	data := make([]byte, s.TableBytes())
	leaves := make([][32]byte, s.Blocks)
	err := parallel.Items(ctx, items, workers, func() func(uint64) {
		f := newFiller(keys, bPanel)
		return func(it uint64) {
			lo := it * tileBlocks
			hi := min(lo+tileBlocks, s.Blocks)
			f.run(lo, hi, data)
			for i := lo; i < hi; i++ {
				leaves[i] = blockHash(i, data[i*BlockBytes:])
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("memwalk: fill stopped: %w", err)
	}
	return newTable(s, nonce, data, leaves, workers), nil
}

// NewTable returns the Table of a table filled elsewhere (for example in
// device memory) from its leaf hashes in block order, leafHashes[i] =
// SHA-256(0x00 ‖ be64(i) ‖ block i); it keeps leafHashes and builds the
// table tree over them on every core. readBlock returns the BlockBytes
// bytes of block i when an opening needs them; it runs on the goroutine
// that calls OpenReplay, one block at a time. The Table holds no blocks,
// so it cannot be walked here (Walk fails): commit a walk run where the
// blocks are with NewWalk.
func NewTable(s Spec, nonce [32]byte, leafHashes [][32]byte, readBlock func(i uint64) ([]byte, error)) (*Table, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if uint64(len(leafHashes)) != s.Blocks {
		return nil, fmt.Errorf("memwalk: %d leaf hashes for a spec with %d blocks", len(leafHashes), s.Blocks)
	}
	if readBlock == nil {
		return nil, errors.New("memwalk: NewTable needs a block reader")
	}
	t := newTable(s, nonce, nil, leafHashes, runtime.GOMAXPROCS(0))
	t.readBlock = readBlock
	return t, nil
}

// newTable builds a Table over the given blocks (nil when they are not in
// memory) and their leaf hashes.
func newTable(s Spec, nonce [32]byte, data []byte, leaves [][32]byte, workers int) *Table {
	t := &Table{spec: s, nonce: nonce, data: data}
	t.tree = sha256tree.Build(leaves, workers)
	t.treeRoot = t.tree.Root()
	t.root = TableCommit(s, nonce, t.treeRoot)
	return t
}

// filler is one worker's scratch: the packed A rows of a tile and the
// accumulators.
type filler struct {
	keys   [4]uint64
	bPanel []int8
	row    []int8
	a2     []int64
	acc    [tileBlocks / 2][BlockBytes]int64
}

func newFiller(keys [4]uint64, bPanel []int8) *filler {
	return &filler{
		keys:   keys,
		bPanel: bPanel,
		row:    make([]int8, 2*FillK),
		a2:     make([]int64, tileBlocks/2*FillK),
	}
}

// run computes blocks lo … hi−1 (at most tileBlocks) into data.
func (f *filler) run(lo, hi uint64, data []byte) {
	rows := int(hi - lo)
	pairs := (rows + 1) / 2
	for p := 0; p < pairs; p++ {
		r0, r1 := f.row[:FillK], f.row[FillK:]
		timed.RowA(fillSpec, f.keys, uint32(lo)+uint32(2*p), r0)
		if 2*p+1 < rows {
			timed.RowA(fillSpec, f.keys, uint32(lo)+uint32(2*p+1), r1)
		} else {
			clear(r1)
		}
		// A row's sums are bounded by 128·128·2048 = 2^25 in magnitude,
		// well inside what a packed pair holds exactly.
		int8gemm.PackPair(f.a2[p*FillK:(p+1)*FillK], r0, r1)
	}
	for c0 := 0; c0 < BlockBytes; c0 += colChunk {
		for p := 0; p < pairs; p++ {
			a := f.a2[p*FillK : (p+1)*FillK]
			acc := &f.acc[p]
			for c := c0; c < c0+colChunk; c += 4 {
				acc[c], acc[c+1], acc[c+2], acc[c+3] = int8gemm.Dot4(a,
					f.bPanel[c*FillK:(c+1)*FillK],
					f.bPanel[(c+1)*FillK:(c+2)*FillK],
					f.bPanel[(c+2)*FillK:(c+3)*FillK],
					f.bPanel[(c+3)*FillK:(c+4)*FillK])
			}
		}
	}
	for r := 0; r < rows; r++ {
		acc := &f.acc[r/2]
		out := data[(lo+uint64(r))*BlockBytes : (lo+uint64(r)+1)*BlockBytes]
		for c := range out {
			even, odd := int8gemm.UnpackPair(acc[c])
			if r%2 == 0 {
				out[c] = uint8(even)
			} else {
				out[c] = uint8(odd)
			}
		}
	}
}
