package memwalk

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

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

// Table is a filled table held in memory: every block, its leaf hash and
// every level of the table tree.
type Table struct {
	spec     Spec
	nonce    [32]byte
	keys     [4]uint64
	data     []byte
	tree     *tree
	treeRoot [32]byte
	root     [32]byte
}

// Spec returns the table's spec.
func (t *Table) Spec() Spec { return t.spec }

// TreeRoot returns the table tree's root.
func (t *Table) TreeRoot() [32]byte { return t.treeRoot }

// Root returns the table commitment TableCommit(Spec(), nonce, TreeRoot()).
func (t *Table) Root() [32]byte { return t.root }

// block returns block i of the table (not a copy).
func (t *Table) block(i uint64) []byte {
	return t.data[i*BlockBytes : (i+1)*BlockBytes : (i+1)*BlockBytes]
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
	parallelRangeMin(BlockBytes, workers, 64, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			timed.ColB(fillSpec, keys, uint32(j), bPanel[j*FillK:(j+1)*FillK])
		}
	})
	data := make([]byte, s.TableBytes())
	leaves := make([][32]byte, s.Blocks)
	var next atomic.Uint64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := newFiller(keys, bPanel)
			for ctx.Err() == nil {
				it := next.Add(1) - 1
				if it >= items {
					return
				}
				lo := it * tileBlocks
				hi := min(lo+tileBlocks, s.Blocks)
				f.run(lo, hi, data)
				for i := lo; i < hi; i++ {
					leaves[i] = blockHash(i, data[i*BlockBytes:])
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memwalk: fill stopped: %w", err)
	}
	return newTable(s, nonce, data, leaves, workers), nil
}

// newTable builds a Table over the given blocks and their leaf hashes.
func newTable(s Spec, nonce [32]byte, data []byte, leaves [][32]byte, workers int) *Table {
	t := &Table{spec: s, nonce: nonce, keys: tableKeys(nonce), data: data}
	t.tree = buildTree(leaves, 0, workers)
	t.treeRoot = t.tree.root()
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
		a := f.a2[p*FillK : (p+1)*FillK]
		for k := range a {
			a[k] = int64(r0[k]) + int64(r1[k])<<32
		}
	}
	for c0 := 0; c0 < BlockBytes; c0 += colChunk {
		for p := 0; p < pairs; p++ {
			a := f.a2[p*FillK : (p+1)*FillK]
			acc := &f.acc[p]
			for c := c0; c < c0+colChunk; c += 4 {
				acc[c], acc[c+1], acc[c+2], acc[c+3] = dot4(a,
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
			if r%2 == 0 {
				out[c] = uint8(acc[c]) // the low 32 bits hold the even row's sum
			} else {
				l := int64(int32(uint32(acc[c])))
				out[c] = uint8((acc[c] - l) >> 32)
			}
		}
	}
}

// dot4 returns Σ a[k]·b_c[k] for four columns. Each a[k] packs two rows
// as lo + hi·2^32; the sums are bounded by 128·128·2048 = 2^25 in
// magnitude, so the low 32 bits always hold the low row's sum exactly.
func dot4(a []int64, b0, b1, b2, b3 []int8) (s0, s1, s2, s3 int64) {
	n := len(a)
	b0, b1, b2, b3 = b0[:n], b1[:n], b2[:n], b3[:n]
	k := 0
	for ; k+8 <= n; k += 8 {
		a8 := a[k : k+8 : k+8]
		c0 := b0[k : k+8 : k+8]
		c1 := b1[k : k+8 : k+8]
		c2 := b2[k : k+8 : k+8]
		c3 := b3[k : k+8 : k+8]
		for u := 0; u < 8; u++ {
			x := a8[u]
			s0 += x * int64(c0[u])
			s1 += x * int64(c1[u])
			s2 += x * int64(c2[u])
			s3 += x * int64(c3[u])
		}
	}
	for ; k < n; k++ {
		x := a[k]
		s0 += x * int64(b0[k])
		s1 += x * int64(b1[k])
		s2 += x * int64(b2[k])
		s3 += x * int64(b3[k])
	}
	return
}
