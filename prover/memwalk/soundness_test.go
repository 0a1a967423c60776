package memwalk

import (
	"context"
	"errors"
	"github.com/truegpu/truegpu/prover/timed"
	"math/rand/v2"
	"testing"

	"github.com/truegpu/truegpu/internal/sha256tree"
)

// plantedVerify is a copy of Verify with a planted bug: when skipFold is
// set it does not compare the fold of the block with the after-state, and
// when skipFill is set it does not regenerate the block bytes. It exists
// to show that the soundness tests below fail on a broken verifier.
func plantedVerify(s Spec, nonce, tableRoot [32]byte, walkSeed [SeedSize]byte, walkRoot [32]byte, checkSeed [SeedSize]byte, openings []byte, skipFold, skipFill bool) error {
	if err := s.Validate(); err != nil {
		return err
	}
	o, err := DecodeOpenings(openings)
	if err != nil {
		return err
	}
	if TableCommit(s, nonce, o.TableTreeRoot) != tableRoot || WalkCommit(s, nonce, tableRoot, walkSeed, o.WalkTreeRoot) != walkRoot {
		return ErrRootMismatch
	}
	checks := DrawChecks(s, walkRoot, checkSeed)
	if len(o.Checks) != len(checks) {
		return ErrMalformed
	}
	keys := tableKeys(nonce)
	groups := s.groups()
	for i, c := range checks {
		op := &o.Checks[i]
		g := uint64(c.Lane / LeafLanes)
		x := LaneStart(tableRoot, walkSeed, c.Lane)
		if c.Step > 0 {
			if op.Before == nil {
				return ErrMalformed
			}
			if err := leafPath(uint64(c.Step-1)*groups+g, op.Before, s.walkDepth(), o.WalkTreeRoot); err != nil {
				return err
			}
			x = op.Before.States[c.Lane%LeafLanes]
		}
		a := Address(x, s.Blocks)
		if len(op.BlockPath) != s.tableDepth() || sha256tree.PathRoot(a, blockHash(a, op.Block), op.BlockPath) != o.TableTreeRoot {
			return ErrPath
		}
		if err := leafPath(uint64(c.Step)*groups+g, op.After, s.walkDepth(), o.WalkTreeRoot); err != nil {
			return err
		}
		if !skipFold && Fold(x, op.Block) != op.After.States[c.Lane%LeafLanes] {
			return ErrWrongState
		}
		for _, j := range c.FillBytes {
			if !skipFill && op.Block[j] != FillByte(keys, a, uint32(j)) {
				return ErrWrongBlock
			}
		}
	}
	return nil
}

// TestPlantedVerifyAgrees checks that the planted verifier with no bug
// planted agrees with Verify on honest and cheating openings, so the
// soundness tests compare like with like.
func TestPlantedVerifyAgrees(t *testing.T) {
	s := Spec{Blocks: 32, Lanes: 32, Steps: 8}
	nonce := [32]byte{8}
	tab := mustFill(t, s, nonce, 2)
	r := rand.New(rand.NewPCG(9, 10))
	for q := 0; q < 20; q++ {
		walkSeed, checkSeed := randSeed(r), randSeed(r)
		var w *Walk
		if q%2 == 0 {
			w = mustWalk(t, tab, walkSeed, 2)
		} else {
			var err error
			w, err = tab.WalkPartial(context.Background(), walkSeed, 2, func(i uint64) bool { return i%4 != 0 })
			if err != nil {
				t.Fatal(err)
			}
		}
		op := mustOpen(t, w, checkSeed)
		got := Verify(s, nonce, tab.Root(), walkSeed, w.Root(), checkSeed, op)
		want := plantedVerify(s, nonce, tab.Root(), walkSeed, w.Root(), checkSeed, op, false, false)
		if sentinel(got) != sentinel(want) {
			t.Fatalf("trial %d: Verify %v, planted copy %v", q, got, want)
		}
	}
}

// sentinel returns the package error err wraps, or nil.
func sentinel(err error) error {
	for _, e := range []error{ErrBadSpec, ErrMalformed, ErrRootMismatch, ErrPath, ErrWrongBlock, ErrWrongState} {
		if errors.Is(err, e) {
			return e
		}
	}
	return err
}

// TestSoundnessPartialTable runs a cheater that holds a fraction p = 0.6
// of the blocks and neither reads nor regenerates the rest (WalkPartial):
// about 40% of its transitions are wrong, so it passes 16 checks with
// probability about 0.6^16 ≈ 2.8·10^-4. Over 200 fresh walk and check
// seeds it must pass at most a few times. A verifier with the fold check
// removed lets the same cheater through every time, so the test can fail.
func TestSoundnessPartialTable(t *testing.T) {
	s := Spec{Blocks: 64, Lanes: 64, Steps: 32}
	nonce := [32]byte{0x60}
	tab := mustFill(t, s, nonce, 0)
	r := rand.New(rand.NewPCG(15, 16))
	heldSet := make([]bool, s.Blocks)
	for _, i := range r.Perm(int(s.Blocks))[:s.Blocks*6/10] {
		heldSet[i] = true
	}
	held := func(i uint64) bool { return heldSet[i] }
	const trials = 200
	passed, plantedPassed, wrong := 0, 0, 0
	for q := 0; q < trials; q++ {
		walkSeed, checkSeed := randSeed(r), randSeed(r)
		w, err := tab.WalkPartial(context.Background(), walkSeed, 0, held)
		if err != nil {
			t.Fatal(err)
		}
		op := mustOpen(t, w, checkSeed)
		err = Verify(s, nonce, tab.Root(), walkSeed, w.Root(), checkSeed, op)
		if err == nil {
			passed++
		} else if !errors.Is(err, ErrWrongState) {
			t.Fatalf("cheater failed for another reason: %v", err)
		}
		if plantedVerify(s, nonce, tab.Root(), walkSeed, w.Root(), checkSeed, op, true, false) == nil {
			plantedPassed++
		}
		if q == 0 {
			wrong = wrongTransitions(t, tab, w, s)
		}
	}
	frac := float64(wrong) / float64(s.Reads())
	t.Logf("partial cheater (p = 0.6, %.0f%% wrong transitions) passed %d of %d; with the fold check removed %d", 100*frac, passed, trials, plantedPassed)
	if frac < 0.3 || frac > 0.5 {
		t.Fatalf("%.2f of the cheater's transitions are wrong, expected about 0.4", frac)
	}
	if passed > 3 {
		t.Fatalf("cheater passed %d of %d trials, expected about %.2f", passed, trials, trials*0.00028)
	}
	if plantedPassed < trials*9/10 {
		t.Fatalf("the verifier without the fold check passed the cheater only %d times; the test cannot tell it apart", plantedPassed)
	}
}

// wrongTransitions counts the transitions of a walk whose fold of the
// block read does not give the next state, replaying it with every state
// kept.
func wrongTransitions(t *testing.T, tab *Table, w *Walk, s Spec) int {
	t.Helper()
	states := make([]uint64, s.Lanes)
	for l := range states {
		states[l] = timed.Word(uint64(l), w.w0, w.w1)
	}
	wrong := 0
	for step := uint32(0); step < s.Steps; step++ {
		next := append([]uint64(nil), states...)
		w.advance(next, 1)
		for l, x := range states {
			if Fold(x, tab.block(Address(x, s.Blocks))) != next[l] {
				wrong++
			}
		}
		states = next
	}
	return wrong
}

// TestSoundnessGarbageTable runs a cheater whose table is garbage in 30%
// of the blocks, committed with a consistent tree and walked honestly
// over: a check catches it when it reads a garbage block, so it passes 16
// checks with probability about 0.7^16 ≈ 0.33%. A verifier that does not
// regenerate block bytes lets it through every time.
func TestSoundnessGarbageTable(t *testing.T) {
	s := Spec{Blocks: 40, Lanes: 32, Steps: 16}
	nonce := [32]byte{0x30}
	honest := mustFill(t, s, nonce, 0)
	r := rand.New(rand.NewPCG(17, 18))
	data := append([]byte(nil), honest.data...)
	for _, i := range r.Perm(int(s.Blocks))[:s.Blocks*3/10] {
		randBytes(r, data[i*BlockBytes:(i+1)*BlockBytes])
	}
	cheat := cheatTable(s, nonce, data)
	const trials = 100
	passed, plantedPassed := 0, 0
	for q := 0; q < trials; q++ {
		walkSeed, checkSeed := randSeed(r), randSeed(r)
		w := mustWalk(t, cheat, walkSeed, 0)
		op := mustOpen(t, w, checkSeed)
		err := Verify(s, nonce, cheat.Root(), walkSeed, w.Root(), checkSeed, op)
		if err == nil {
			passed++
		} else if !errors.Is(err, ErrWrongBlock) {
			t.Fatalf("garbage table failed for another reason: %v", err)
		}
		if plantedVerify(s, nonce, cheat.Root(), walkSeed, w.Root(), checkSeed, op, false, true) == nil {
			plantedPassed++
		}
	}
	t.Logf("garbage-table cheater (30%% of blocks) passed %d of %d; without regeneration %d", passed, trials, plantedPassed)
	if passed > 3 {
		t.Fatalf("cheater passed %d of %d trials, expected about %.2f", passed, trials, trials*0.0033)
	}
	if plantedPassed != trials {
		t.Fatalf("the verifier without regeneration passed the cheater only %d times", plantedPassed)
	}
}
