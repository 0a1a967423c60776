package timed

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/truegpu/truegpu/internal/sha256tree"
)

// Verify checks a node's openings against its recorded commitment root for
// the oracle's sample seed: the openings must decode, bind to root through
// Commit(s, nonce, treeRoot), open exactly the distinct leaves holding
// SampleCells(s, root, seed), carry paths of length Depth() that lead to the
// tree root, and hold, at every sampled cell, the low byte of the natively
// recomputed C[i][j]. Its memory does not depend on M·N.
func Verify(s Spec, nonce [32]byte, root [32]byte, seed [SeedSize]byte, openings []byte) error {
	return verify(s, nonce, root, seed, openings, Samples)
}

// verify is Verify checking at most maxCells of the sampled cell values.
func verify(s Spec, nonce [32]byte, root [32]byte, seed [SeedSize]byte, openings []byte, maxCells int) error {
	if err := s.Validate(); err != nil {
		return err
	}
	o, err := DecodeOpenings(openings)
	if err != nil {
		return err
	}
	if Commit(s, nonce, o.TreeRoot) != root {
		return ErrRootMismatch
	}
	cells := SampleCells(s, root, seed)
	leaves := sampledLeaves(cells)
	if len(o.Leaves) != len(leaves) {
		return fmt.Errorf("%w: %d leaves opened, %d sampled", ErrMalformed, len(o.Leaves), len(leaves))
	}
	for i, l := range leaves {
		if o.Leaves[i].Leaf != l {
			return fmt.Errorf("%w: opening %d is leaf %d, want leaf %d", ErrMalformed, i, o.Leaves[i].Leaf, l)
		}
	}
	depth := s.Depth()
	for i := range o.Leaves {
		op := &o.Leaves[i]
		if len(op.Path) != depth {
			return fmt.Errorf("%w: leaf %d has a path of %d hashes, want %d", ErrPath, op.Leaf, len(op.Path), depth)
		}
		if sha256tree.PathRoot(op.Leaf, LeafHash(op.Leaf, op.Bytes[:]), op.Path) != o.TreeRoot {
			return fmt.Errorf("%w: leaf %d", ErrPath, op.Leaf)
		}
	}
	if maxCells > len(cells) {
		maxCells = len(cells)
	}
	want := expectedCells(s, Key(nonce), cells[:maxCells])
	li := 0
	for n, c := range cells[:maxCells] {
		for o.Leaves[li].Leaf != c/LeafCells {
			li++
		}
		if o.Leaves[li].Bytes[c%LeafCells] != want[n] {
			return fmt.Errorf("%w at row %d, column %d", ErrWrongCell, c/uint64(s.N), c%uint64(s.N))
		}
	}
	return nil
}

// parallelCellK is the smallest K at which the sampled cells are
// recomputed on several cores.
const parallelCellK = 2048

// expectedCells returns the low bytes of the natively recomputed cells.
func expectedCells(s Spec, keys [4]uint64, cells []uint64) []uint8 {
	want := make([]uint8, len(cells))
	one := func(n int) {
		c := cells[n]
		want[n] = uint8(Cell(s, keys, uint32(c/uint64(s.N)), uint32(c%uint64(s.N))))
	}
	workers := min(runtime.GOMAXPROCS(0), len(cells))
	if s.K < parallelCellK || workers <= 1 {
		for n := range cells {
			one(n)
		}
		return want
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := w; n < len(cells); n += workers {
				one(n)
			}
		}()
	}
	wg.Wait()
	return want
}
