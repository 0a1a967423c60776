package memwalk

import (
	"bytes"
	"context"
	"errors"
	"math/bits"
	"strings"
	"testing"
)

// naiveReplay answers OpenReplay from the naive run: the states after the
// step and the step's subtree of the naive walk tree. It checks that steps
// increase and leaves ascend.
func naiveReplay(t *testing.T, s Spec, ref *refWalkResult) StepReplay {
	groups := uint64(s.Lanes / LeafLanes)
	h := bits.Len64(groups) - 1
	last := uint32(0)
	return func(step uint32, leaves []uint64) ([32]byte, []StateLeaf, error) {
		if step <= last || step > s.Steps {
			t.Errorf("replay of step %d after step %d", step, last)
		}
		last = step
		var out []StateLeaf
		for i, g := range leaves {
			if i > 0 && g <= leaves[i-1] {
				t.Errorf("step %d: leaves %v not ascending", step, leaves)
			}
			var l StateLeaf
			copy(l.States[:], ref.states[step][g*LeafLanes:])
			n := uint64(step-1)*groups + g
			for d := range h {
				l.Path = append(l.Path, ref.walkLevels[d][(n>>d)^1])
			}
			out = append(out, l)
		}
		return ref.walkLevels[h][step-1], out, nil
	}
}

// A table and walk committed from hashes computed elsewhere (NewTable from
// the leaf hashes and a block reader, NewWalk from the step roots) have
// the reference's roots, and OpenReplay fed with the replayed states gives
// the reference's openings byte for byte.
func TestNewTableNewWalkMatchReference(t *testing.T) {
	for _, s := range []Spec{
		{Blocks: 16, Lanes: 8, Steps: 1},
		{Blocks: 37, Lanes: 64, Steps: 9},
		{Blocks: 100, Lanes: 16, Steps: 5},
	} {
		nonce, walkSeed := [32]byte{0xe1, byte(s.Blocks)}, [SeedSize]byte{0xe2}
		tab := mustFill(t, s, nonce, 2)
		leaves := make([][32]byte, s.Blocks)
		for i := range leaves {
			leaves[i] = tab.tree.Leaf(uint64(i))
		}
		reads := 0
		ext, err := NewTable(s, nonce, leaves, func(i uint64) ([]byte, error) {
			reads++
			return tab.block(i), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if ext.Root() != tab.Root() || ext.TreeRoot() != tab.TreeRoot() {
			t.Fatalf("%+v: NewTable root differs from Fill's", s)
		}
		if _, err := ext.Walk(context.Background(), walkSeed, 1); err == nil || !strings.Contains(err.Error(), "not in memory") {
			t.Fatalf("%+v: Walk of a table without blocks: %v", s, err)
		}

		ref := refRun(s, nonce, walkSeed, nil, nil)
		h := bits.Len64(uint64(s.Lanes/LeafLanes)) - 1
		stepRoots := append([][32]byte(nil), ref.walkLevels[h][:s.Steps]...)
		ew, err := NewWalk(ext, walkSeed, stepRoots)
		if err != nil {
			t.Fatal(err)
		}
		rw := mustWalk(t, tab, walkSeed, 1)
		if ew.Root() != rw.Root() || ew.TreeRoot() != rw.TreeRoot() || ew.Root() != ref.walkRoot {
			t.Fatalf("%+v: NewWalk root differs from the reference walk's", s)
		}
		if _, err := ew.Open([SeedSize]byte{1}); err == nil || !strings.Contains(err.Error(), "OpenReplay") {
			t.Fatalf("%+v: Open of a walk without states: %v", s, err)
		}
		for q := range 4 {
			check := [SeedSize]byte{0xe3, byte(q)}
			reads = 0
			got, err := ew.OpenReplay(check, naiveReplay(t, s, ref))
			if err != nil {
				t.Fatal(err)
			}
			if want := mustOpen(t, rw, check); !bytes.Equal(got, want) {
				t.Fatalf("%+v, check seed %d: openings differ from the reference's", s, q)
			}
			if want := refOpenings(s, ref, check); !bytes.Equal(got, want) {
				t.Fatalf("%+v, check seed %d: openings differ from the naive ones", s, q)
			}
			if reads != len(DrawChecks(s, ew.Root(), check)) {
				t.Fatalf("%+v: %d blocks read for %d checks", s, reads, len(DrawChecks(s, ew.Root(), check)))
			}
		}
	}
}

// OpenReplay refuses replayed states that do not match the commitment and
// passes on the replay's and the block reader's errors.
func TestOpenReplayRejects(t *testing.T) {
	s := Spec{Blocks: 37, Lanes: 64, Steps: 9}
	nonce, walkSeed, check := [32]byte{0xe4}, [SeedSize]byte{0xe5}, [SeedSize]byte{0xe6}
	tab := mustFill(t, s, nonce, 1)
	w := mustWalk(t, tab, walkSeed, 1)
	ref := refRun(s, nonce, walkSeed, nil, nil)
	errReplay := errors.New("replay failed")
	wrap := func(f func(root *[32]byte, leaves []StateLeaf) error) StepReplay {
		honest := naiveReplay(t, s, ref)
		return func(step uint32, leaves []uint64) ([32]byte, []StateLeaf, error) {
			root, out, _ := honest(step, leaves)
			return root, out, f(&root, out)
		}
	}
	for _, tc := range []struct {
		name   string
		replay StepReplay
		want   string
	}{
		{"wrong subtree root", wrap(func(root *[32]byte, _ []StateLeaf) error { root[0] ^= 1; return nil }), "does not match its committed subtree"},
		{"wrong state", wrap(func(_ *[32]byte, l []StateLeaf) error { l[0].States[3]++; return nil }), "does not lead to its subtree root"},
		{"wrong path", wrap(func(_ *[32]byte, l []StateLeaf) error { l[0].Path[0][5] ^= 1; return nil }), "does not lead to its subtree root"},
		{"short path", wrap(func(_ *[32]byte, l []StateLeaf) error { l[0].Path = l[0].Path[1:]; return nil }), "does not lead to its subtree root"},
		{"replay error", wrap(func(*[32]byte, []StateLeaf) error { return errReplay }), "replay failed"},
	} {
		_, err := w.OpenReplay(check, tc.replay)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
		if tc.name == "replay error" && !errors.Is(err, errReplay) {
			t.Errorf("replay error not wrapped: %v", err)
		}
	}
	if _, err := w.OpenReplay(check, wrap(func(_ *[32]byte, l []StateLeaf) error { return nil })); err != nil {
		t.Fatalf("honest replay: %v", err)
	}
	honest := naiveReplay(t, s, ref)
	missing := func(step uint32, leaves []uint64) ([32]byte, []StateLeaf, error) {
		root, out, err := honest(step, leaves)
		return root, out[1:], err
	}
	if _, err := w.OpenReplay(check, missing); err == nil || !strings.Contains(err.Error(), "opened") {
		t.Errorf("replay with a leaf missing: %v", err)
	}

	leaves := make([][32]byte, s.Blocks)
	for i := range leaves {
		leaves[i] = tab.tree.Leaf(uint64(i))
	}
	errRead := errors.New("read failed")
	for _, tc := range []struct {
		name string
		read func(uint64) ([]byte, error)
		want string
	}{
		{"read error", func(uint64) ([]byte, error) { return nil, errRead }, "read failed"},
		{"short block", func(i uint64) ([]byte, error) { return tab.block(i)[:10], nil }, "has 10 bytes"},
	} {
		ext, err := NewTable(s, nonce, leaves, tc.read)
		if err != nil {
			t.Fatal(err)
		}
		ew, err := NewWalk(ext, walkSeed, ref.walkLevels[bits.Len64(uint64(s.Lanes/LeafLanes))-1][:s.Steps])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ew.OpenReplay(check, naiveReplay(t, s, ref)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}

// NewTable and NewWalk refuse inputs that do not fit the spec.
func TestNewTableNewWalkRefuse(t *testing.T) {
	s := Spec{Blocks: 16, Lanes: 8, Steps: 3}
	read := func(uint64) ([]byte, error) { return make([]byte, BlockBytes), nil }
	if _, err := NewTable(Spec{Blocks: 1, Lanes: 8, Steps: 1}, [32]byte{}, make([][32]byte, 1), read); !errors.Is(err, ErrBadSpec) {
		t.Errorf("invalid spec: %v", err)
	}
	if _, err := NewTable(s, [32]byte{}, make([][32]byte, 15), read); err == nil {
		t.Error("15 leaf hashes for 16 blocks accepted")
	}
	if _, err := NewTable(s, [32]byte{}, make([][32]byte, 16), nil); err == nil {
		t.Error("nil block reader accepted")
	}
	tab, err := NewTable(s, [32]byte{}, make([][32]byte, 16), read)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewWalk(tab, [SeedSize]byte{}, make([][32]byte, 2)); err == nil {
		t.Error("2 step roots for 3 steps accepted")
	}
}
