package timed

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/truegpu/truegpu/internal/sha256tree"
)

func mustCompute(t testing.TB, s Spec, nonce [32]byte) *Result {
	t.Helper()
	res, err := Compute(context.Background(), s, nonce, 2)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func mustOpen(t testing.TB, res *Result, seed [SeedSize]byte) []byte {
	t.Helper()
	op, err := res.Open(seed)
	if err != nil {
		t.Fatal(err)
	}
	return op
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

func TestSpecValidate(t *testing.T) {
	good := []Spec{{1, 256, 8}, {1 << 24, 256, 65536}, {1 << 24, 1 << 24, 8}, {3, 768, 24}}
	for _, s := range good {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	bad := []Spec{{}, {0, 256, 8}, {1, 255, 8}, {1, 384, 8}, {1, 0, 8}, {1, 256, 0}, {1, 256, 12},
		{1, 256, 65544}, {1<<24 + 1, 256, 8}, {1, 1<<24 + 256, 8}}
	for _, s := range bad {
		if err := s.Validate(); !errors.Is(err, ErrBadSpec) {
			t.Errorf("%+v: err %v, want ErrBadSpec", s, err)
		}
	}
	if !(Spec{}).IsZero() || (Spec{M: 1}).IsZero() {
		t.Error("IsZero")
	}
	s := Spec{M: 4096, N: 4096, K: 16384}
	if s.Ops() != 2*4096*4096*16384 || s.Cells() != 4096*4096 || s.Leaves() != 4096*16 {
		t.Errorf("counts of %+v", s)
	}
	if (Spec{M: 1 << 24, N: 1 << 24, K: 65536}).Ops() != ^uint64(0) {
		t.Error("Ops does not saturate")
	}
	for l, d := range map[uint64]int{1: 0, 2: 1, 3: 2, 4: 2, 5: 3, 1 << 40: 40} {
		if sha256tree.Depth(l) != d {
			t.Errorf("depth of %d leaves = %d, want %d", l, sha256tree.Depth(l), d)
		}
	}
}

func TestSampleCells(t *testing.T) {
	s := Spec{M: 3, N: 512, K: 8}
	for q := byte(0); q < 50; q++ {
		cells := SampleCells(s, [32]byte{q}, [SeedSize]byte{q, 1})
		if len(cells) != Samples {
			t.Fatalf("%d cells", len(cells))
		}
		for i, c := range cells {
			if c >= s.Cells() || (i > 0 && c <= cells[i-1]) {
				t.Fatalf("cells %v not distinct, sorted and in range", cells)
			}
		}
	}
	if !slices.Equal(SampleCells(s, [32]byte{1}, [SeedSize]byte{2}), SampleCells(s, [32]byte{1}, [SeedSize]byte{2})) {
		t.Fatal("sampling is not deterministic")
	}
	if slices.Equal(SampleCells(s, [32]byte{1}, [SeedSize]byte{2}), SampleCells(s, [32]byte{1}, [SeedSize]byte{3})) {
		t.Fatal("sampling ignores the seed")
	}
	if SampleCells(Spec{}, [32]byte{}, [SeedSize]byte{}) != nil {
		t.Fatal("invalid spec sampled")
	}
}

func TestOpenVerifyRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, s := range []Spec{{1, 256, 8}, {2, 256, 16}, {7, 768, 32}, {40, 1024, 8}} {
		nonce := randNonce(r)
		res := mustCompute(t, s, nonce)
		for q := 0; q < 5; q++ {
			var seed [SeedSize]byte
			seed[0], seed[1] = byte(q), byte(s.M)
			op := mustOpen(t, res, seed)
			if err := Verify(s, nonce, res.Root(), seed, op); err != nil {
				t.Fatalf("%+v seed %d: %v", s, q, err)
			}
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	s := Spec{M: 40, N: 1024, K: 8} // 160 leaves, depth 8
	nonce := [32]byte{1}
	res := mustCompute(t, s, nonce)
	seed := [SeedSize]byte{9}
	op := mustOpen(t, res, seed)
	root := res.Root()
	o, err := DecodeOpenings(op)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Leaves) < 3 {
		t.Fatalf("only %d leaves opened", len(o.Leaves))
	}
	unsampled := uint64(0)
	for slices.ContainsFunc(o.Leaves, func(x Opening) bool { return x.Leaf == unsampled }) {
		unsampled++
	}
	extra := Opening{Leaf: unsampled, Path: res.tree.Path(unsampled)}
	b, _ := res.LeafBytes(unsampled)
	copy(extra.Bytes[:], b)

	cases := []struct {
		name  string
		spec  Spec
		nonce [32]byte
		root  [32]byte
		op    []byte
		want  error
	}{
		{"invalid spec", Spec{M: 40, N: 1000, K: 8}, nonce, root, op, ErrBadSpec},
		{"wrong nonce", s, [32]byte{2}, root, op, ErrRootMismatch},
		{"wrong spec", Spec{M: 40, N: 1024, K: 16}, nonce, root, op, ErrRootMismatch},
		{"wrong root", s, nonce, [32]byte{1}, op, ErrRootMismatch},
		{"flipped opened byte", s, nonce, root, mutate(t, op, func(o *Openings) { o.Leaves[1].Bytes[5] ^= 1 }), ErrPath},
		{"flipped sibling", s, nonce, root, mutate(t, op, func(o *Openings) { o.Leaves[0].Path[3][0] ^= 1 }), ErrPath},
		{"short path", s, nonce, root, mutate(t, op, func(o *Openings) { o.Leaves[0].Path = o.Leaves[0].Path[1:] }), ErrPath},
		{"long path", s, nonce, root, mutate(t, op, func(o *Openings) { o.Leaves[0].Path = append(o.Leaves[0].Path, sha256tree.PadHash(8)) }), ErrPath},
		{"missing leaf", s, nonce, root, mutate(t, op, func(o *Openings) { o.Leaves = slices.Delete(o.Leaves, 1, 2) }), ErrMalformed},
		{"extra leaf", s, nonce, root, mutate(t, op, func(o *Openings) {
			o.Leaves = append(o.Leaves, extra)
			slices.SortFunc(o.Leaves, func(a, b Opening) int { return int(a.Leaf) - int(b.Leaf) })
		}), ErrMalformed},
		{"substituted leaf", s, nonce, root, mutate(t, op, func(o *Openings) {
			o.Leaves[len(o.Leaves)-1] = extra
			slices.SortFunc(o.Leaves, func(a, b Opening) int { return int(a.Leaf) - int(b.Leaf) })
		}), ErrMalformed},
		{"duplicated leaf", s, nonce, root, mutate(t, op, func(o *Openings) { o.Leaves = slices.Insert(o.Leaves, 1, o.Leaves[1]) }), ErrMalformed},
		{"swapped leaves", s, nonce, root, mutate(t, op, func(o *Openings) { o.Leaves[0], o.Leaves[1] = o.Leaves[1], o.Leaves[0] }), ErrMalformed},
		{"trailing byte", s, nonce, root, append(slices.Clone(op), 0), ErrMalformed},
		{"bad magic", s, nonce, root, append([]byte("TGTX"), op[4:]...), ErrMalformed},
		{"bad version", s, nonce, root, append([]byte("TGTO\x02"), op[5:]...), ErrMalformed},
	}
	for _, c := range cases {
		err := Verify(c.spec, c.nonce, c.root, seed, c.op)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		} else if !strings.HasPrefix(err.Error(), "timed: ") {
			t.Errorf("%s: message %q lacks the prefix", c.name, err)
		}
	}
	for n := 0; n < len(op); n++ {
		if err := Verify(s, nonce, root, seed, op[:n]); !errors.Is(err, ErrMalformed) {
			t.Fatalf("truncated to %d bytes: err %v", n, err)
		}
	}
	if err := Verify(s, nonce, root, [SeedSize]byte{10}, op); err == nil {
		t.Fatal("openings for another seed accepted")
	}
}

// TestVerifyRejectsWrongCell commits to a result with one wrong byte and
// checks that a seed sampling that cell is rejected with the cell named.
func TestVerifyRejectsWrongCell(t *testing.T) {
	s := Spec{M: 2, N: 256, K: 16}
	nonce := GoldenNonce
	honest := mustCompute(t, s, nonce)
	const bad = 300 // row 1, column 44
	leaves := make([][]byte, s.Leaves())
	hashes := make([][32]byte, s.Leaves())
	for l := range leaves {
		leaves[l], _ = honest.LeafBytes(uint64(l))
		if uint64(l) == bad/LeafCells {
			leaves[l][bad%LeafCells] ^= 0x40
		}
		hashes[l] = LeafHash(uint64(l), leaves[l])
	}
	cheat, err := NewResultFromLeaves(s, nonce, hashes, func(l uint64) ([]byte, error) { return leaves[l], nil })
	if err != nil {
		t.Fatal(err)
	}
	hit, miss := false, false
	for q := 0; q < 2000 && !(hit && miss); q++ {
		seed := [SeedSize]byte{byte(q), byte(q >> 8), 0xaa}
		op := mustOpen(t, cheat, seed)
		err := Verify(s, nonce, cheat.Root(), seed, op)
		if slices.Contains(SampleCells(s, cheat.Root(), seed), bad) {
			hit = true
			if !errors.Is(err, ErrWrongCell) || !strings.Contains(err.Error(), "row 1, column 44") {
				t.Fatalf("err %v, want ErrWrongCell at row 1, column 44", err)
			}
		} else {
			miss = true
			if err != nil {
				t.Fatalf("seed missing the bad cell: %v", err)
			}
		}
	}
	if !hit || !miss {
		t.Fatal("no seed sampled (or avoided) the bad cell")
	}
}

// TestSoundnessPlantedCheater commits honestly to a result whose leaves
// are correct only for a fraction f = 0.8 of the leaves (the rest are
// random bytes) and counts how many fresh seeds it survives: about
// f^Samples of them. A verifier weakened to check one sampled cell lets
// the same cheater through most of the time, so the bound can fail.
func TestSoundnessPlantedCheater(t *testing.T) {
	s := Spec{M: 256, N: 1024, K: 8} // 1024 leaves
	nonce := [32]byte{0xc0}
	honest := mustCompute(t, s, nonce)
	r := rand.New(rand.NewPCG(5, 6))
	L := int(s.Leaves())
	perm := r.Perm(L)
	leaves := make([][]byte, L)
	hashes := make([][32]byte, L)
	for n, l := range perm {
		leaves[l], _ = honest.LeafBytes(uint64(l))
		if n >= L*8/10 {
			for c := range leaves[l] {
				leaves[l][c] = byte(r.Uint32())
			}
		}
		hashes[l] = LeafHash(uint64(l), leaves[l])
	}
	cheat, err := NewResultFromLeaves(s, nonce, hashes, func(l uint64) ([]byte, error) { return leaves[l], nil })
	if err != nil {
		t.Fatal(err)
	}
	const trials = 300
	passed, weakPassed := 0, 0
	for q := 0; q < trials; q++ {
		var seed [SeedSize]byte
		for i := range seed {
			seed[i] = byte(r.Uint32())
		}
		op := mustOpen(t, cheat, seed)
		err := Verify(s, nonce, cheat.Root(), seed, op)
		if err == nil {
			passed++
		} else if !errors.Is(err, ErrWrongCell) {
			t.Fatalf("cheater failed for another reason: %v", err)
		}
		if verify(s, nonce, cheat.Root(), seed, op, 1) == nil {
			weakPassed++
		}
	}
	t.Logf("planted cheater (f = 0.8) passed %d of %d; with one checked cell %d", passed, trials, weakPassed)
	if passed > 10 {
		t.Fatalf("cheater passed %d of %d trials, expected about %.1f", passed, trials, trials*0.0047)
	}
	if weakPassed < 150 {
		t.Fatalf("weakened verifier passed the cheater only %d times; the test cannot tell it apart", weakPassed)
	}
}

func FuzzDecodeOpenings(f *testing.F) {
	s := Spec{M: 3, N: 512, K: 8}
	nonce := [32]byte{4}
	res := mustCompute(f, s, nonce)
	seed := [SeedSize]byte{1}
	op := mustOpen(f, res, seed)
	f.Add(op)
	f.Add(op[:100])
	f.Add([]byte("TGTO\x01"))
	f.Add(append(slices.Clone(op), 1, 2))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := DecodeOpenings(b)
		if err == nil {
			if len(o.Leaves) > Samples {
				t.Fatal("too many openings decoded")
			}
			if !bytes.Equal(o.Encode(), b) {
				t.Fatal("decode then encode does not round-trip")
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("decode error %v does not wrap ErrMalformed", err)
		}
		if err := Verify(s, nonce, res.Root(), seed, b); err == nil && !bytes.Equal(b, op) {
			t.Fatal("verify accepted openings other than the honest ones")
		}
	})
}
