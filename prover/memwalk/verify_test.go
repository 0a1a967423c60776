package memwalk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/truegpu/truegpu/internal/sha256tree"
)

func TestSpecValidate(t *testing.T) {
	good := []Spec{
		{Blocks: 16, Lanes: 8, Steps: 1},
		{Blocks: 100, Lanes: 16, Steps: 5},
		{Blocks: 1 << 32, Lanes: 1 << 24, Steps: 1 << 19},
		{Blocks: 68 << 20, Lanes: 1 << 20, Steps: 9000},
		{Blocks: 17, Lanes: 1 << 24, Steps: 1 << 19}, // 2^40 walk leaves
	}
	for _, s := range good {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	bad := []Spec{
		{},
		{Blocks: 15, Lanes: 8, Steps: 1},
		{Blocks: 1<<32 + 1, Lanes: 8, Steps: 1},
		{Blocks: 16, Lanes: 0, Steps: 1},
		{Blocks: 16, Lanes: 4, Steps: 1},
		{Blocks: 16, Lanes: 24, Steps: 1},
		{Blocks: 16, Lanes: 1 << 25, Steps: 1},
		{Blocks: 16, Lanes: 8, Steps: 0},
		{Blocks: 16, Lanes: 8, Steps: 1<<24 + 1},
		{Blocks: 16, Lanes: 1 << 24, Steps: 1<<19 + 1}, // over 2^40 walk leaves
	}
	for _, s := range bad {
		err := s.Validate()
		if !errors.Is(err, ErrBadSpec) {
			t.Errorf("%+v: err %v, want ErrBadSpec", s, err)
		} else if !strings.HasPrefix(err.Error(), "memwalk: invalid spec: ") {
			t.Errorf("%+v: message %q gives no reason", s, err)
		}
	}
	if !(Spec{}).IsZero() || (Spec{Steps: 1}).IsZero() {
		t.Error("IsZero")
	}
	s := Spec{Blocks: 68 << 20, Lanes: 1 << 20, Steps: 9000}
	if s.Reads() != 9000<<20 || s.TableBytes() != 68<<30 || s.tableDepth() != 27 || s.walkDepth() != 31 {
		t.Errorf("counts of %+v: reads %d, bytes %d, depths %d and %d", s, s.Reads(), s.TableBytes(), s.tableDepth(), s.walkDepth())
	}
	for l, d := range map[uint64]int{1: 0, 2: 1, 3: 2, 4: 2, 5: 3, 100: 7, 1 << 40: 40} {
		if sha256tree.Depth(l) != d {
			t.Errorf("depth of %d leaves = %d, want %d", l, sha256tree.Depth(l), d)
		}
	}
}

func TestDrawChecks(t *testing.T) {
	s := Spec{Blocks: 16, Lanes: 16, Steps: 3}
	for q := byte(0); q < 50; q++ {
		checks := DrawChecks(s, [32]byte{q}, [SeedSize]byte{q, 1})
		if len(checks) != Checks {
			t.Fatalf("%d checks", len(checks))
		}
		for i, c := range checks {
			if c.Lane >= s.Lanes || c.Step >= s.Steps {
				t.Fatalf("check %+v out of range", c)
			}
			for _, p := range c.FillBytes {
				if p >= BlockBytes {
					t.Fatalf("fill byte position %d", p)
				}
			}
			for _, o := range checks[:i] {
				if o.Lane == c.Lane && o.Step == c.Step {
					t.Fatalf("duplicate check %+v", c)
				}
			}
		}
	}
	if small := DrawChecks(Spec{Blocks: 16, Lanes: 8, Steps: 1}, [32]byte{}, [SeedSize]byte{}); len(small) != 8 {
		t.Fatalf("%d checks of 8 transitions", len(small))
	}
	if !slices.Equal(DrawChecks(s, [32]byte{1}, [SeedSize]byte{2}), DrawChecks(s, [32]byte{1}, [SeedSize]byte{2})) {
		t.Fatal("drawing is not deterministic")
	}
	if slices.Equal(DrawChecks(s, [32]byte{1}, [SeedSize]byte{2}), DrawChecks(s, [32]byte{1}, [SeedSize]byte{3})) {
		t.Fatal("drawing ignores the seed")
	}
	if slices.Equal(DrawChecks(s, [32]byte{1}, [SeedSize]byte{2}), DrawChecks(s, [32]byte{2}, [SeedSize]byte{2})) {
		t.Fatal("drawing ignores the walk root")
	}
	if DrawChecks(Spec{}, [32]byte{}, [SeedSize]byte{}) != nil {
		t.Fatal("invalid spec drawn")
	}
}

func TestOpenVerifyRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, s := range []Spec{{Blocks: 16, Lanes: 8, Steps: 1}, {Blocks: 16, Lanes: 8, Steps: 2}, {Blocks: 29, Lanes: 32, Steps: 7}, {Blocks: 64, Lanes: 256, Steps: 3}} {
		nonce := randNonce(r)
		tab := mustFill(t, s, nonce, 2)
		for range 2 {
			walkSeed := randSeed(r)
			w := mustWalk(t, tab, walkSeed, 2)
			for range 4 {
				checkSeed := randSeed(r)
				op := mustOpen(t, w, checkSeed)
				if err := Verify(s, nonce, tab.Root(), walkSeed, w.Root(), checkSeed, op); err != nil {
					t.Fatalf("%+v: %v", s, err)
				}
				o, err := DecodeOpenings(op)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(o.Encode(), op) {
					t.Fatal("decode then encode does not round-trip")
				}
			}
		}
	}
}

func mutate(t *testing.T, op []byte, f func(o *Openings)) []byte {
	t.Helper()
	o, err := DecodeOpenings(op)
	if err != nil {
		t.Fatal(err)
	}
	f(o)
	return o.Encode()
}

func TestVerifyRejects(t *testing.T) {
	s := Spec{Blocks: 40, Lanes: 32, Steps: 3} // table depth 6, walk depth 4
	nonce, walkSeed := [32]byte{1}, [SeedSize]byte{2}
	tab := mustFill(t, s, nonce, 2)
	w := mustWalk(t, tab, walkSeed, 2)
	tableRoot, walkRoot := tab.Root(), w.Root()
	// A check seed whose first check is at a step above 0 and that also
	// draws a check at step 0.
	var checkSeed [SeedSize]byte
	var checks []Check
	zero, first := -1, -1
	for q := 0; zero < 0; q++ {
		checkSeed = [SeedSize]byte{byte(q), byte(q >> 8), 3}
		checks = DrawChecks(s, walkRoot, checkSeed)
		zero = slices.IndexFunc(checks, func(c Check) bool { return c.Step == 0 })
		if checks[0].Step == 0 {
			zero = -1
		}
	}
	first = slices.IndexFunc(checks[1:], func(c Check) bool { return c.Step > 0 }) + 1
	op := mustOpen(t, w, checkSeed)
	if err := Verify(s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, op); err != nil {
		t.Fatal(err)
	}
	other := LeafLanes - 1 - checks[0].Lane%LeafLanes // another lane of the first check's leaves

	type rejectCase struct {
		name      string
		spec      Spec
		nonce     [32]byte
		tableRoot [32]byte
		walkSeed  [SeedSize]byte
		walkRoot  [32]byte
		checkSeed [SeedSize]byte
		op        []byte
		want, alt error
	}
	cases := []rejectCase{
		{"invalid spec", Spec{Blocks: 40, Lanes: 24, Steps: 3}, nonce, tableRoot, walkSeed, walkRoot, checkSeed, op, ErrBadSpec, nil},
		{"wrong nonce", s, [32]byte{9}, tableRoot, walkSeed, walkRoot, checkSeed, op, ErrRootMismatch, nil},
		{"wrong blocks", Spec{Blocks: 41, Lanes: 32, Steps: 3}, nonce, tableRoot, walkSeed, walkRoot, checkSeed, op, ErrRootMismatch, nil},
		{"wrong lanes", Spec{Blocks: 40, Lanes: 64, Steps: 3}, nonce, tableRoot, walkSeed, walkRoot, checkSeed, op, ErrRootMismatch, nil},
		{"wrong steps", Spec{Blocks: 40, Lanes: 32, Steps: 4}, nonce, tableRoot, walkSeed, walkRoot, checkSeed, op, ErrRootMismatch, nil},
		{"wrong table root", s, nonce, [32]byte{1}, walkSeed, walkRoot, checkSeed, op, ErrRootMismatch, nil},
		{"wrong walk root", s, nonce, tableRoot, walkSeed, [32]byte{1}, checkSeed, op, ErrRootMismatch, nil},
		{"wrong walk seed", s, nonce, tableRoot, [SeedSize]byte{3}, walkRoot, checkSeed, op, ErrRootMismatch, nil},
		{"wrong check seed", s, nonce, tableRoot, walkSeed, walkRoot, [SeedSize]byte{0xee}, op, ErrPath, ErrMalformed},
		{"opened table tree root", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.TableTreeRoot[0] ^= 1 }), ErrRootMismatch, nil},
		{"opened walk tree root", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.WalkTreeRoot[31] ^= 1 }), ErrRootMismatch, nil},
		{"flipped block byte", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.Checks[1].Block[700] ^= 1 }), ErrPath, nil},
		{"flipped block sibling", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.Checks[0].BlockPath[2][5] ^= 1 }), ErrPath, nil},
		{"short block path", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.Checks[0].BlockPath = o.Checks[0].BlockPath[1:] }), ErrPath, nil},
		{"long block path", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.Checks[0].BlockPath = append(o.Checks[0].BlockPath, sha256tree.PadHash(6)) }), ErrPath, nil},
		{"other block", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) {
			// The first check that read another block than check 0.
			j := 1
			for j < len(o.Checks)-1 && bytes.Equal(o.Checks[j].Block, o.Checks[0].Block) {
				j++
			}
			o.Checks[0].Block = slices.Clone(o.Checks[j].Block)
			o.Checks[0].BlockPath = o.Checks[j].BlockPath
		}), ErrPath, nil},
		{"flipped after state", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.Checks[0].After.States[checks[0].Lane%LeafLanes] ^= 1 }), ErrPath, nil},
		{"flipped before state", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.Checks[0].Before.States[checks[0].Lane%LeafLanes] ^= 1 << 63 }), ErrPath, nil},
		{"flipped neighbour state", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.Checks[0].After.States[other] ^= 1 }), ErrPath, nil},
		{"flipped walk sibling", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.Checks[0].After.Path[3][0] ^= 1 }), ErrPath, nil},
		{"flipped before sibling", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.Checks[0].Before.Path[0][0] ^= 1 }), ErrPath, nil},
		{"short walk path", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.Checks[0].After.Path = o.Checks[0].After.Path[:3] }), ErrPath, nil},
		{"after-leaf of another step", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.Checks[0].After = o.Checks[0].Before }), ErrPath, nil},
		{"swapped checks", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) {
			o.Checks[0], o.Checks[first] = o.Checks[first], o.Checks[0]
		}), ErrPath, nil},
		{"before-leaf missing", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.Checks[0].Before = nil }), ErrMalformed, nil},
		{"before-leaf at step 0", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.Checks[zero].Before = o.Checks[0].Before }), ErrMalformed, nil},
		{"missing check", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.Checks = o.Checks[:len(o.Checks)-1] }), ErrMalformed, nil},
		{"extra check", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.Checks = append(o.Checks, o.Checks[0]) }), ErrMalformed, nil},
		{"short block", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, mutate(t, op, func(o *Openings) { o.Checks[0].Block = o.Checks[0].Block[:1023] }), ErrMalformed, nil},
		{"trailing byte", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, append(slices.Clone(op), 0), ErrMalformed, nil},
		{"bad magic", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, append([]byte("TGMX"), op[4:]...), ErrMalformed, nil},
		{"bad version", s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, append([]byte("TGMW\x02"), op[5:]...), ErrMalformed, nil},
	}
	// Byte-level edits: the count, a presence flag and a depth.
	countLess := slices.Clone(op)
	countLess[70]--
	countMore := slices.Clone(op)
	countMore[70]++
	countHuge := slices.Clone(op)
	countHuge[69] = 0xff
	flag := slices.Clone(op)
	flagAt := headerSize + BlockBytes + 1 + 32*s.tableDepth()
	if flag[flagAt] != 1 {
		t.Fatalf("presence flag of check 0 is %d", flag[flagAt])
	}
	flag[flagAt] = 2
	deep := slices.Clone(op)
	deep[headerSize+BlockBytes] = MaxDepth + 1
	for _, e := range []struct {
		name string
		op   []byte
	}{{"count one less", countLess}, {"count one more", countMore}, {"count huge", countHuge}, {"presence flag 2", flag}, {"depth over the limit", deep}} {
		cases = append(cases, rejectCase{e.name, s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, e.op, ErrMalformed, nil})
	}
	for _, c := range cases {
		err := Verify(c.spec, c.nonce, c.tableRoot, c.walkSeed, c.walkRoot, c.checkSeed, c.op)
		if !errors.Is(err, c.want) && (c.alt == nil || !errors.Is(err, c.alt)) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		} else if !strings.HasPrefix(err.Error(), "memwalk: ") {
			t.Errorf("%s: message %q lacks the prefix", c.name, err)
		}
	}
	short := mutate(t, op, func(o *Openings) { o.Checks[0].BlockPath = o.Checks[0].BlockPath[1:] })
	if err := Verify(s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, short); err == nil || !strings.Contains(err.Error(), "path of 5 hashes, want 6") {
		t.Errorf("short block path: err %v does not name the depths", err)
	}
	for n := 0; n < len(op); n++ {
		if err := Verify(s, nonce, tableRoot, walkSeed, walkRoot, checkSeed, op[:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated to %d bytes: err %v", n, err)
		}
	}
}

// cheatTable builds a table whose tree commits to the given blocks.
func cheatTable(s Spec, nonce [32]byte, data []byte) *Table {
	leaves := make([][32]byte, s.Blocks)
	for i := range leaves {
		leaves[i] = blockHash(uint64(i), data[i*BlockBytes:])
	}
	return newTable(s, nonce, data, leaves, 2)
}

// TestVerifyRejectsWrongStateAndBlock plants wrong transitions (a partial
// walk that drops two blocks) and wrong table bytes (one per block,
// committed honestly) and checks that Verify names the first drawn check
// that reads them, with the right sentinel, and passes seeds that miss
// them.
func TestVerifyRejectsWrongStateAndBlock(t *testing.T) {
	s := Spec{Blocks: 16, Lanes: 64, Steps: 4}
	nonce, walkSeed := [32]byte{4}, [SeedSize]byte{5}
	honest := mustFill(t, s, nonce, 1)
	held := func(i uint64) bool { return i != 3 && i != 11 }
	ref := refRun(s, nonce, walkSeed, nil, held)
	pw, err := honest.WalkPartial(context.Background(), walkSeed, 1, held)
	if err != nil {
		t.Fatal(err)
	}
	if pw.Root() != ref.walkRoot {
		t.Fatal("partial walk differs from the naive partial walk")
	}
	sawState, sawPass := false, false
	for q := 0; q < 200 && !(sawState && sawPass); q++ {
		seed := [SeedSize]byte{byte(q), 1}
		err := Verify(s, nonce, honest.Root(), walkSeed, pw.Root(), seed, mustOpen(t, pw, seed))
		want := ""
		for _, c := range DrawChecks(s, pw.Root(), seed) {
			x := ref.states[c.Step][c.Lane]
			a := Address(x, s.Blocks)
			if refFold(x, ref.table[a*1024:(a+1)*1024]) != ref.states[c.Step+1][c.Lane] {
				want = fmt.Sprintf("lane %d, step %d ", c.Lane, c.Step)
				break
			}
		}
		if want == "" {
			sawPass = true
			if err != nil {
				t.Fatalf("seed %d draws no wrong transition: %v", q, err)
			}
			continue
		}
		sawState = true
		if !errors.Is(err, ErrWrongState) || !strings.Contains(err.Error(), want) {
			t.Fatalf("seed %d: err %v, want ErrWrongState at %s", q, err, want)
		}
	}
	if !sawState || !sawPass {
		t.Fatalf("no seed drew (or missed) a wrong transition: %v %v", sawState, sawPass)
	}

	// A table with one garbage byte in every block, committed honestly.
	data := slices.Clone(honest.data)
	for i := uint64(0); i < s.Blocks; i++ {
		data[i*BlockBytes+77] ^= 0x5a
	}
	ct := cheatTable(s, nonce, data)
	cw := mustWalk(t, ct, walkSeed, 1)
	hit, miss := false, false
	for q := 0; q < 3000 && !(hit && miss); q++ {
		seed := [SeedSize]byte{byte(q), byte(q >> 8), 2}
		err := Verify(s, nonce, ct.Root(), walkSeed, cw.Root(), seed, mustOpen(t, cw, seed))
		reads77 := slices.ContainsFunc(DrawChecks(s, cw.Root(), seed), func(c Check) bool { return slices.Contains(c.FillBytes[:], 77) })
		if reads77 {
			hit = true
			if !errors.Is(err, ErrWrongBlock) || !strings.Contains(err.Error(), "byte 77") {
				t.Fatalf("err %v, want ErrWrongBlock at byte 77", err)
			}
		} else {
			miss = true
			if err != nil {
				t.Fatalf("checks missing byte 77: %v", err)
			}
		}
	}
	if !hit || !miss {
		t.Fatal("no seed regenerated (or avoided) byte 77")
	}
}

func TestFillWalkCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := Spec{Blocks: 64, Lanes: 64, Steps: 4}
	if _, err := Fill(ctx, s, [32]byte{}, 2); !errors.Is(err, context.Canceled) {
		t.Fatalf("fill: err %v, want context.Canceled", err)
	}
	tab := mustFill(t, s, [32]byte{}, 2)
	if _, err := tab.Walk(ctx, [SeedSize]byte{}, 2); !errors.Is(err, context.Canceled) {
		t.Fatalf("walk: err %v, want context.Canceled", err)
	}
	if _, err := tab.WalkPartial(ctx, [SeedSize]byte{}, 1, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("partial walk: err %v, want context.Canceled", err)
	}
}

func TestFillRefuses(t *testing.T) {
	if _, err := Fill(context.Background(), Spec{Blocks: 15, Lanes: 8, Steps: 1}, [32]byte{}, 1); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("invalid spec: %v", err)
	}
	_, err := Fill(context.Background(), Spec{Blocks: 68 << 20, Lanes: 1 << 20, Steps: 9000}, [32]byte{}, 1)
	if err == nil || errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("oversized spec: %v", err)
	}
}

func TestDecodeOpeningsLimits(t *testing.T) {
	check := CheckOpening{Block: make([]byte, BlockBytes), BlockPath: make([][32]byte, MaxDepth), After: &StateLeaf{Path: make([][32]byte, MaxDepth)}}
	o := &Openings{Checks: slices.Repeat([]CheckOpening{check}, Checks)}
	if _, err := DecodeOpenings(o.Encode()); err != nil {
		t.Fatalf("%d checks at depth %d: %v", Checks, MaxDepth, err)
	}
	o.Checks = append(o.Checks, check)
	if _, err := DecodeOpenings(o.Encode()); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "exceed the limit") {
		t.Fatalf("%d checks: err %v", Checks+1, err)
	}
	o.Checks = []CheckOpening{check}
	o.Checks[0].BlockPath = make([][32]byte, MaxDepth+1)
	if _, err := DecodeOpenings(o.Encode()); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "exceeds 48") {
		t.Fatalf("depth %d: err %v", MaxDepth+1, err)
	}
	// A count the remaining bytes cannot hold is refused before anything
	// is allocated for it.
	header := (&Openings{}).Encode()
	header[70] = Checks
	if _, err := DecodeOpenings(header); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "cannot hold") {
		t.Fatalf("count without checks: err %v", err)
	}
}

func FuzzDecodeOpenings(f *testing.F) {
	s := Spec{Blocks: 16, Lanes: 8, Steps: 2}
	nonce, walkSeed, checkSeed := [32]byte{4}, [SeedSize]byte{5}, [SeedSize]byte{6}
	tab := mustFill(f, s, nonce, 1)
	w := mustWalk(f, tab, walkSeed, 1)
	op := mustOpen(f, w, checkSeed)
	f.Add(op)
	f.Add(op[:headerSize+BlockBytes+3])
	f.Add([]byte("TGMW\x01"))
	f.Add(append(slices.Clone(op), 1, 2))
	small := &Openings{Checks: []CheckOpening{{Block: make([]byte, BlockBytes), After: &StateLeaf{Path: make([][32]byte, 2)}}}}
	f.Add(small.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := DecodeOpenings(b)
		if err == nil {
			if len(o.Checks) > Checks {
				t.Fatal("too many checks decoded")
			}
			if !bytes.Equal(o.Encode(), b) {
				t.Fatal("decode then encode does not round-trip")
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("decode error %v does not wrap ErrMalformed", err)
		}
		if err := Verify(s, nonce, tab.Root(), walkSeed, w.Root(), checkSeed, b); err == nil && !bytes.Equal(b, op) {
			t.Fatal("verify accepted openings other than the honest ones")
		}
	})
}
