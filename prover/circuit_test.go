package prover

import (
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/test"
)

func mustProfile(t testing.TB, name string) *Profile {
	t.Helper()
	p, err := ProfileByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func isSolved(p *Profile, a *Circuit) error {
	return test.IsSolved(NewCircuit(p), a, ecc.BN254.ScalarField())
}

// findWord returns a cell in a different leaf word from every sample.
func otherWordCell(p *Profile, samples []int) int {
	used := map[int]bool{}
	for _, c := range samples {
		used[c/CellsPerWord] = true
	}
	for c := 0; c < p.Cells(); c += CellsPerWord {
		if !used[c/CellsPerWord] {
			return c + samples[0]%CellsPerWord
		}
	}
	panic("no free word")
}

func TestCircuitAssignments(t *testing.T) {
	p := mustProfile(t, "test")
	nonce, node := testNonce(11), testAddress(12)
	cells := Compute(p, nonce)
	tree, err := NewTree(p, cells)
	if err != nil {
		t.Fatal(err)
	}
	seed := testSeed(13)
	valid := func(t *testing.T) *Circuit {
		a, err := Assignment(tree, nonce, node, seed)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	samples := SampleIndices(p, tree.Root(), seed, nonce, node)

	tests := []struct {
		name   string
		build  func(t *testing.T) *Circuit
		solved bool
	}{
		{"valid", valid, true},
		{"wrong cell value committed consistently", func(t *testing.T) *Circuit {
			// Every cell is off by one, so whichever cells the new root
			// samples, the Merkle openings are consistent and only the
			// GEMM check can fail.
			bad := make([]int32, len(cells))
			for i := range cells {
				bad[i] = cells[i] + 1
			}
			badTree, err := NewTree(p, bad)
			if err != nil {
				t.Fatal(err)
			}
			a, err := assignment(badTree, nonce, node, seed, false)
			if err != nil {
				t.Fatal(err)
			}
			return a
		}, false},
		{"wrong Merkle sibling", func(t *testing.T) *Circuit {
			a := valid(t)
			s := a.Samples[1].Siblings[2].(*big.Int)
			a.Samples[1].Siblings[2] = new(big.Int).Add(s, big.NewInt(1))
			return a
		}, false},
		{"opening of a cell not derived from the root", func(t *testing.T) *Circuit {
			a := valid(t)
			o, err := tree.Open(otherWordCell(p, samples))
			if err != nil {
				t.Fatal(err)
			}
			for i := range o.Word {
				a.Samples[0].Word[i] = uint32(o.Word[i])
			}
			for d := range o.Siblings {
				a.Samples[0].Siblings[d] = new(big.Int).SetBytes(o.Siblings[d][:])
			}
			return a
		}, false},
		{"different nonce", func(t *testing.T) *Circuit {
			a := valid(t)
			a.NonceLo = new(big.Int).Add(a.NonceLo.(*big.Int), big.NewInt(1))
			return a
		}, false},
		{"different node address", func(t *testing.T) *Circuit {
			a := valid(t)
			a.Node = new(big.Int).Xor(a.Node.(*big.Int), big.NewInt(1))
			return a
		}, false},
		{"different root", func(t *testing.T) *Circuit {
			a := valid(t)
			a.Root = new(big.Int).Add(a.Root.(*big.Int), big.NewInt(1))
			return a
		}, false},
		{"different sample seed", func(t *testing.T) *Circuit {
			a := valid(t)
			a.Seed = new(big.Int).Xor(a.Seed.(*big.Int), big.NewInt(1))
			return a
		}, false},
		{"sample seed above 2^128 with the same low bits", func(t *testing.T) *Circuit {
			a := valid(t)
			a.Seed = new(big.Int).Add(a.Seed.(*big.Int), new(big.Int).Lsh(big.NewInt(1), 128))
			return a
		}, false},
		{"digest of another profile", func(t *testing.T) *Circuit {
			a := valid(t)
			d := mustProfile(t, "demo").Digest()
			a.Digest = new(big.Int).SetBytes(d[:])
			return a
		}, false},
		{"out-of-range uint32 limb with the same packed word", func(t *testing.T) *Circuit {
			a := valid(t)
			// Pick two lanes other than the sampled one: (v + 2^32, w - 1)
			// packs to the same word as (v, w), so only the range check
			// can catch it.
			lane := samples[0] % CellsPerWord
			lo := (lane + 1) % CellsPerWord
			if lo == CellsPerWord-1 {
				lo = (lane + 2) % CellsPerWord
			}
			v := new(big.Int).SetUint64(uint64(a.Samples[0].Word[lo].(uint32)))
			w := new(big.Int).SetUint64(uint64(a.Samples[0].Word[lo+1].(uint32)))
			if lo+1 == lane {
				t.Skip("lane layout")
			}
			a.Samples[0].Word[lo] = v.Add(v, new(big.Int).Lsh(big.NewInt(1), 32))
			a.Samples[0].Word[lo+1] = w.Sub(w, big.NewInt(1))
			return a
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := isSolved(p, tc.build(t))
			if tc.solved && err != nil {
				t.Fatalf("valid assignment rejected: %v", err)
			}
			if !tc.solved && err == nil {
				t.Fatal("invalid assignment accepted")
			}
		})
	}
}

// int8Circuit checks chunkInt8s: the n values derived from E must equal V.
type int8Circuit struct {
	E frontend.Variable
	V [bytesPerChunk]frontend.Variable
}

func (c *int8Circuit) Define(api frontend.API) error {
	got := chunkInt8s(api, c.E, bytesPerChunk)
	for i := range got {
		api.AssertIsEqual(got[i], c.V[i])
	}
	return nil
}

func TestChunkInt8s(t *testing.T) {
	p := mustProfile(t, "test")
	seed := seedElement(p, testNonce(1))
	d := domainWord(domainA, 3, 0)
	e := compress(&seed, &d)
	want := make([]int8, bytesPerChunk)
	prgVector(&seed, domainA, 3, want)
	assign := func(vals []*big.Int) *int8Circuit {
		c := &int8Circuit{E: e.BigInt(new(big.Int))}
		for i := range c.V {
			c.V[i] = vals[i]
		}
		return c
	}
	vals := make([]*big.Int, bytesPerChunk)
	for i, v := range want {
		vals[i] = big.NewInt(int64(v))
	}
	field := ecc.BN254.ScalarField()
	if err := test.IsSolved(&int8Circuit{}, assign(vals), field); err != nil {
		t.Fatalf("values from the reference PRG rejected: %v", err)
	}
	tests := []struct {
		name string
		edit func(v []*big.Int)
	}{
		{"value above 127 (unsigned byte)", func(v []*big.Int) {
			for i := range v {
				if v[i].Sign() < 0 {
					v[i] = new(big.Int).Add(v[i], big.NewInt(256))
					return
				}
			}
		}},
		{"value below -128", func(v []*big.Int) { v[0] = new(big.Int).Sub(v[0], big.NewInt(256)) }},
		{"off by one", func(v []*big.Int) { v[5] = new(big.Int).Add(v[5], big.NewInt(1)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := make([]*big.Int, len(vals))
			for i := range vals {
				bad[i] = new(big.Int).Set(vals[i])
			}
			tc.edit(bad)
			if err := test.IsSolved(&int8Circuit{}, assign(bad), field); err == nil {
				t.Fatal("out-of-range or wrong int8 values accepted")
			}
		})
	}
}
