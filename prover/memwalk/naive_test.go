package memwalk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/truegpu/truegpu/prover/timed"
)

// The naive reference below is a straight-line transcription of doc.go:
// every table byte from timed.Cell, every state of every step kept, every
// tree built level by level over all of its padded leaves.

func refFmix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func refKeys(nonce [32]byte) [4]uint64 {
	tn := sha256.Sum256(append([]byte("truegpu/memwalk/v1/table"), nonce[:]...))
	return timed.Key(tn)
}

func refTable(s Spec, nonce [32]byte) []byte {
	keys := refKeys(nonce)
	out := make([]byte, s.Blocks*1024)
	for i := uint64(0); i < s.Blocks; i++ {
		for j := uint32(0); j < 1024; j++ {
			out[i*1024+uint64(j)] = uint8(timed.Cell(timed.Spec{M: 1, N: 1024, K: FillK}, keys, uint32(i), j))
		}
	}
	return out
}

func refFold(x uint64, block []byte) uint64 {
	var b [128]uint64
	for k := range b {
		b[k] = binary.LittleEndian.Uint64(block[8*k:])
	}
	var acc uint64
	for c := uint64(0); c < 32; c++ {
		h := x ^ (c * 0x9E3779B97F4A7C15)
		for k := 4 * c; k < 4*c+4; k++ {
			h = bits.RotateLeft64(h^b[k], 23) * 0xD6E8FEB86659FD93
		}
		acc += h
	}
	return refFmix(acc ^ x)
}

// refLevels returns every level of the padded tree over the leaf hashes.
func refLevels(leaves [][32]byte) [][][32]byte {
	level := append([][32]byte(nil), leaves...)
	for len(level)&(len(level)-1) != 0 {
		level = append(level, sha256.Sum256([]byte{2}))
	}
	levels := [][][32]byte{level}
	for len(level) > 1 {
		var up [][32]byte
		for n := 0; n < len(level); n += 2 {
			up = append(up, sha256.Sum256(append(append([]byte{1}, level[n][:]...), level[n+1][:]...)))
		}
		level = up
		levels = append(levels, level)
	}
	return levels
}

func refPath(levels [][][32]byte, l uint64) [][32]byte {
	p := [][32]byte{}
	for d := 0; d+1 < len(levels); d++ {
		p = append(p, levels[d][(l>>d)^1])
	}
	return p
}

type refWalkResult struct {
	table               []byte
	tableLevels         [][][32]byte
	tableRoot, walkRoot [32]byte
	walkLevels          [][][32]byte
	states              [][]uint64 // states[t][lane], t = 0 … Steps
}

// refRun runs the whole phase naively. held, when non-nil, replaces a
// fold of an unheld block by the partial walk's state-only rule.
func refRun(s Spec, nonce [32]byte, walkSeed [16]byte, table []byte, held func(uint64) bool) *refWalkResult {
	r := &refWalkResult{table: table}
	if r.table == nil {
		r.table = refTable(s, nonce)
	}
	var leaves [][32]byte
	for i := uint64(0); i < s.Blocks; i++ {
		buf := binary.BigEndian.AppendUint64([]byte{0}, i)
		leaves = append(leaves, sha256.Sum256(append(buf, r.table[i*1024:(i+1)*1024]...)))
	}
	r.tableLevels = refLevels(leaves)
	tr := r.tableLevels[len(r.tableLevels)-1][0]
	buf := append([]byte("truegpu/memwalk/v1/table-root"), binary.BigEndian.AppendUint64(nil, s.Blocks)...)
	buf = append(append(buf, nonce[:]...), tr[:]...)
	r.tableRoot = sha256.Sum256(buf)

	h := sha256.Sum256(append(append([]byte("truegpu/memwalk/v1/walk"), r.tableRoot[:]...), walkSeed[:]...))
	w0, w1 := binary.LittleEndian.Uint64(h[0:8]), binary.LittleEndian.Uint64(h[8:16])
	x0 := make([]uint64, s.Lanes)
	for l := range x0 {
		x0[l] = refFmix(refFmix(uint64(l)^w0) ^ w1)
	}
	r.states = [][]uint64{x0}
	for t := uint32(0); t < s.Steps; t++ {
		prev := r.states[t]
		next := make([]uint64, s.Lanes)
		for l, x := range prev {
			hi, _ := bits.Mul64(x, s.Blocks)
			if held == nil || held(hi) {
				next[l] = refFold(x, r.table[hi*1024:(hi+1)*1024])
			} else {
				next[l] = refFmix(x ^ 0xA0761D6478BD642F)
			}
		}
		r.states = append(r.states, next)
	}
	var wl [][32]byte
	for t := uint32(1); t <= s.Steps; t++ {
		for g := uint32(0); g < s.Lanes/8; g++ {
			n := uint64(t-1)*uint64(s.Lanes/8) + uint64(g)
			leaf := binary.BigEndian.AppendUint64([]byte{0}, n)
			for k := uint32(0); k < 8; k++ {
				leaf = binary.LittleEndian.AppendUint64(leaf, r.states[t][8*g+k])
			}
			wl = append(wl, sha256.Sum256(leaf))
		}
	}
	r.walkLevels = refLevels(wl)
	wr := r.walkLevels[len(r.walkLevels)-1][0]
	buf = append([]byte("truegpu/memwalk/v1/walk-root"), binary.BigEndian.AppendUint64(nil, s.Blocks)...)
	buf = binary.BigEndian.AppendUint32(buf, s.Lanes)
	buf = binary.BigEndian.AppendUint32(buf, s.Steps)
	buf = append(append(append(append(buf, nonce[:]...), r.tableRoot[:]...), walkSeed[:]...), wr[:]...)
	r.walkRoot = sha256.Sum256(buf)
	return r
}

type refCheck struct{ lane, step uint32 }

func refChecks(s Spec, walkRoot [32]byte, checkSeed [16]byte) []refCheck {
	var out []refCheck
	want := 16
	if s.Reads() < 16 {
		want = int(s.Reads())
	}
	for q := uint32(0); len(out) < want; q++ {
		buf := append(append([]byte("truegpu/memwalk/v1/check"), walkRoot[:]...), checkSeed[:]...)
		h := sha256.Sum256(binary.BigEndian.AppendUint32(buf, q))
		c := refCheck{uint32(binary.BigEndian.Uint64(h[0:8]) % uint64(s.Lanes)), uint32(binary.BigEndian.Uint64(h[8:16]) % uint64(s.Steps))}
		dup := false
		for _, o := range out {
			dup = dup || o == c
		}
		if !dup {
			out = append(out, c)
		}
	}
	return out
}

// refOpenings writes the wire form of the openings byte by byte.
func refOpenings(s Spec, r *refWalkResult, checkSeed [16]byte) []byte {
	out := append([]byte("TGMW"), 1)
	tr := r.tableLevels[len(r.tableLevels)-1][0]
	wr := r.walkLevels[len(r.walkLevels)-1][0]
	out = append(append(out, tr[:]...), wr[:]...)
	checks := refChecks(s, r.walkRoot, checkSeed)
	out = binary.BigEndian.AppendUint16(out, uint16(len(checks)))
	appendPath := func(p [][32]byte) {
		out = append(out, byte(len(p)))
		for _, h := range p {
			out = append(out, h[:]...)
		}
	}
	appendLeaf := func(t uint32, g uint32) {
		for k := uint32(0); k < 8; k++ {
			out = binary.LittleEndian.AppendUint64(out, r.states[t][8*g+k])
		}
		appendPath(refPath(r.walkLevels, uint64(t-1)*uint64(s.Lanes/8)+uint64(g)))
	}
	for _, c := range checks {
		x := r.states[c.step][c.lane]
		a, _ := bits.Mul64(x, s.Blocks)
		out = append(out, r.table[a*1024:(a+1)*1024]...)
		appendPath(refPath(r.tableLevels, a))
		if c.step == 0 {
			out = append(out, 0)
		} else {
			out = append(out, 1)
			appendLeaf(c.step, c.lane/8)
		}
		appendLeaf(c.step+1, c.lane/8)
	}
	return out
}

func randBytes(r *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

func randNonce(r *rand.Rand) (n [32]byte)      { randBytes(r, n[:]); return }
func randSeed(r *rand.Rand) (s [SeedSize]byte) { randBytes(r, s[:]); return }

func mustFill(t testing.TB, s Spec, nonce [32]byte, workers int) *Table {
	t.Helper()
	tab, err := Fill(context.Background(), s, nonce, workers)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func mustWalk(t testing.TB, tab *Table, seed [SeedSize]byte, workers int) *Walk {
	t.Helper()
	w, err := tab.Walk(context.Background(), seed, workers)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func mustOpen(t testing.TB, w *Walk, seed [SeedSize]byte) []byte {
	t.Helper()
	op, err := w.Open(seed)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

func withCheckpoints(t *testing.T, every uint32, budget uint64) {
	t.Helper()
	oldEvery, oldBudget := checkpointEvery, maxCheckpointBytes
	checkpointEvery, maxCheckpointBytes = every, budget
	t.Cleanup(func() { checkpointEvery, maxCheckpointBytes = oldEvery, oldBudget })
}

func TestMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	cases := []struct {
		s       Spec
		every   uint32
		budget  uint64
		workers []int
	}{
		{Spec{Blocks: 16, Lanes: 8, Steps: 1}, 64, 256 << 20, []int{1, 2}},
		{Spec{Blocks: 16, Lanes: 8, Steps: 3}, 64, 256 << 20, []int{1, 3}},
		{Spec{Blocks: 17, Lanes: 16, Steps: 5}, 64, 256 << 20, []int{1, 2}},   // blocks not a power of two
		{Spec{Blocks: 37, Lanes: 64, Steps: 9}, 2, 256 << 20, []int{1, 3, 8}}, // checkpoints every 2 steps
		{Spec{Blocks: 23, Lanes: 32, Steps: 70}, 64, 256 << 20, []int{2, 5}},  // crosses the 64-step checkpoint
		{Spec{Blocks: 20, Lanes: 8, Steps: 300}, 1, 64 * 8 * 4, []int{1, 2}},  // crosses a chunk; the interval doubles to fit
		{Spec{Blocks: 33, Lanes: 128, Steps: 6}, 3, 256 << 20, []int{4, 16}},  // 16 leaves per step split across workers
	}
	for _, c := range cases {
		withCheckpoints(t, c.every, c.budget)
		nonce, walkSeed := randNonce(r), randSeed(r)
		ref := refRun(c.s, nonce, walkSeed, nil, nil)
		for _, workers := range c.workers {
			tab := mustFill(t, c.s, nonce, workers)
			if !bytes.Equal(tab.data, ref.table) {
				t.Fatalf("%+v workers %d: table differs from the naive table", c.s, workers)
			}
			if tab.Root() != ref.tableRoot {
				t.Fatalf("%+v workers %d: table root %x, naive %x", c.s, workers, tab.Root(), ref.tableRoot)
			}
			if tab.Root() != TableCommit(c.s, nonce, tab.TreeRoot()) || tab.Spec() != c.s {
				t.Fatalf("%+v: table root is not the commitment of its tree root", c.s)
			}
			w := mustWalk(t, tab, walkSeed, workers)
			if w.Root() != ref.walkRoot {
				t.Fatalf("%+v workers %d (checkpoints every %d): walk root %x, naive %x", c.s, workers, w.every, w.Root(), ref.walkRoot)
			}
			for q := 0; q < 3; q++ {
				checkSeed := randSeed(r)
				got := mustOpen(t, w, checkSeed)
				if want := refOpenings(c.s, ref, checkSeed); !bytes.Equal(got, want) {
					t.Fatalf("%+v workers %d: openings differ from the naive openings", c.s, workers)
				}
				if err := Verify(c.s, nonce, tab.Root(), walkSeed, w.Root(), checkSeed, got); err != nil {
					t.Fatalf("%+v: %v", c.s, err)
				}
			}
		}
		if c.budget < 256<<20 {
			tab := mustFill(t, c.s, nonce, 1)
			w := mustWalk(t, tab, walkSeed, 1)
			if uint64(len(w.checkpoints))*uint64(c.s.Lanes)*8 > c.budget || w.every == c.every {
				t.Fatalf("%+v: %d checkpoints every %d steps do not fit %d bytes", c.s, len(w.checkpoints), w.every, c.budget)
			}
		}
	}
}

// TestPrimitivesMatchNaive checks the exported building blocks against the
// naive transcription.
func TestPrimitivesMatchNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	s := Spec{Blocks: 19, Lanes: 8, Steps: 1}
	nonce := randNonce(r)
	table := refTable(s, nonce)
	keys := timed.Key(TableNonce(nonce))
	if keys != refKeys(nonce) {
		t.Fatal("TableNonce differs from its definition")
	}
	out := make([]byte, BlockBytes)
	for _, i := range []uint64{0, 7, 18} {
		Block(s, keys, i, out)
		if !bytes.Equal(out, table[i*1024:(i+1)*1024]) {
			t.Fatalf("Block(%d) differs from the naive table", i)
		}
		for _, j := range []uint32{0, 1, 511, 1023} {
			if FillByte(keys, i, j) != table[i*1024+uint64(j)] {
				t.Fatalf("FillByte(%d, %d) differs from the naive table", i, j)
			}
		}
	}
	for q := 0; q < 50; q++ {
		x := r.Uint64()
		blk := table[(q%19)*1024 : (q%19+1)*1024]
		if Fold(x, blk) != refFold(x, blk) {
			t.Fatalf("Fold(%#x, block %d) differs from the naive fold", x, q%19)
		}
		b := r.Uint64N(1<<32) + 1
		if hi, _ := bits.Mul64(x, b); Address(x, b) != hi || Address(x, b) >= b {
			t.Fatalf("Address(%#x, %d)", x, b)
		}
	}
	if Address(^uint64(0), 100) != 99 || Address(0, 100) != 0 {
		t.Fatal("Address does not span the table")
	}
	tableRoot, walkSeed := randNonce(r), randSeed(r)
	h := sha256.Sum256(append(append([]byte("truegpu/memwalk/v1/walk"), tableRoot[:]...), walkSeed[:]...))
	for _, l := range []uint32{0, 5, 1 << 20} {
		want := refFmix(refFmix(uint64(l)^binary.LittleEndian.Uint64(h[0:8])) ^ binary.LittleEndian.Uint64(h[8:16]))
		if LaneStart(tableRoot, walkSeed, l) != want {
			t.Fatalf("LaneStart(%d)", l)
		}
	}
	for _, sp := range []Spec{{Blocks: 16, Lanes: 8, Steps: 1}, {Blocks: 50, Lanes: 64, Steps: 100}, {Blocks: 1 << 32, Lanes: 1 << 20, Steps: 9000}} {
		root, seed := randNonce(r), randSeed(r)
		got := DrawChecks(sp, root, seed)
		want := refChecks(sp, root, seed)
		if len(got) != len(want) {
			t.Fatalf("%+v: %d checks, naive %d", sp, len(got), len(want))
		}
		for i := range got {
			if got[i].Lane != want[i].lane || got[i].Step != want[i].step {
				t.Fatalf("%+v: check %d is (%d, %d), naive (%d, %d)", sp, i, got[i].Lane, got[i].Step, want[i].lane, want[i].step)
			}
		}
	}
}

// TestWalkPartialMatchesNaive checks the simulated partial walk against
// the naive walk with the same rule, and that it differs from the honest
// walk.
func TestWalkPartialMatchesNaive(t *testing.T) {
	withCheckpoints(t, 4, 256<<20)
	s := Spec{Blocks: 24, Lanes: 16, Steps: 11}
	nonce, walkSeed, checkSeed := [32]byte{5}, [SeedSize]byte{6}, [SeedSize]byte{7}
	held := func(i uint64) bool { return i%3 != 0 }
	ref := refRun(s, nonce, walkSeed, nil, held)
	tab := mustFill(t, s, nonce, 2)
	w, err := tab.WalkPartial(context.Background(), walkSeed, 2, held)
	if err != nil {
		t.Fatal(err)
	}
	if w.Root() != ref.walkRoot {
		t.Fatal("partial walk root differs from the naive partial walk")
	}
	if !bytes.Equal(mustOpen(t, w, checkSeed), refOpenings(s, ref, checkSeed)) {
		t.Fatal("partial walk openings differ from the naive ones")
	}
	if w.Root() == mustWalk(t, tab, walkSeed, 2).Root() {
		t.Fatal("partial walk equals the honest walk")
	}
	all, err := tab.WalkPartial(context.Background(), walkSeed, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if all.Root() != mustWalk(t, tab, walkSeed, 1).Root() {
		t.Fatal("WalkPartial holding every block differs from Walk")
	}
}
