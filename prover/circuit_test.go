package prover

import (
	"errors"
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
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

// TestCircuitConstraintSystem pins the size of the compiled circuit of
// the test and demo profiles: a change to any count changes the circuit,
// and the proving and verifying keys of every profile with it (a new
// version, section 10 of docs/PROTOCOL.md).
func TestCircuitConstraintSystem(t *testing.T) {
	tests := []struct {
		profile                     string
		constraints, public, secret int
	}{
		// public counts the constant wire and the six public inputs;
		// secret is Q·(4 + depth).
		{"test", 21085, 7, 40},
		{"demo", 57477, 7, 112},
	}
	for _, tc := range tests {
		t.Run(tc.profile, func(t *testing.T) {
			ccs, err := CompileCircuit(mustProfile(t, tc.profile))
			if err != nil {
				t.Fatal(err)
			}
			if got := ccs.GetNbConstraints(); got != tc.constraints {
				t.Errorf("%d constraints, want %d", got, tc.constraints)
			}
			if got := ccs.GetNbPublicVariables(); got != tc.public {
				t.Errorf("%d public variables, want %d", got, tc.public)
			}
			if got := ccs.GetNbSecretVariables(); got != tc.secret {
				t.Errorf("%d secret variables, want %d", got, tc.secret)
			}
		})
	}
}

// TestCircuitShape checks that Define refuses a circuit whose samples do
// not have the profile's shape instead of compiling a different circuit.
func TestCircuitShape(t *testing.T) {
	p := mustProfile(t, "test")
	field := ecc.BN254.ScalarField()
	short := NewCircuit(p)
	short.Samples[2].Siblings = short.Samples[2].Siblings[:p.Depth()-1]
	if _, err := frontend.Compile(field, r1cs.NewBuilder, short); !errors.Is(err, ErrShape) {
		t.Errorf("circuit with a short Merkle path: got %v, want ErrShape", err)
	}
	few := NewCircuit(p)
	few.Samples = few.Samples[:p.Q-1]
	if _, err := frontend.Compile(field, r1cs.NewBuilder, few); !errors.Is(err, ErrShape) {
		t.Errorf("circuit with Q-1 samples: got %v, want ErrShape", err)
	}
}
