package memwalk

import (
	"context"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"sync"
)

const (
	// chunkSteps is the number of steps the walk's workers run between
	// joins (and the bound on the per-worker subtree roots kept).
	chunkSteps = 256
	// cheatMix is the constant a partial walk mixes into the state when it
	// skips a block it does not hold.
	cheatMix = 0xA0761D6478BD642F
)

var (
	// checkpointEvery is the smallest number of steps between kept state
	// checkpoints.
	checkpointEvery uint32 = 64
	// maxCheckpointBytes bounds the memory of the kept checkpoints; the
	// interval doubles until they fit.
	maxCheckpointBytes uint64 = 256 << 20
)

// Walk is a committed walk over a Table. It keeps the root of every
// step's subtree (the states of all lanes after that step) and the states
// of all lanes every few steps; Open rebuilds the subtrees it must open by
// replaying the walk from the nearest checkpoint.
type Walk struct {
	table       *Table
	seed        [SeedSize]byte
	held        func(uint64) bool
	w0, w1      uint64
	every       uint32
	checkpoints [][]uint64
	top         *tree
	treeRoot    [32]byte
	root        [32]byte
	workers     int
}

// Root returns the walk commitment WalkCommit(spec, nonce, tableRoot,
// walkSeed, TreeRoot()).
func (w *Walk) Root() [32]byte { return w.root }

// TreeRoot returns the walk tree's root.
func (w *Walk) TreeRoot() [32]byte { return w.treeRoot }

// Walk runs every lane of the table's spec for walkSeed on workers
// goroutines (runtime.GOMAXPROCS when workers ≤ 0) and commits to the
// states. It stops between steps when ctx is done.
func (t *Table) Walk(ctx context.Context, walkSeed [SeedSize]byte, workers int) (*Walk, error) {
	return t.walk(ctx, walkSeed, workers, nil)
}

// WalkPartial walks like Walk but, for every read of a block whose index
// has held(i) == false, it does not read the block: it sets the lane's
// next state to fmix(x ^ 0xA0761D6478BD642F), a value derived from the
// state alone. It models a device that holds only part of the table and
// does not regenerate the rest; its openings are consistent with its
// commitment, so only the fold check can catch it. A nil held holds every
// block.
func (t *Table) WalkPartial(ctx context.Context, walkSeed [SeedSize]byte, workers int, held func(block uint64) bool) (*Walk, error) {
	return t.walk(ctx, walkSeed, workers, held)
}

func (t *Table) walk(ctx context.Context, walkSeed [SeedSize]byte, workers int, held func(uint64) bool) (*Walk, error) {
	s := t.spec
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	w := &Walk{table: t, seed: walkSeed, held: held, workers: workers}
	w.w0, w.w1 = walkKeys(t.root, walkSeed)
	w.every = checkpointEvery
	for uint64((s.Steps+w.every-1)/w.every)*uint64(s.Lanes)*8 > maxCheckpointBytes && w.every < s.Steps {
		w.every *= 2
	}
	w.checkpoints = make([][]uint64, (s.Steps+w.every-1)/w.every)
	for k := range w.checkpoints {
		w.checkpoints[k] = make([]uint64, s.Lanes)
	}
	states := make([]uint64, s.Lanes)
	for l := range states {
		states[l] = word(uint64(l), w.w0, w.w1)
	}

	// Lanes are split into parts aligned on power-of-two runs of leaves,
	// so each part's leaves of a step form one subtree.
	groups := s.groups()
	parts := uint64(1)
	for parts*2 <= uint64(workers) && parts*2 <= groups {
		parts *= 2
	}
	groupsPer := groups / parts
	lanesPer := groupsPer * LeafLanes
	partRoots := make([][32]byte, chunkSteps*parts)
	stepRoots := make([][32]byte, s.Steps)
	for t0 := uint32(0); t0 < s.Steps; t0 += chunkSteps {
		t1 := min(t0+chunkSteps, s.Steps)
		var wg sync.WaitGroup
		for p := uint64(0); p < parts; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lo, hi := p*lanesPer, (p+1)*lanesPer
				mine := states[lo:hi]
				hashes := make([][32]byte, groupsPer)
				for step := t0; step < t1; step++ {
					if ctx.Err() != nil {
						return
					}
					if step%w.every == 0 {
						copy(w.checkpoints[step/w.every][lo:hi], mine)
					}
					w.advance(mine, 1)
					leaf0 := uint64(step)*groups + p*groupsPer
					for g := range hashes {
						hashes[g] = stateHash(leaf0+uint64(g), (*[LeafLanes]uint64)(mine[g*LeafLanes:]))
					}
					partRoots[uint64(step-t0)*parts+p] = reduceRoot(hashes)
				}
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("memwalk: walk stopped: %w", err)
		}
		for step := t0; step < t1; step++ {
			stepRoots[step] = reduceRoot(partRoots[uint64(step-t0)*parts : uint64(step-t0+1)*parts])
		}
	}
	w.top = buildTree(stepRoots, bits.Len64(groups)-1, workers)
	w.treeRoot = w.top.root()
	w.root = WalkCommit(s, t.nonce, t.root, walkSeed, w.treeRoot)
	return w, nil
}

// advance runs n steps of the lanes whose states are given.
func (w *Walk) advance(states []uint64, n uint32) {
	blocks := w.table.spec.Blocks
	for l, x := range states {
		for range n {
			a := Address(x, blocks)
			if w.held == nil || w.held(a) {
				x = Fold(x, w.table.block(a))
			} else {
				x = fmix(x ^ cheatMix)
			}
		}
		states[l] = x
	}
}

// Open returns the encoded openings that answer checkSeed: for every
// check of DrawChecks(spec, Root(), checkSeed), in order, the block read
// with its table path and the walk leaves holding the states before (when
// the step is not 0) and after the step with their walk paths.
func (w *Walk) Open(checkSeed [SeedSize]byte) ([]byte, error) {
	o, err := w.openings(checkSeed)
	if err != nil {
		return nil, err
	}
	return o.Encode(), nil
}

func (w *Walk) openings(checkSeed [SeedSize]byte) (*Openings, error) {
	s := w.table.spec
	checks := DrawChecks(s, w.root, checkSeed)
	var need []uint32
	for _, c := range checks {
		if c.Step > 0 {
			need = append(need, c.Step)
		}
		need = append(need, c.Step+1)
	}
	slices.Sort(need)
	need = slices.Compact(need)

	type key struct {
		step uint32
		g    uint64
	}
	wanted := make(map[key]bool)
	for _, c := range checks {
		g := uint64(c.Lane / LeafLanes)
		if c.Step > 0 {
			wanted[key{c.Step, g}] = true
		}
		wanted[key{c.Step + 1, g}] = true
	}
	leaves := make(map[key]StateLeaf)
	groups := s.groups()
	cur := make([]uint64, s.Lanes)
	curStep := ^uint32(0)
	for _, t := range need {
		k := min(t/w.every, uint32(len(w.checkpoints)-1))
		if curStep == ^uint32(0) || curStep < k*w.every || curStep > t {
			copy(cur, w.checkpoints[k])
			curStep = k * w.every
		}
		parallelRangeMin(len(cur), w.workers, 64, func(lo, hi int) {
			w.advance(cur[lo:hi], t-curStep)
		})
		curStep = t
		hashes := make([][32]byte, groups)
		for g := range hashes {
			hashes[g] = stateHash(uint64(t-1)*groups+uint64(g), (*[LeafLanes]uint64)(cur[g*LeafLanes:]))
		}
		sub := buildTree(hashes, 0, w.workers)
		if sub.root() != w.top.levels[0][t-1] {
			return nil, fmt.Errorf("memwalk: replayed step %d does not match its committed subtree", t)
		}
		top := w.top.path(uint64(t - 1))
		for g := uint64(0); g < groups; g++ {
			if !wanted[key{t, g}] {
				continue
			}
			var leaf StateLeaf
			copy(leaf.States[:], cur[g*LeafLanes:])
			leaf.Path = append(sub.path(g), top...)
			leaves[key{t, g}] = leaf
		}
	}

	o := &Openings{TableTreeRoot: w.table.treeRoot, WalkTreeRoot: w.treeRoot}
	for _, c := range checks {
		g := uint64(c.Lane / LeafLanes)
		var op CheckOpening
		var x uint64
		if c.Step == 0 {
			x = word(uint64(c.Lane), w.w0, w.w1)
		} else {
			before := leaves[key{c.Step, g}]
			before.Path = slices.Clone(before.Path)
			op.Before = &before
			x = before.States[c.Lane%LeafLanes]
		}
		after := leaves[key{c.Step + 1, g}]
		after.Path = slices.Clone(after.Path)
		op.After = &after
		a := Address(x, s.Blocks)
		op.Block = slices.Clone(w.table.block(a))
		op.BlockPath = w.table.tree.path(a)
		o.Checks = append(o.Checks, op)
	}
	return o, nil
}
