package memwalk

import (
	"fmt"
	"github.com/truegpu/truegpu/prover/timed"

	"github.com/truegpu/truegpu/internal/sha256tree"
)

// Verify checks a node's openings against its recorded table and walk
// commitments for the oracle's walk and check seeds: the openings must
// decode, bind to tableRoot and walkRoot through TableCommit and
// WalkCommit, answer exactly the checks of DrawChecks(s, walkRoot,
// checkSeed), and for each check carry a before-state (derived at step 0)
// and after-state whose walk paths lead to the walk tree root, the block
// the before-state addresses with a table path to the table tree root, a
// fold of that block giving the after-state, and FillChecks block bytes
// equal to their native regeneration. Its memory and time do not depend on
// the table size beyond the path lengths.
func Verify(s Spec, nonce [32]byte, tableRoot [32]byte, walkSeed [SeedSize]byte, walkRoot [32]byte, checkSeed [SeedSize]byte, openings []byte) error {
	if err := s.Validate(); err != nil {
		return err
	}
	o, err := DecodeOpenings(openings)
	if err != nil {
		return err
	}
	if TableCommit(s, nonce, o.TableTreeRoot) != tableRoot {
		return fmt.Errorf("%w (table)", ErrRootMismatch)
	}
	if WalkCommit(s, nonce, tableRoot, walkSeed, o.WalkTreeRoot) != walkRoot {
		return fmt.Errorf("%w (walk)", ErrRootMismatch)
	}
	checks := DrawChecks(s, walkRoot, checkSeed)
	if len(o.Checks) != len(checks) {
		return fmt.Errorf("%w: %d checks answered, %d drawn", ErrMalformed, len(o.Checks), len(checks))
	}
	return verifyChecks(s, nonce, tableRoot, walkSeed, o, checks)
}

// verifyChecks checks every opened transition against its drawn check.
func verifyChecks(s Spec, nonce [32]byte, tableRoot [32]byte, walkSeed [SeedSize]byte, o *Openings, checks []Check) error {
	keys := tableKeys(nonce)
	w0, w1 := WalkKeys(tableRoot, walkSeed)
	tDepth, wDepth := s.tableDepth(), s.walkDepth()
	groups := s.groups()
	for i, c := range checks {
		op := &o.Checks[i]
		if len(op.Block) != BlockBytes {
			return fmt.Errorf("%w: check %d opens %d block bytes", ErrMalformed, i, len(op.Block))
		}
		if op.After == nil {
			return fmt.Errorf("%w: check %d has no after-leaf", ErrMalformed, i)
		}
		g := uint64(c.Lane / LeafLanes)
		var x uint64
		if c.Step == 0 {
			if op.Before != nil {
				return fmt.Errorf("%w: check %d (lane %d, step 0) has a before-leaf", ErrMalformed, i, c.Lane)
			}
			x = timed.Word(uint64(c.Lane), w0, w1)
		} else {
			if op.Before == nil {
				return fmt.Errorf("%w: check %d (lane %d, step %d) has no before-leaf", ErrMalformed, i, c.Lane, c.Step)
			}
			n := uint64(c.Step-1)*groups + g
			if err := leafPath(n, op.Before, wDepth, o.WalkTreeRoot); err != nil {
				return fmt.Errorf("%w: before-leaf of check %d (lane %d, step %d)", err, i, c.Lane, c.Step)
			}
			x = op.Before.States[c.Lane%LeafLanes]
		}
		a := Address(x, s.Blocks)
		if len(op.BlockPath) != tDepth {
			return fmt.Errorf("%w: block %d of check %d has a path of %d hashes, want %d", ErrPath, a, i, len(op.BlockPath), tDepth)
		}
		if sha256tree.PathRoot(a, blockHash(a, op.Block), op.BlockPath) != o.TableTreeRoot {
			return fmt.Errorf("%w: block %d of check %d", ErrPath, a, i)
		}
		n := uint64(c.Step)*groups + g
		if err := leafPath(n, op.After, wDepth, o.WalkTreeRoot); err != nil {
			return fmt.Errorf("%w: after-leaf of check %d (lane %d, step %d)", err, i, c.Lane, c.Step)
		}
		if Fold(x, op.Block) != op.After.States[c.Lane%LeafLanes] {
			return fmt.Errorf("%w: lane %d, step %d (check %d)", ErrWrongState, c.Lane, c.Step, i)
		}
		for _, j := range c.FillBytes {
			if op.Block[j] != FillByte(keys, a, uint32(j)) {
				return fmt.Errorf("%w: block %d, byte %d (check %d)", ErrWrongBlock, a, j, i)
			}
		}
	}
	return nil
}

// leafPath checks that walk leaf n, with its path of depth hashes, leads
// to root.
func leafPath(n uint64, l *StateLeaf, depth int, root [32]byte) error {
	if len(l.Path) != depth {
		return fmt.Errorf("%w: a path of %d hashes, want %d", ErrPath, len(l.Path), depth)
	}
	if sha256tree.PathRoot(n, stateHash(n, &l.States), l.Path) != root {
		return fmt.Errorf("%w: leaf %d", ErrPath, n)
	}
	return nil
}
