package memwalk

import (
	"context"
	"errors"
	"fmt"
	"github.com/truegpu/truegpu/prover/timed"
	"maps"
	"math/bits"
	"runtime"
	"slices"
	"sync"

	"github.com/truegpu/truegpu/internal/parallel"
	"github.com/truegpu/truegpu/internal/sha256tree"
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
// step's subtree (the states of all lanes after that step) and, for a walk
// run here, the states of all lanes every few steps; Open rebuilds the
// subtrees it must open by replaying the walk from the nearest checkpoint.
// A walk run elsewhere (NewWalk) is opened with OpenReplay.
type Walk struct {
	table       *Table
	seed        [SeedSize]byte
	held        func(uint64) bool
	w0, w1      uint64
	every       uint32
	checkpoints [][]uint64
	top         *sha256tree.Tree // over the step roots
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
// next state to timed.Fmix(x ^ 0xA0761D6478BD642F), a value derived from the
// state alone. It models a device that holds only part of the table and
// does not regenerate the rest; its openings are consistent with its
// commitment, so only the fold check can catch it. A nil held holds every
// block.
func (t *Table) WalkPartial(ctx context.Context, walkSeed [SeedSize]byte, workers int, held func(block uint64) bool) (*Walk, error) {
	return t.walk(ctx, walkSeed, workers, held)
}

func (t *Table) walk(ctx context.Context, walkSeed [SeedSize]byte, workers int, held func(uint64) bool) (*Walk, error) {
	s := t.spec
	if t.data == nil {
		return nil, errors.New("memwalk: the table's blocks are not in memory: walk it where they are (NewWalk)")
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	w := &Walk{table: t, seed: walkSeed, held: held, workers: workers}
	w.w0, w.w1 = WalkKeys(t.root, walkSeed)
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
		states[l] = timed.Word(uint64(l), w.w0, w.w1)
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
					partRoots[uint64(step-t0)*parts+p] = sha256tree.ReduceRoot(hashes)
				}
			}()
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("memwalk: walk stopped: %w", err)
		}
		for step := t0; step < t1; step++ {
			stepRoots[step] = sha256tree.ReduceRoot(partRoots[uint64(step-t0)*parts : uint64(step-t0+1)*parts])
		}
	}
	w.commit(stepRoots)
	return w, nil
}

// commit builds the walk tree over the step roots and the commitments.
func (w *Walk) commit(stepRoots [][32]byte) {
	t := w.table
	w.top = sha256tree.BuildOver(stepRoots, bits.Len64(t.spec.groups())-1, w.workers)
	w.treeRoot = w.top.Root()
	w.root = WalkCommit(t.spec, t.nonce, t.root, w.seed, w.treeRoot)
}

// NewWalk returns the Walk over t committed by the step roots of a walk
// for walkSeed run elsewhere (for example on a device): stepRoots[t−1] is
// the root of the subtree over step t's Lanes/8 walk-tree leaves, for
// t = 1 … Steps. It keeps stepRoots and builds the walk tree over them on
// every core. The Walk keeps no states, so Open fails: open it with
// OpenReplay.
func NewWalk(t *Table, walkSeed [SeedSize]byte, stepRoots [][32]byte) (*Walk, error) {
	if uint64(len(stepRoots)) != uint64(t.spec.Steps) {
		return nil, fmt.Errorf("memwalk: %d step roots for a spec with %d steps", len(stepRoots), t.spec.Steps)
	}
	w := &Walk{table: t, seed: walkSeed, workers: runtime.GOMAXPROCS(0)}
	w.w0, w.w1 = WalkKeys(t.root, walkSeed)
	w.commit(stepRoots)
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
				x = timed.Fmix(x ^ cheatMix)
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
	if w.checkpoints == nil {
		return nil, errors.New("memwalk: the walk keeps no states: open it with OpenReplay")
	}
	return w.OpenReplay(checkSeed, w.replayer())
}

// A StepReplay recomputes the states of every lane after step t
// (1 ≤ t ≤ Steps) of a committed walk for OpenReplay. It returns the root
// of step t's subtree of the walk tree (its Lanes/8 leaves, leaf g holding
// the states of lanes 8g … 8g+7) and, for each of the given leaves g in
// order, that leaf with its path inside the subtree (log2(Lanes/8) sibling
// hashes, bottom-up). OpenReplay calls it once per step it opens, in
// increasing step order, with the leaves ascending.
type StepReplay func(step uint32, leaves []uint64) (subtreeRoot [32]byte, opened []StateLeaf, err error)

// OpenReplay is Open with the states of the opened steps recomputed by
// replay; the blocks read come from the table. It fails when a replayed
// subtree root differs from the committed step root or an opened leaf does
// not lead to it.
func (w *Walk) OpenReplay(checkSeed [SeedSize]byte, replay StepReplay) ([]byte, error) {
	o, err := w.openings(checkSeed, replay)
	if err != nil {
		return nil, err
	}
	return o.Encode(), nil
}

// replayer returns the StepReplay of a walk run here: it restores the
// states of all lanes from the nearest checkpoint at or before the step
// (or keeps advancing its own when they are nearer), advances them to the
// step and hashes the step's subtree.
func (w *Walk) replayer() StepReplay {
	s := w.table.spec
	groups := s.groups()
	cur := make([]uint64, s.Lanes)
	curStep := ^uint32(0)
	return func(t uint32, want []uint64) ([32]byte, []StateLeaf, error) {
		k := min(t/w.every, uint32(len(w.checkpoints)-1))
		if curStep == ^uint32(0) || curStep < k*w.every || curStep > t {
			copy(cur, w.checkpoints[k])
			curStep = k * w.every
		}
		parallel.Range(len(cur), w.workers, 64, func(lo, hi int) {
			w.advance(cur[lo:hi], t-curStep)
		})
		curStep = t
		hashes := make([][32]byte, groups)
		for g := range hashes {
			hashes[g] = stateHash(uint64(t-1)*groups+uint64(g), (*[LeafLanes]uint64)(cur[g*LeafLanes:]))
		}
		sub := sha256tree.Build(hashes, w.workers)
		opened := make([]StateLeaf, len(want))
		for i, g := range want {
			copy(opened[i].States[:], cur[g*LeafLanes:])
			opened[i].Path = sub.Path(g)
		}
		return sub.Root(), opened, nil
	}
}

func (w *Walk) openings(checkSeed [SeedSize]byte, replay StepReplay) (*Openings, error) {
	s := w.table.spec
	checks := DrawChecks(s, w.root, checkSeed)
	type key struct {
		step uint32
		g    uint64
	}
	wanted := make(map[uint32][]uint64) // step → leaves of the step, ascending
	for _, c := range checks {
		g := uint64(c.Lane / LeafLanes)
		if c.Step > 0 {
			wanted[c.Step] = append(wanted[c.Step], g)
		}
		wanted[c.Step+1] = append(wanted[c.Step+1], g)
	}
	need := slices.Sorted(maps.Keys(wanted))
	leaves := make(map[key]StateLeaf)
	groups := s.groups()
	subDepth := bits.Len64(groups) - 1
	for _, t := range need {
		gs := wanted[t]
		slices.Sort(gs)
		gs = slices.Compact(gs)
		subRoot, opened, err := replay(t, gs)
		if err != nil {
			return nil, fmt.Errorf("memwalk: replay step %d: %w", t, err)
		}
		if subRoot != w.top.Leaf(uint64(t-1)) {
			return nil, fmt.Errorf("memwalk: replayed step %d does not match its committed subtree", t)
		}
		if len(opened) != len(gs) {
			return nil, fmt.Errorf("memwalk: replay of step %d opened %d leaves, want %d", t, len(opened), len(gs))
		}
		top := w.top.Path(uint64(t - 1))
		for i, g := range gs {
			leaf := opened[i]
			if len(leaf.Path) != subDepth || sha256tree.PathRoot(g, stateHash(uint64(t-1)*groups+g, &leaf.States), leaf.Path) != subRoot {
				return nil, fmt.Errorf("memwalk: replayed leaf %d of step %d does not lead to its subtree root", g, t)
			}
			leaf.Path = slices.Concat(leaf.Path, top)
			leaves[key{t, g}] = leaf
		}
	}

	o := &Openings{TableTreeRoot: w.table.treeRoot, WalkTreeRoot: w.treeRoot}
	for _, c := range checks {
		g := uint64(c.Lane / LeafLanes)
		var op CheckOpening
		var x uint64
		if c.Step == 0 {
			x = timed.Word(uint64(c.Lane), w.w0, w.w1)
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
		var err error
		if op.Block, err = w.table.blockCopy(a); err != nil {
			return nil, err
		}
		op.BlockPath = w.table.tree.Path(a)
		o.Checks = append(o.Checks, op)
	}
	return o, nil
}
